"""The store through its Python API: exact round trips, sealing at rest, keys, rotation, listing."""

import hashlib
import json
import os
import sqlite3
from datetime import datetime

import pytest
import sqlalchemy
from hypothesis import given
from hypothesis import strategies as st
from rawdb import flip_bit, raw_engine, stored_bytes, tamper
from sqlalchemy import select, update

from imgvault.store import (
    CollectionNotFound,
    ConfigError,
    ImageNotFound,
    IntegrityError,
    InvalidImage,
    RotationInProgress,
    Settings,
    Store,
    schema,
)
from imgvault.store.crypto import blob_key_id
from imgvault.store.records import ImageInfo
from imgvault.store.rotation import Rotation


def test_get_returns_the_exact_bytes_that_were_put_for_every_format_and_mode(store, image_dir):
    for path in sorted(image_dir.iterdir()):
        image = store.put(path, collection="samples")
        assert hashlib.sha256(store.get(image.id)).digest() == hashlib.sha256(path.read_bytes()).digest(), path.name


def test_put_records_what_pillow_sees(store, image_dir):
    facts = {p.name: store.put(p) for p in image_dir.iterdir()}
    assert (facts["camera-gray.png"].format, facts["camera-gray.png"].mode) == ("PNG", "L")
    assert (facts["astronaut-rgba.png"].mode, facts["astronaut-rgba.png"].width) == ("RGBA", 160)
    assert facts["china-palette.gif"].mode == "P"
    assert facts["camera-16bit.png"].mode.startswith("I")
    assert (facts["flower.tiff"].format, facts["flower.tiff"].width, facts["flower.tiff"].height) == ("TIFF", 192, 128)
    assert facts["rocket.jpg"].bytes == (image_dir / "rocket.jpg").stat().st_size


def test_a_stored_image_reads_back_after_the_store_is_reopened(store, image_dir):
    image = store.put(image_dir / "china.jpg", collection="photos", metadata={"patient": "A-17"})
    store.close()
    with Store.open() as reopened:
        assert reopened.get(image.id) == (image_dir / "china.jpg").read_bytes()
        assert reopened.info(image.id) == image


def test_put_from_bytes_uses_the_given_name(store, image_dir):
    image = store.put((image_dir / "flower.bmp").read_bytes(), name="scan-001.bmp", collection="scans")
    assert store.info(image.id).name == "scan-001.bmp"


def test_names_metadata_and_bytes_are_sealed_at_rest(store, home, image_dir):
    data = (image_dir / "camera-gray.bmp").read_bytes()
    image = store.put(data, name="patient-jane-doe.bmp", metadata={"diagnosis": "fracture-of-left-tibia"})
    store.close()
    raw = stored_bytes(home)
    assert image.id.encode() in raw  # what is not sealed is there to see: the search looks at the data
    assert b"patient-jane-doe" not in raw
    assert b"fracture-of-left-tibia" not in raw
    assert data[100:164] not in raw


def test_ids_are_unique_and_sort_in_insertion_order(store, image_dir):
    ids = [store.put(image_dir / "camera-gray.png").id for _ in range(30)]
    assert len(set(ids)) == 30
    assert [image.id for image in store.images()] == sorted(ids) == ids


def test_images_lists_one_collection_and_pages_through_many(store, image_dir):
    small = image_dir / "camera-gray.jpg"
    in_a = [store.put(small, collection="a").id for _ in range(7)]
    store.put(small, collection="b")
    assert [image.id for image in store.images("a", page_size=3)] == in_a
    assert len(list(store.images(page_size=2))) == 8
    with pytest.raises(CollectionNotFound, match='collection "nope" not found'):
        list(store.images("nope"))


def test_collections_count_images_and_bytes(store, image_dir):
    store.put(image_dir / "china.jpg", collection="photos")
    store.put(image_dir / "flower.bmp", collection="photos")
    store.put(image_dir / "camera-gray.png", collection="scans")
    found = {c.name: c for c in store.collections()}
    assert found["photos"].images == 2
    assert found["photos"].bytes == sum((image_dir / n).stat().st_size for n in ("china.jpg", "flower.bmp"))
    assert found["scans"].images == 1
    assert store.collection_names() == ["photos", "scans"]


def test_remove_deletes_all_or_nothing(store, image_dir):
    keep, gone = (store.put(image_dir / "china.jpg").id for _ in range(2))
    with pytest.raises(ImageNotFound, match="image 01NOTANID not found"):
        store.remove([gone, "01NOTANID"])
    assert store.get(gone)
    assert store.remove([gone]).images == (gone,)
    with pytest.raises(ImageNotFound):
        store.get(gone)
    assert store.get(keep)


def test_unknown_image_id_is_not_found(store):
    with pytest.raises(ImageNotFound, match="image 01JD3Z8R8C6WQ3M1V0B5E3N9XK not found"):
        store.get("01JD3Z8R8C6WQ3M1V0B5E3N9XK")


@pytest.mark.sqlite_only  # removes the database file
def test_init_refuses_to_overwrite_an_existing_store_or_key(store, home):
    store.close()
    with pytest.raises(ConfigError, match="a store already exists"):
        Store.init(home)
    os.remove(home / "store.db")
    with pytest.raises(ConfigError, match=r"keyset.json already exists; refusing to overwrite a key"):
        Store.init(home)


@pytest.mark.sqlite_only  # about SQLite's files
def test_the_database_and_its_wal_and_shm_files_are_private(home, image_dir):
    umask = os.umask(0o022)
    try:
        with Store.init(home) as store:
            store.put(image_dir / "china.jpg")
            files = sorted(path.name for path in home.glob("store.db*"))
            assert files == ["store.db", "store.db-shm", "store.db-wal"]
            modes = {name: (home / name).stat().st_mode & 0o777 for name in files}
    finally:
        os.umask(umask)
    assert modes == dict.fromkeys(files, 0o600)


def test_the_key_file_is_private_and_opening_refuses_a_readable_one(store, home):
    key_file = home / "keyset.json"
    assert key_file.stat().st_mode & 0o777 == 0o600
    store.close()
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match=r"accessible by other users .* chmod 600"):
        Store.open(home)


def test_opening_with_another_stores_key_file_is_refused(tmp_path, clean_env):
    Store.init(tmp_path / "one").close()
    Store.init(tmp_path / "two").close()
    os.replace(tmp_path / "two" / "keyset.json", tmp_path / "one" / "keyset.json")
    with pytest.raises(ConfigError, match="belongs to another store"):
        Store.open(tmp_path / "one")


def test_opening_with_a_wrong_key_is_an_integrity_error(store, home):
    store.close()
    key_file = home / "keyset.json"
    document = json.loads(key_file.read_text())
    document["keys"][0]["key"] = "A" * 43 + "="
    key_file.write_text(json.dumps(document))
    with pytest.raises(IntegrityError, match="does not open this store"):
        Store.open(home)


def test_a_missing_key_file_is_a_clear_error(store, home):
    store.close()
    os.remove(home / "keyset.json")
    with pytest.raises(ConfigError, match=r"keyset.json does not exist"):
        Store.open(home)


def test_the_key_file_can_live_away_from_the_data(tmp_path, clean_env, monkeypatch, image_dir):
    monkeypatch.setenv("IMGVAULT_KEY_FILE", str(tmp_path / "keys" / "vault.json"))
    with Store.init(tmp_path / "data") as store:
        image = store.put(image_dir / "china.jpg")
    assert not (tmp_path / "data" / "keyset.json").exists()
    assert (tmp_path / "keys" / "vault.json").exists()
    with Store.open(tmp_path / "data") as store:
        assert store.get(image.id) == (image_dir / "china.jpg").read_bytes()


def test_opening_a_folder_without_a_store_says_to_run_init(tmp_path, clean_env):
    with pytest.raises(ConfigError, match=r'no imgvault store in .*nothing-here .*run "imgvault init" first'):
        Store.open(tmp_path / "nothing-here")


def test_a_blob_moved_to_another_row_is_detected(store, home, image_dir):
    first = store.put(image_dir / "china.jpg")
    second = store.put(image_dir / "flower.bmp")
    with store.engine.begin() as connection:
        blob = connection.execute(schema.images.select().where(schema.images.c.id == first.id)).first().data
        connection.execute(update(schema.images).where(schema.images.c.id == second.id).values(data=blob))
    with pytest.raises(IntegrityError, match=f"image.data {second.id} failed its integrity check"):
        store.get(second.id)
    assert store.get(first.id) == (image_dir / "china.jpg").read_bytes()


@pytest.mark.sqlite_only  # PostgreSQL refuses bytes in a text column
@pytest.mark.parametrize("column", ["collection_id", "format", "width", "mode", "bytes"])
def test_bytes_in_a_bound_column_are_detected_as_tampering(store, home, image_dir, column):
    image = store.put(image_dir / "china.jpg")
    store.close()
    with sqlite3.connect(home / "store.db") as connection:
        connection.execute(f"UPDATE images SET {column} = CAST({column} AS BLOB) WHERE id = ?", (image.id,))
    with Store.open(home) as reopened:
        if column == "collection_id":  # no longer joins its collection
            with pytest.raises(ImageNotFound):
                reopened.get(image.id)
            return
        with pytest.raises(IntegrityError, match=f"image.data {image.id} failed its integrity check"):
            reopened.get(image.id)
        with pytest.raises(IntegrityError, match=f"image.name {image.id} failed its integrity check"):
            list(reopened.images())


def test_a_tampered_stored_image_is_detected_never_returned(store, home, image_dir):
    image = store.put(image_dir / "china.jpg")
    store.close()
    tamper(home, schema.images, image.id, "data", flip_bit(-100))  # inside the ciphertext
    with Store.open(home) as reopened, pytest.raises(IntegrityError):
        reopened.get(image.id)


def test_rotation_reseals_every_record_and_retires_the_old_key(store, home, image_dir):
    paths = sorted(image_dir.iterdir())
    images = [store.put(p, collection="all", metadata={"n": i}) for i, p in enumerate(paths)]
    old_key = store.sealer.keyset.primary_id
    report = store.rotate_key(batch_size=3)
    assert report.resealed_images == len(paths)
    assert report.retired_key_ids == [old_key]
    assert report.new_key_id != old_key
    keyset = json.loads((home / "keyset.json").read_text())
    assert [k["key_id"] for k in keyset["keys"]] == [report.new_key_id]
    assert (home / "keyset.json").stat().st_mode & 0o777 == 0o600
    store.close()
    engine = raw_engine(home)
    with engine.connect() as connection:
        rows = connection.execute(schema.images.select()).all()
    engine.dispose()
    assert {blob_key_id(blob) for row in rows for blob in (row.name, row.data, row.metadata)} == {report.new_key_id}
    with Store.open(home) as reopened:
        for image, path in zip(images, paths, strict=True):
            assert reopened.get(image.id) == path.read_bytes()
            assert reopened.info(image.id) == image


def test_a_process_that_opened_the_store_before_a_rotation_keeps_working(store, home, image_dir):
    before = store.put(image_dir / "china.jpg")
    with Store.open(home) as other:
        other.rotate_key()
    # ``store`` still holds the retired key; its next write must notice and use the new one.
    after = store.put(image_dir / "flower.bmp")
    store.close()
    with Store.open(home) as reopened:
        assert reopened.get(before.id) == (image_dir / "china.jpg").read_bytes()
        assert reopened.get(after.id) == (image_dir / "flower.bmp").read_bytes()


def test_a_store_opened_before_a_rotation_reads_what_the_rotation_re_sealed(store, home, image_dir):
    image = store.put(image_dir / "china.jpg")
    with Store.open(home) as other:
        report = other.rotate_key()
    # Every record is now sealed with a key ``store`` did not load; it reads the keys again, once.
    assert store.get(image.id) == (image_dir / "china.jpg").read_bytes()
    assert store.info(image.id).name == "china.jpg" and [i.id for i in store.images()] == [image.id]
    assert store.sealer.keyset.primary_id == report.new_key_id
    assert set(store.sealer.keyset.keys) == {report.new_key_id}  # the retired key is gone from it too


def test_a_blob_naming_a_key_no_store_has_is_refused_after_the_keys_are_read_again(store, home, image_dir):
    image = store.put(image_dir / "china.jpg")
    tamper(home, schema.images, image.id, "data", flip_bit(8))  # the last byte of the key id in its header
    with pytest.raises(IntegrityError, match=f"image.data {image.id} failed its integrity check"):
        store.get(image.id)


def test_an_interrupted_rotation_leaves_everything_readable_and_can_be_run_again(store, home, image_dir,
                                                                                 monkeypatch):  # fmt: skip
    images = [store.put(p) for p in sorted(image_dir.iterdir())[:6]]
    # Interrupt after the first batch: the new key is primary, older records still use the old one.
    original = Rotation._reseal
    calls = 0

    def fail_after_first_batch(*args):
        nonlocal calls
        calls += 1
        if calls > 2:
            raise KeyboardInterrupt
        return original(*args)

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(Rotation, "_reseal", fail_after_first_batch)
        store.rotate_key(batch_size=2)
    store.close()
    with Store.open(home) as reopened:
        assert all(reopened.get(image.id) for image in images)
        report = reopened.rotate_key()
        assert len(report.retired_key_ids) == 2
    with Store.open(home) as reopened:
        assert all(reopened.get(image.id) for image in images)


def _key_ids(home) -> tuple[set[int], set[int]]:
    """The key ids in the key file and in the store's keys table."""
    in_file = {k["key_id"] for k in json.loads((home / "keyset.json").read_text())["keys"]}
    engine = raw_engine(home)
    with engine.connect() as connection:
        in_store = set(connection.execute(select(schema.keys.c.key_id)).scalars())
    engine.dispose()
    return in_file, in_store


@pytest.mark.parametrize("key_source", ["file", "passphrase"])
def test_a_second_rotation_while_one_runs_is_refused_and_the_first_completes(key_source, home, image_dir,
                                                                            monkeypatch):  # fmt: skip
    if key_source == "passphrase":
        monkeypatch.setenv("IMGVAULT_PASSPHRASE", "correct horse battery staple")
    store = Store.init(home)
    images = [store.put(p) for p in sorted(image_dir.iterdir())[:4]]
    original_reseal, original_writing, calls, writes, refused = Rotation._reseal, store.keyring.writing, 0, 0, []

    def reseal_counting(*args):
        nonlocal calls
        calls += 1
        assert calls <= 8, "the re-seal loop does not end"
        return original_reseal(*args)

    def writing_while_another_rotation_starts():
        # The second write transaction of a rotation is its first batch of re-sealing: start another
        # rotation just before it, between two of the first rotation's transactions.
        nonlocal writes
        writes += 1
        if writes == 2:
            with Store.open(home) as other:
                try:
                    other.rotate_key()
                except RotationInProgress as exc:
                    refused.append(str(exc))
        return original_writing()

    store.keyring.writing = writing_while_another_rotation_starts
    with monkeypatch.context() as patched:
        patched.setattr(Rotation, "_reseal", reseal_counting)
        report = store.rotate_key(batch_size=2)
    store.close()
    assert refused == [
        "another key rotation is in progress on this store; run imgvault key rotate again when it has finished"
    ]
    assert report.resealed_images == 4
    if key_source == "file":
        assert _key_ids(home) == ({report.new_key_id}, {report.new_key_id})
    with Store.open(home) as reopened:
        for image, path in zip(images, sorted(image_dir.iterdir())[:4], strict=True):
            assert reopened.get(image.id) == path.read_bytes()


def test_before_retire_sees_old_and_new_keys_and_its_count_is_reported(store, home, image_dir):
    store.put(image_dir / "china.jpg")
    old_key = store.sealer.keyset.primary_id
    artifact = store.sealer.seal("artifact", "runs/1/model.npz", b"an artifact")
    resealed = {}

    def reseal_the_artifact(sealer) -> int:
        assert old_key in sealer.keyset.keys and sealer.keyset.primary_id != old_key
        resealed["blob"] = sealer.seal("artifact", "runs/1/model.npz", sealer.open("artifact", "runs/1/model.npz",
                                                                                    artifact))  # fmt: skip
        return 1

    report = store.rotate_key(before_retire=reseal_the_artifact)
    assert (report.resealed_artifacts, report.retired_key_ids) == (1, [old_key])
    assert blob_key_id(resealed["blob"]) == report.new_key_id
    assert store.sealer.open("artifact", "runs/1/model.npz", resealed["blob"]) == b"an artifact"
    with pytest.raises(IntegrityError):
        store.sealer.open("artifact", "runs/1/model.npz", artifact)
    assert store.rotate_key().resealed_artifacts == 0


def test_passphrase_store_derives_its_key_and_rejects_a_wrong_passphrase(tmp_path, clean_env, monkeypatch, image_dir):
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "correct horse battery staple")
    with Store.init(tmp_path / "p") as store:
        image = store.put(image_dir / "china.jpg")
        assert store.key_source == "passphrase"
    assert not (tmp_path / "p" / "keyset.json").exists()
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "wrong horse")
    with pytest.raises(IntegrityError, match="IMGVAULT_PASSPHRASE is not this store's passphrase"):
        Store.open(tmp_path / "p")
    monkeypatch.delenv("IMGVAULT_PASSPHRASE")
    with pytest.raises(ConfigError, match="set IMGVAULT_PASSPHRASE"):
        Store.open(tmp_path / "p")
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "correct horse battery staple")
    with Store.open(tmp_path / "p") as store:
        report = store.rotate_key()
        assert report.resealed_images == 1
    with Store.open(tmp_path / "p") as store:
        assert store.get(image.id) == (image_dir / "china.jpg").read_bytes()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("primary_key_id", "not a number", "primary_key_id is missing or not a key id"),
        ("key_source", "rsa", 'key_source is neither "file" nor "passphrase"'),
        ("store_id", "", "store_id is missing"),
    ],
)
def test_an_altered_settings_row_is_an_integrity_error(store, home, name, value, message):
    store.close()
    engine = raw_engine(home)
    with engine.begin() as connection:
        table = schema.settings
        connection.execute(update(table).where(table.c.name == name).values(value=value))
    engine.dispose()
    with pytest.raises(IntegrityError, match=f"the store's settings were altered: {message}"):
        Store.open(home)


def test_altered_key_derivation_parameters_are_an_integrity_error(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "correct horse battery staple")
    Store.init(tmp_path / "p").close()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'p' / 'store.db'}")
    with engine.begin() as connection:
        connection.execute(update(schema.keys).values(kdf='{"kdf": "scrypt"'))
    engine.dispose()
    with pytest.raises(IntegrityError, match=r"the key derivation parameters of key \d+ were altered"):
        Store.open(tmp_path / "p")


def test_a_key_file_store_refuses_a_passphrase(store, home, monkeypatch):
    store.close()
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "anything")
    with pytest.raises(ConfigError, match="unset IMGVAULT_PASSPHRASE"):
        Store.open(home)


def test_invalid_image_is_refused_and_nothing_is_stored(store):
    with pytest.raises(InvalidImage, match=r"notes.txt: not an image file"):
        store.put(b"just some text", name="notes.txt")
    assert list(store.images()) == []
    assert store.collections() == []


def test_settings_follow_the_environment(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("IMGVAULT_HOME", str(tmp_path / "h"))
    settings = Settings.resolve()
    assert settings.db_url == f"sqlite:///{tmp_path / 'h' / 'store.db'}"
    assert settings.key_file == tmp_path / "h" / "keyset.json"
    monkeypatch.setenv("IMGVAULT_DB_URL", "postgresql+psycopg://u:secret@db/imgvault")
    assert Settings.resolve().describe_db() == "postgresql+psycopg://u:***@db/imgvault"


def test_ids_made_in_one_burst_keep_their_order():
    from imgvault.store.ids import new_id

    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5000
    assert all(len(i) == 26 for i in ids)


def test_put_many_streams_its_input_instead_of_reading_it_all_first(store, image_dir):
    consumed = 0
    source = image_dir / "camera-gray.jpg"

    def paths():
        nonlocal consumed
        for _ in range(5000):
            consumed += 1
            yield source

    results = store.put_many(paths(), jobs=1)
    first = next(results)
    assert first.image is not None
    # Two batches (one committed on the writer thread while the next is read), plus at most the
    # look-ahead of the validation step, were read to produce it.
    from imgvault.store.ingest import POOL_THRESHOLD
    from imgvault.store.store import BATCH_IMAGES

    assert consumed <= 2 * BATCH_IMAGES + POOL_THRESHOLD < 5000
    results.close()


@given(
    text=st.text(max_size=30),
    sizes=st.tuples(*[st.one_of(st.integers(0, 2**63), st.booleans(), st.none())] * 3),
    metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    created=st.datetimes(min_value=datetime(1000, 1, 1)),
)
def test_an_image_as_json_is_what_json_dumps_makes_of_its_dict(text, sizes, metadata, created):
    # ls --json writes each image's JSON by hand for speed; it must be exactly the standard encoding.
    width, height, size = sizes
    image = ImageInfo(id="01J" + text, name=text, collection="c" + text, format="PNG", width=width, height=height,
                      mode=text, bytes=size, created=created, metadata=metadata)  # fmt: skip
    assert image.to_json() == json.dumps(image.to_dict())


def test_a_rotation_says_how_much_it_has_to_re_seal_and_how_far_it_is(store, image_dir):
    for name in ("camera-gray.png", "china.jpg", "astronaut-rgb.png"):
        store.put(image_dir / name, collection="c")
    totals, steps = [], []
    report = store.rotate_key(batch_size=2, started=totals.append, advance=steps.append)
    assert totals == [3] and steps == [2, 1] and report.resealed["image"] == 3


def test_put_many_labels_each_file_as_label_of_says_and_label_counts_counts_them(store, image_dir):
    from imgvault.store.names import label_from_folder

    def label_of(path):
        return None if path.name == "coffee.png" else path.suffix.lstrip(".")

    paths = sorted(image_dir.iterdir())
    results = list(store.put_many(paths, collection="all", metadata={"source": "test"}, label_of=label_of, jobs=2))
    assert all(result.error is None for result in results)
    expected = {path.name: (None if path.name == "coffee.png" else path.suffix[1:]) for path in paths}
    assert {r.image.name: r.image.label for r in results} == expected
    assert {image.name: image.label for image in store.images("all")} == expected
    assert store.info(results[0].image.id).metadata["source"] == "test"
    counts = store.label_counts("all")
    assert list(counts) == sorted(counts)  # by label
    assert counts == {suffix: list(expected.values()).count(suffix) for suffix in set(expected.values()) - {None}}
    # label_from_folder: the name of the folder each file is in
    told = []
    store.put_each([image_dir / "china.jpg"], told.append, collection="folder", label_of=label_from_folder)
    assert [result.image.label for result in told] == [image_dir.name]
    assert store.label_counts("folder") == {image_dir.name: 1}


def test_a_label_that_is_not_one_refuses_that_file_only(store, image_dir):
    from imgvault.store import InvalidParameter

    paths = [image_dir / "china.jpg", image_dir / "flower.bmp", image_dir / "coffee.png"]
    labels = {"china.jpg": "", "flower.bmp": "ok", "coffee.png": "tab\there"}
    results = list(store.put_many(paths, collection="c", label_of=lambda path: labels[path.name]))
    # (refusals come as they happen, stored images once committed)
    assert {r.path.name: (r.image.label if r.image else None, r.error) for r in results} == {
        "china.jpg": (None, f"{paths[0]}: a label cannot be empty"),
        "flower.bmp": ("ok", None),
        "coffee.png": (None, f"{paths[2]}: a label cannot contain control characters"),
    }
    with pytest.raises(InvalidParameter, match="both in the metadata and by label_of"):
        list(store.put_many(paths, collection="c", metadata={"label": "x"}, label_of=lambda path: "y"))
    for bad in ["", "x" * 201, "\x7f", 7]:
        with pytest.raises(InvalidParameter):
            store.put(paths[0], collection="c", metadata={"label": bad})
    assert store.label_counts("c") == {"ok": 1}


def test_labels_are_sealed_and_survive_key_rotation(store, home, image_dir):
    image = store.put(image_dir / "china.jpg", collection="pets", metadata={"label": "secret-diagnosis"})
    other = store.put(image_dir / "flower.bmp", collection="pets")
    assert (image.label, other.label) == ("secret-diagnosis", None)
    store.close()
    engine = raw_engine(home)
    with engine.connect() as connection:
        rows = connection.execute(schema.images.select()).all()
    engine.dispose()
    assert not any(b"secret-diagnosis" in bytes(row.metadata or b"") for row in rows)
    with Store.open(home) as reopened:
        reopened.rotate_key(batch_size=1)
    with Store.open(home) as reopened:
        assert reopened.info(image.id).label == "secret-diagnosis"
        assert reopened.label_counts("pets") == {"secret-diagnosis": 1}


def test_label_counts_of_an_unknown_collection_is_not_found(store):
    with pytest.raises(CollectionNotFound):
        store.label_counts("nope")


def test_a_ctrl_c_before_tell_counts_a_result_leaves_the_committed_count_every_image_stored(store, image_dir):
    """What a caller counts in ``committed`` (on the writer thread, where no Ctrl-C lands) is every image the
    put committed, even when the interrupt lands where ``tell`` was given a result it did not count yet."""
    told, stored = [], []

    def tell(result):
        if not told:
            told.append(None)  # the first result: interrupted before it was counted
            raise KeyboardInterrupt
        told.append(result)

    with pytest.raises(KeyboardInterrupt):
        store.put_each(sorted(image_dir.iterdir()), tell, collection="interrupted", jobs=1,
                       committed=lambda results: stored.extend(r for r in results if not r.error))  # fmt: skip
    in_store = {image.id for image in store.images(collection="interrupted")}
    assert in_store and {r.image.id for r in stored} == in_store
    assert len([r for r in told if r is not None and not r.error]) < len(in_store)  # what tell alone saw
