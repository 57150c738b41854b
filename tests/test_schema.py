"""The Alembic migrations and the schema the code uses must describe the same tables."""

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rawdb import raw_engine
from sqlalchemy import inspect

from imgvault.store import Store, schema
from imgvault.store.engine import current_revision


def test_migrations_create_exactly_the_tables_the_code_declares(store):
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), schema.metadata) == []


def test_the_store_records_its_schema_revision(store):
    assert current_revision(store.engine) == schema.SCHEMA_REVISION


@pytest.mark.sqlite_only
def test_sqlite_is_set_up_for_concurrent_use(store, home):
    with store.engine.connect() as connection:
        pragma = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in
                  ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}  # fmt: skip
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1, "synchronous": 2}


def test_a_store_from_a_newer_schema_is_refused(store, home):
    store.close()
    engine = raw_engine(home)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        assert inspect(connection).has_table("images")
    engine.dispose()
    import pytest

    from imgvault.store import ConfigError

    with pytest.raises(ConfigError, match=f"has schema revision 9999 and this imgvault needs {schema.SCHEMA_REVISION}"):
        Store.open(home)


def seal_v1(key: bytes, key_id: int, store_id: str, kind: str, record_id: str, data: bytes) -> bytes:
    """A blob in sealed-blob format 1, as imgvault wrote it before revision 0003."""
    import os
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from imgvault.store.crypto import HEADER, MAGIC

    def field(text: str) -> bytes:
        return struct.pack(">H", len(text.encode())) + text.encode()

    header = HEADER.pack(MAGIC, 1, key_id, os.urandom(12))
    return header + AESGCM(key).encrypt(header[9:], data, header + field(store_id) + field(kind) + field(record_id))


def test_upgrading_a_revision_0002_store_reseals_its_records_with_their_links_bound(home, image_dir):
    import datetime
    import json
    import secrets

    from imgvault.store import IntegrityError, Settings
    from imgvault.store.engine import create_store_engine, upgrade, write_transaction
    from imgvault.store.keys import write_key_file

    settings = Settings.resolve(home)
    home.mkdir()
    store_id, key_id, key = "a" * 32, 1234567, secrets.token_bytes(32)
    now = datetime.datetime(2026, 11, 24, 14, 0)
    data = (image_dir / "camera-gray.png").read_bytes()
    metrics = {"ssim": 0.9, "psnr": 30.5}

    def seal(kind, record_id, plain):
        return seal_v1(key, key_id, store_id, kind, record_id, plain)

    engine = create_store_engine(settings.db_url)
    with write_transaction(engine) as connection:
        upgrade(connection, revision="0002")
        rows = {
            "settings": [{"name": "store_id", "value": store_id}, {"name": "key_source", "value": "file"},
                         {"name": "primary_key_id", "value": str(key_id)}],
            "keys": [{"key_id": key_id, "kdf": None, "check": seal("key", str(key_id), b"imgvault key check"),
                      "created_at": now}],
            "collections": [{"id": "C1", "name": "scans", "created_at": now}],
            "images": [{"id": "I1", "collection_id": "C1", "key_id": key_id, "format": "PNG", "width": 512,
                        "height": 512, "mode": "L", "bytes": len(data), "created_at": now,
                        "name": seal("image.name", "I1", b"camera.png"),
                        "metadata": seal("image.metadata", "I1", b'{"who": "camera"}'),
                        "data": seal("image.data", "I1", data)}],
            "codec_models": [{"id": "M1", "collection_id": "C1", "image_id": "I1", "method": "pca",
                              "params": '{"k": 8}', "key_id": key_id, "bytes": 5, "created_at": now,
                              "data": seal("model.data", "M1", b"model")}],
            "encoded_images": [{"id": "E1", "image_id": "I1", "model_id": "M1", "method": "pca", "params": '{"k": 8}',
                                "metrics": json.dumps(metrics), "key_id": key_id, "bytes": 7, "created_at": now,
                                "data": seal("encoded.data", "E1", b"encoded")}],
        }  # fmt: skip
        from sqlalchemy import MetaData

        tables = MetaData()
        tables.reflect(connection)
        for name, values in rows.items():
            connection.execute(tables.tables[name].insert(), values)
    engine.dispose()
    write_key_file(settings.key_file, store_id, {key_id: key}, exclusive=True)

    assert Store.upgrade_schema(settings) == ("0002", schema.SCHEMA_REVISION)
    with Store.open(home) as store:
        assert store.get("I1") == data
        assert (store.info("I1").name, store.info("I1").metadata) == ("camera.png", {"who": "camera"})
        info, payload = store.get_encoded_image("E1")
        assert (info.metrics, info.params, payload) == (metrics, {"k": 8}, b"encoded")
        assert store.get_codec_model("M1") == ("pca", {"k": 8}, b"model")
    raw = raw_engine(home)
    with raw.connect() as connection:
        blobs = [bytes(b) for b in connection.execute(schema.images.select()).first()[-3:]]
        blobs.append(bytes(connection.execute(schema.encoded_images.select()).first().metrics))
    raw.dispose()
    assert [blob[4] for blob in blobs] == [2, 2, 2, 2]  # the format version
    with raw.begin() as connection:
        connection.execute(schema.encoded_images.update().values(method="kmeans"))
    raw.dispose()
    with Store.open(home) as store, pytest.raises(IntegrityError):
        store.get_encoded_image("E1")


def test_downgrading_to_0002_and_upgrading_again_keeps_every_record(store, home, image_dir):
    from alembic import command

    from imgvault.methods import decode_image, encode_image
    from imgvault.store import Settings
    from imgvault.store.engine import migration_config, write_transaction

    image = store.put(image_dir / "astronaut-rgb.png", collection="faces", metadata={"who": "astronaut"})
    encoding = encode_image(store, image.id, method="kmeans", k=4, size=32)
    with write_transaction(store.engine) as connection:
        command.downgrade(migration_config(connection, store.sealer), "0002")
    store.close()
    raw = raw_engine(home)
    with raw.connect() as connection:
        row = connection.exec_driver_sql("SELECT data, metrics FROM encoded_images").first()
    raw.dispose()
    assert (bytes(row.data)[4], json.loads(row.metrics)) == (1, encoding.info.metrics)
    assert Store.upgrade_schema(Settings.resolve(home)) == ("0002", schema.SCHEMA_REVISION)
    with Store.open(home) as reopened:
        assert reopened.info(image.id) == image
        assert reopened.get_encoded_image(encoding.info.id)[0] == encoding.info
        assert (decode_image(reopened, encoding.info.id) == encoding.reconstruction).all()
