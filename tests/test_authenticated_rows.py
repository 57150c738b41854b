"""Rows that grant rights, and the absence of metadata, are authenticated like the rows that hold data.

The attacker here can write the store's database (a PostgreSQL administrator, say) but does not hold the key.
"""

import json

import pytest
import sqlalchemy
from conftest import sample_images
from rawdb import raw_engine

from imgvault.cli import cli
from imgvault.store import ImgVaultError, IntegrityError, Settings, Store, schema
from imgvault.store.tokens import _digest, check_token, create_token, list_tokens, revoke_token

TOKENS = schema.api_tokens


def edit(home, statement) -> None:
    engine = raw_engine(home)
    with engine.begin() as connection:
        connection.execute(statement)
    engine.dispose()


def test_a_token_row_inserted_without_the_key_grants_nothing(store, home, runner):
    _, genuine = create_token(store, "genuine")
    forged = "ivt_" + "A" * 43
    row = {"name": "forged", "token_sha256": _digest(forged), "read_only": False}
    edit(home, TOKENS.insert().values(**row, created_at=sqlalchemy.func.now()))
    assert check_token(store, forged) is None
    assert check_token(store, genuine) is not None
    # Copying a genuine row's seal onto it does not help: the seal binds the row's name and hash.
    seal, key_id = next((t.seal, t.key_id) for t in raw_rows(home) if t.name == "genuine")
    edit(home, TOKENS.update().where(TOKENS.c.name == "forged").values(seal=seal, key_id=key_id))
    assert check_token(store, forged) is None
    listed = {t.name: t.intact for t in list_tokens(store)}
    assert listed == {"forged": False, "genuine": True}
    shown = runner.invoke(cli, ["token", "ls"]).stdout
    assert "TAMPERED" in next(line for line in shown.splitlines() if line.startswith("forged"))


def raw_rows(home) -> list:
    engine = raw_engine(home)
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.select(TOKENS)).all()
    engine.dispose()
    return rows


@pytest.mark.parametrize(
    "change",
    [
        {"read_only": False},  # a read-only token made writable
        {"revoked_at": None},  # a revocation undone
        {"name": "renamed"},
        {"created_at": sqlalchemy.func.now()},
    ],
    ids=["writable", "unrevoked", "renamed", "recreated"],
)
def test_an_edited_token_row_grants_nothing(store, home, change):
    _, token = create_token(store, "reader", read_only=True)
    if "revoked_at" in change:
        revoke_token(store, "reader")
    else:
        assert check_token(store, token).read_only is True
    edit(home, TOKENS.update().where(TOKENS.c.name == "reader").values(**change))
    assert check_token(store, token) is None


def test_a_key_rotation_reseals_token_rows_and_they_keep_working(store, home):
    _, token = create_token(store, "t", read_only=True)
    report = store.rotate_key()
    assert report.resealed["token"] == 1
    with Store.open(settings=Settings.resolve(home)) as reopened:
        assert check_token(reopened, token).read_only is True
    assert {row.key_id for row in raw_rows(home)} == {report.new_key_id}


def test_metadata_set_to_null_behind_the_store_s_back_is_an_integrity_error(store, home, runner):
    image = store.put(sample_images()["camera-gray.png"], name="scan.png", collection="c", metadata={"patient": "X"})
    plain = store.put(sample_images()["china.jpg"], name="plain.jpg", collection="c")
    edit(home, schema.images.update().where(schema.images.c.id == image.id).values(metadata=None))
    with pytest.raises(IntegrityError):
        store.info(image.id)
    with pytest.raises(IntegrityError):
        store.get(image.id)
    with pytest.raises(IntegrityError):
        list(store.images("c"))
    assert store.info(plain.id).metadata == {}
    listed = runner.invoke(cli, ["ls", "--json"])
    assert listed.exit_code == 1 and "integrity check" in listed.stderr
    # The other way round too: metadata copied onto an image that had none.
    blob = next(r for r in raw_image_rows(home) if r.id == image.id).name
    edit(home, schema.images.update().where(schema.images.c.id == plain.id).values(metadata=blob))
    with pytest.raises(IntegrityError):
        store.get(plain.id)


def raw_image_rows(home) -> list:
    engine = raw_engine(home)
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.select(schema.images)).all()
    engine.dispose()
    return rows


def test_token_ls_json_says_whether_each_row_is_intact(store, home, runner):
    create_token(store, "a")
    edit(home, TOKENS.update().where(TOKENS.c.name == "a").values(read_only=True))
    [row] = json.loads(runner.invoke(cli, ["token", "ls", "--json"]).stdout)
    assert (row["name"], row["intact"]) == ("a", False)


def _copy_database(home, to) -> None:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(home / "store.db")) as source, closing(sqlite3.connect(to)) as copy:
        source.backup(copy)


def _restore_database(home, copy) -> None:
    import shutil

    for suffix in ("-wal", "-shm"):
        (home / f"store.db{suffix}").unlink(missing_ok=True)
    shutil.copy(copy, home / "store.db")


@pytest.mark.sqlite_only
def test_an_older_copy_of_the_database_brings_back_a_revoked_token_until_the_key_is_rotated(store, home, tmp_path):
    # What the threat model says of rollback: not detected; a key rotation after a revocation (or a deletion)
    # makes every older copy of the database unreadable, its token rows included.
    _, token = create_token(store, "leaked")
    _copy_database(home, tmp_path / "before-revocation.db")
    revoke_token(store, "leaked")
    store.close()
    _restore_database(home, tmp_path / "before-revocation.db")
    with Store.open(settings=Settings.resolve(home)) as restored:
        assert check_token(restored, token) is not None  # the rollback is not detected
        revoke_token(restored, "leaked")
        _copy_database(home, tmp_path / "before-rotation.db")
        create_token(restored, "other")
        restored.rotate_key()
    _restore_database(home, tmp_path / "before-rotation.db")
    # The copy's records, its token rows among them, are sealed under a key the key file no longer holds.
    with pytest.raises(ImgVaultError, match="key"):
        Store.open(settings=Settings.resolve(home))
