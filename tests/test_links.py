"""Authenticated links: editing or swapping a bound column in the database is an IntegrityError, never other
pixels, another model or other metrics (see imgvault.store.bindings)."""

import pytest
from rawdb import raw_engine
from sqlalchemy import select, update

from imgvault.methods import decode_image, encode_image
from imgvault.store import IntegrityError, schema


@pytest.fixture
def linked(store, image_dir):
    """Two images in two collections, each with a K-Means and a PCA encoding (models fitted per image)."""
    faces = store.put(image_dir / "astronaut-rgb.png", collection="faces", metadata={"who": "astronaut"})
    scans = store.put(image_dir / "camera-gray.png", collection="scans")
    encodings = {
        (image.collection, method): encode_image(store, image.id, method=method, k=4, size=32)
        for image in (faces, scans)
        for method in ("kmeans", "pca")
    }
    return store, faces, scans, encodings


def run_sql(home, table, record_id: str, **values) -> None:
    """``UPDATE table SET values WHERE id = record_id``, as someone with access to the database would."""
    engine = raw_engine(home)
    with engine.begin() as connection:
        connection.execute(update(table).where(table.c.id == record_id).values(values))
    engine.dispose()


def column_of(home, table, record_id: str, column: str):
    engine = raw_engine(home)
    with engine.connect() as connection:
        value = connection.execute(select(table.c[column]).where(table.c.id == record_id)).scalar_one()
    engine.dispose()
    return value


def test_untouched_links_open(linked):
    store, faces, _, encodings = linked
    assert store.info(faces.id) == faces
    for encoding in encodings.values():
        assert (decode_image(store, encoding.info.id) == encoding.reconstruction).all()


@pytest.mark.parametrize(
    ("column", "value"),
    [("collection_id", "OTHER"), ("width", 161), ("height", 1), ("format", "JPEG"), ("mode", "L"), ("bytes", 1)],
)
def test_editing_an_images_bound_column_fails_get_info_and_listing(linked, home, column, value):
    store, faces, scans, _ = linked
    if value == "OTHER":
        value = column_of(home, schema.images, scans.id, "collection_id")
    run_sql(home, schema.images, faces.id, **{column: value})
    for read in (store.get, store.info, lambda _: list(store.images())):
        with pytest.raises(IntegrityError, match=f"image.(data|name|metadata) {faces.id} failed its integrity check"):
            read(faces.id)
    assert store.get(scans.id)


def test_renaming_an_images_collection_in_the_database_fails_get_and_info(linked, home):
    store, faces, _, _ = linked
    engine = raw_engine(home)
    with engine.begin() as connection:
        table = schema.collections
        connection.execute(update(table).where(table.c.name == "faces").values(name="public"))
    engine.dispose()
    for read in (store.get, store.info):
        with pytest.raises(IntegrityError):
            read(faces.id)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("model_id", "SWAP"),  # another image's model of the same method: decoded, it gave other pixels
        ("image_id", "SWAP"),
        ("method", "gmm"),
        ("params", '{"codec": {"k": 2}}'),
        ("metrics", "SWAP"),  # another encoding's sealed metrics
    ],
)
def test_editing_an_encoded_images_bound_column_fails_decode_get_and_listing(linked, home, column, value):
    store, _, _, encodings = linked
    target, other = encodings["faces", "kmeans"].info, encodings["scans", "kmeans"].info
    if value == "SWAP":
        value = column_of(home, schema.encoded_images, other.id, column)
    run_sql(home, schema.encoded_images, target.id, **{column: value})
    with pytest.raises(IntegrityError, match=f"encoded.(data|metrics) {target.id} failed its integrity check"):
        decode_image(store, target.id)
    with pytest.raises(IntegrityError):
        store.get_encoded_image(target.id)
    with pytest.raises(IntegrityError):
        list(store.encoded_images())
    assert (decode_image(store, other.id) == encodings["scans", "kmeans"].reconstruction).all()


@pytest.mark.parametrize(
    ("column", "value"),
    [("method", "pca"), ("params", '{"codec": {"k": 2}}'), ("image_id", "SWAP"), ("collection_id", "SWAP")],
)
def test_editing_a_models_bound_column_fails_get_model_and_decode(linked, home, column, value):
    store, _, _, encodings = linked
    target, other = encodings["faces", "kmeans"].info, encodings["scans", "pca"].info
    if value == "SWAP":
        value = column_of(home, schema.codec_models, other.model_id, column)
    run_sql(home, schema.codec_models, target.model_id, **{column: value})
    with pytest.raises(IntegrityError, match=f"model.data {target.model_id} failed its integrity check"):
        store.get_codec_model(target.model_id)
    with pytest.raises(IntegrityError):
        decode_image(store, target.id)


def test_metrics_are_sealed_at_rest(linked, home):
    store, _, _, encodings = linked
    info = encodings["faces", "pca"].info
    blob = column_of(home, schema.encoded_images, info.id, "metrics")
    assert b"ssim" not in bytes(blob)
    assert store.get_encoded_image(info.id)[0].metrics == info.metrics


def test_rotation_keeps_the_links_bound(linked, home):
    store, faces, _, encodings = linked
    store.rotate_key(batch_size=2)
    assert store.info(faces.id) == faces
    target, other = encodings["faces", "pca"].info, encodings["scans", "pca"].info
    run_sql(home, schema.encoded_images, target.id, model_id=other.model_id)
    with pytest.raises(IntegrityError):
        decode_image(store, target.id)
