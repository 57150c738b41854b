"""Reading a SQLite store with the standard library's sqlite3 (imgvault.store.database): the same output,
errors and integrity checks as reading it through SQLAlchemy, on the same real store.

Each command runs twice through the real command line: as it is (a SQLite file is read with sqlite3), and
with the file's sqlite3 reads turned off, so that the same SELECTs run through SQLAlchemy, as on any other
database. The two must print the same bytes. That ``ls`` really starts without SQLAlchemy is checked in a
subprocess by test_processes.
"""

import io
import json
import shutil
import sqlite3

import pytest
import skimage.data
from PIL import Image
from rawdb import flip_bit, raw_engine, tamper
from sqlalchemy import select, update

from imgvault.cli import cli
from imgvault.cli.printing import printable
from imgvault.store import ImgVaultError, IntegrityError, Settings, Store, database, queries, schema
from imgvault.store.bindings import image_context_of
from imgvault.store.crypto import Keyset, Sealer
from imgvault.store.database import Database

# Names as people and file systems make them: the table escapes what a terminal would act on, JSON keeps them.
ODD_NAMES = [
    "évian ünïcødé.png", "写真 カメラ.jpg", "emoji 📷.png", "new\nline.png", "tab\there.png", "esc\x1b[31mred.png",
    "bell\x07.png", "bidi \u202egnp.exe", 'quote"back\\slash.png', "\\xff from a name that was not UTF-8.png",
    "nul\x00byte.png", "del\x7f.png", " leading and trailing spaces.png ", "zero\u200bwidth.png",
    "line\u2028separator.png", "c1\x85control.png",
]  # fmt: skip
COLLECTIONS = ["holidays", "ünï 写真", "a-rather-long-collection-name-that-widens-the-column", "scans"]
# More images than one page of a listing (2,000): the listing of everything, and of "holidays", takes two pages.
MANY = 2001


def png(seed: int, size: int = 8) -> bytes:
    """A small real PNG, a crop of scikit-image's camera."""
    buffer = io.BytesIO()
    y, x = divmod(seed * 37 % 400, 20)
    Image.fromarray(skimage.data.camera()[y : y + size, x * 20 : x * 20 + size]).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A real store with many images in several collections, odd names, metadata and encoded images."""
    from imgvault.methods import encode_image

    home = tmp_path_factory.mktemp("listing") / "vault"
    tiles = tmp_path_factory.mktemp("tiles")
    paths = []
    for n in range(40):
        (tiles / f"tile-{n:02d}.png").write_bytes(png(n))
        paths.append(tiles / f"tile-{n:02d}.png")
    with Store.init(settings=Settings.resolve(home, environ={})) as store:
        for result in store.put_many((paths[k % len(paths)] for k in range(MANY)), collection="holidays", jobs=1):
            assert result.error is None, result.error
        for n, name in enumerate(ODD_NAMES):
            metadata = {"who": "ünï", "note": "line\nbreak", "n": n} if n % 3 == 0 else None
            store.put(png(n, 16 + n), name=name, collection=COLLECTIONS[n % len(COLLECTIONS)], metadata=metadata)
        photo = store.put(png(99, 48), name="photo.png", collection="scans")
        for method in ("kmeans", "pca"):
            encode_image(store, photo.id, method=method, k=4, size=32)
    return home


@pytest.fixture
def vault(template, tmp_path, clean_env, monkeypatch):
    """A copy of the template store, as IMGVAULT_HOME."""
    home = tmp_path / "vault"
    shutil.copytree(template, home)
    monkeypatch.setenv("IMGVAULT_HOME", str(home))
    return home


@pytest.fixture
def both(runner, monkeypatch):
    """Run the command line's args with sqlite3 reads, then through SQLAlchemy; both outcomes must be the same
    bytes."""

    def run(*args: str):
        fast = runner.invoke(cli, list(args))
        with monkeypatch.context() as patch:
            patch.setattr(database, "plain_sqlite_file", lambda settings: None)
            slow = runner.invoke(cli, list(args))
        assert (fast.exit_code, fast.stdout, fast.stderr) == (slow.exit_code, slow.stdout, slow.stderr), args
        assert "Traceback" not in fast.output
        return fast

    return run


def reader_refuses(home) -> str:
    """The error line of opening ``home`` with sqlite3 reads (not through SQLAlchemy after a fallback)."""

    def no_fallback(self):
        raise AssertionError("the store was read through SQLAlchemy")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(ImgVaultError) as raised:
        patch.setattr(Database, "read_through_sqlalchemy", no_fallback)
        Store.open(settings=Settings.resolve(home))
    return f"Error: {printable(str(raised.value))}\n"


def sqlalchemy_reads(settings: Settings) -> Store:
    """The store of ``settings``, its SQLite file read through SQLAlchemy."""
    store = Store.open(settings=settings)
    store.database.read_through_sqlalchemy()
    return store


def image_ids(home, collection: str | None = None) -> list[str]:
    with Store.open(home) as store:
        return [image.id for image in store.images(collection)]


# -- the same output ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["ls"],
        ["ls", "--json"],
        *(["ls", "-c", name] for name in COLLECTIONS),
        *(["ls", "-c", name, "--json"] for name in COLLECTIONS),
        ["ls", "--encoded"],
        ["ls", "--encoded", "--json"],
        ["ls", "--encoded", "-c", "scans"],
        ["ls", "--encoded", "-c", "holidays", "--json"],
        ["collections"],
        ["collections", "--json"],
    ],
    ids=" ".join,
)
def test_both_paths_print_the_same_bytes(vault, both, args):
    result = both(*args)
    assert result.exit_code == 0
    with Store.open(vault) as store:
        assert store.database.file is not None


def test_the_listing_spans_pages_and_escapes_names_in_the_table_only(vault, both):
    table = both("ls").stdout
    assert table.count("\n") == 1 + MANY + len(ODD_NAMES) + 1  # the header, the images, and photo.png
    assert "  new\\nline.png\n" in table and "  esc\\x1b[31mred.png\n" in table and "\x1b" not in table
    listed = json.loads(both("ls", "--json").stdout)
    assert [image["id"] for image in listed] == image_ids(vault)
    assert {image["name"] for image in listed} >= set(ODD_NAMES)
    holidays = MANY + len(ODD_NAMES[:: len(COLLECTIONS)])  # the odd names go round the collections
    assert len(json.loads(both("ls", "-c", "holidays", "--json").stdout)) == holidays


def test_every_select_gives_the_columns_of_its_row_type(vault):
    """The SELECTs are written out once (reading a SQLite file cannot import SQLAlchemy): each must give the
    columns its named row has, in its order, or a row would be read into the wrong names."""
    selects = [value for value in vars(queries).values() if isinstance(value, queries.Query)]
    assert len(selects) > 15
    connection = sqlite3.connect(vault / "store.db")
    for query in selects:
        names = query.sql.replace(":", " :").split()
        parameters = {name[1:]: 1 if name == ":limit" else "" for name in names if name.startswith(":")}
        cursor = connection.execute(query.sql, parameters)
        assert tuple(column[0] for column in cursor.description) == query.row._fields, query.sql
    connection.close()


@pytest.mark.parametrize("page_size", [1, 2, 7, 2000, 2016, 2017, 2018, 2019, 5000])
def test_the_reads_page_as_sqlalchemy_s_do(vault, page_size):
    settings = Settings.resolve(vault)
    everything = image_ids(vault)
    assert len(everything) == 2018
    with sqlalchemy_reads(settings) as store, Store.open(settings=settings) as reader:
        assert reader.database.file is not None
        for collection in (None, *COLLECTIONS):
            assert list(reader.images(collection, page_size=page_size)) == list(
                store.images(collection, page_size=page_size)
            )
        after = everything[page_size % len(everything)]
        assert list(reader.images(page_size=page_size, after=after)) == list(store.images(page_size=page_size,
                                                                                          after=after))  # fmt: skip
        assert reader.collection_names() == store.collection_names() == sorted(COLLECTIONS)
        assert reader.collections() == store.collections()
        assert list(reader.encoded_images()) == list(store.encoded_images())


# -- the same errors ----------------------------------------------------------------------------------------


def test_a_folder_without_a_store_is_the_same_error_and_nothing_is_created(home, both):
    result = both("ls")
    assert (result.exit_code, result.stderr) == (1, reader_refuses(home))
    assert result.stderr == f'Error: no imgvault store in {home} (run "imgvault init" first)\n'
    assert not home.exists()


def test_an_empty_database_file_is_not_a_store_and_the_reader_leaves_it_untouched(home, runner, both):
    home.mkdir()
    (home / "store.db").touch()
    fast = runner.invoke(cli, ["ls"])
    assert (fast.exit_code, fast.stderr) == (1, reader_refuses(home))
    assert fast.stderr == f'Error: no imgvault store in {home / "store.db"} (run "imgvault init" first)\n'
    assert (home / "store.db").stat().st_size == 0  # read-only: not even made a WAL database, as Store does
    both("ls")


def test_a_file_that_is_not_a_database_is_left_to_store_which_says_so(home, both):
    home.mkdir()
    (home / "store.db").write_bytes(b"not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        Database(Settings.resolve(home)).file.revision()
    result = both("ls")
    database = home / "store.db"
    assert result.stderr == f"Error: cannot open the store database sqlite:///{database}: file is not a database\n"


@pytest.mark.parametrize("revision", ["0001", "9999_from_the_future"])
def test_a_store_of_another_schema_revision_is_the_same_error(vault, both, revision):
    engine = raw_engine(vault)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = ?", (revision,))
    engine.dispose()
    result = both("ls", "--json")
    assert (result.exit_code, result.stderr) == (1, reader_refuses(vault))
    assert f"has schema revision {revision} and this imgvault needs" in result.stderr
    with sqlite3.connect(vault / "store.db") as connection:  # nothing migrated it
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (revision,)


def test_a_store_migrated_down_to_its_first_revision_is_the_same_error(vault, both):
    from alembic import command

    from imgvault.store.engine import migration_config, write_transaction

    with Store.open(vault) as store, write_transaction(store.engine) as connection:
        command.downgrade(migration_config(connection, store.sealer), "0001")
    result = both("ls")
    assert (result.exit_code, result.stderr) == (1, reader_refuses(vault))
    assert 'run "imgvault db upgrade"' in result.stderr


def _other_stores_key_file(vault, tmp_path, _):
    Store.init(settings=Settings.resolve(tmp_path / "other", environ={})).close()
    shutil.copy(tmp_path / "other" / "keyset.json", vault / "keyset.json")


def _wrong_key(vault, *_):
    document = json.loads((vault / "keyset.json").read_text())
    document["keys"][0]["key"] = "A" * 43 + "="
    (vault / "keyset.json").write_text(json.dumps(document))


def _no_key_file(vault, *_):
    (vault / "keyset.json").unlink()


def _readable_key_file(vault, *_):
    (vault / "keyset.json").chmod(0o644)


def _passphrase_for_a_key_file_store(_vault, _tmp_path, monkeypatch):
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "anything")


def _altered_setting(name: str, value: str):
    def alter(vault, *_):
        engine = raw_engine(vault)
        with engine.begin() as connection:
            table = schema.settings
            connection.execute(update(table).where(table.c.name == name).values(value=value))
        engine.dispose()

    return alter


@pytest.mark.parametrize(
    ("alter", "message"),
    [
        (_other_stores_key_file, "belongs to another store"),
        (_wrong_key, "does not open this store (wrong key)"),
        (_no_key_file, "keyset.json does not exist"),
        (_readable_key_file, "is accessible by other users"),
        (_passphrase_for_a_key_file_store, "unset IMGVAULT_PASSPHRASE"),
        (_altered_setting("primary_key_id", "x"), "primary_key_id is missing or not a key id"),
        (_altered_setting("primary_key_id", "12345"), "lacks the store's current key 12345"),
        (_altered_setting("key_source", "rsa"), 'key_source is neither "file" nor "passphrase"'),
        (_altered_setting("store_id", ""), "store_id is missing"),
        (_altered_setting("store_id", "another store"), "belongs to another store"),
    ],
    ids=lambda value: getattr(value, "__name__", value)[:40],
)
def test_a_key_that_does_not_open_the_store_is_the_same_error(vault, tmp_path, both, monkeypatch, alter, message):
    alter(vault, tmp_path, monkeypatch)
    for args in (["ls"], ["ls", "--json"], ["ls", "--encoded"], ["collections"]):
        result = both(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", reader_refuses(vault)), args
        assert message in result.stderr


@pytest.fixture
def passphrase_vault(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "correct horse battery staple")
    home = tmp_path / "p"
    with Store.init(home) as store:
        store.put(png(1), name="secret ünï.png", collection="private")
    monkeypatch.setenv("IMGVAULT_HOME", str(home))
    return home


def test_a_passphrase_store_lists_the_same_and_refuses_a_wrong_or_missing_passphrase(passphrase_vault, both,
                                                                                      monkeypatch):  # fmt: skip
    assert both("ls").stdout.splitlines()[1].endswith("private     secret ünï.png")
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "wrong horse")
    result = both("ls")
    assert result.stderr == reader_refuses(passphrase_vault)
    assert "IMGVAULT_PASSPHRASE is not this store's passphrase" in result.stderr
    monkeypatch.delenv("IMGVAULT_PASSPHRASE")
    assert both("collections").stderr == reader_refuses(passphrase_vault)
    engine = raw_engine(passphrase_vault)
    with engine.begin() as connection:
        connection.execute(update(schema.keys).values(kdf='{"kdf": "scrypt"'))
    engine.dispose()
    monkeypatch.setenv("IMGVAULT_PASSPHRASE", "correct horse battery staple")
    result = both("ls")
    assert "the key derivation parameters of key" in result.stderr
    assert result.stderr == reader_refuses(passphrase_vault)


@pytest.mark.parametrize("args", [["ls", "-c", "nope"], ["ls", "-c", "nope", "--json"],
                                  ["ls", "--encoded", "-c", "nope"]])  # fmt: skip
def test_an_unknown_collection_is_the_same_error(vault, both, args):
    result = both(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", 'Error: collection "nope" not found\n')


# -- tampering: an error, never garbage ---------------------------------------------------------------------


def _image_row(home, image_id: str):
    engine = raw_engine(home)
    i, c = schema.images, schema.collections
    with engine.connect() as connection:
        row = connection.execute(
            select(i, c.c.name.label("collection")).join(c, c.c.id == i.c.collection_id).where(i.c.id == image_id)
        ).one()
    engine.dispose()
    return row


def _set(home, image_id: str, **values) -> None:
    engine = raw_engine(home)
    with engine.begin() as connection:
        connection.execute(update(schema.images).where(schema.images.c.id == image_id).values(values))
    engine.dispose()


def _sealed_elsewhere(home, image_id: str, sealer_for) -> None:
    """Replace the image's name with one sealed for its very place, but by ``sealer_for(store_id, keyset)``."""
    with Store.open(home) as store:
        store_id, keyset = store.store_id, store.sealer.keyset
    row = _image_row(home, image_id)
    bound = image_context_of(row.collection_id, row.collection, row.format, row.width, row.height, row.mode, row.bytes,
                             True)  # fmt: skip
    blob = sealer_for(store_id, keyset).seal("image.name", image_id, b"someone else's.png", context=bound)
    _set(home, image_id, name=blob)


def _flip_name(home, victim, _other):
    tamper(home, schema.images, victim, "name", flip_bit(-3))


def _flip_metadata(home, victim, _other):
    tamper(home, schema.images, victim, "metadata", flip_bit(30))


def _move_name(home, victim, other):
    _set(home, victim, name=_image_row(home, other).name)


def _edit_width(home, victim, _other):
    _set(home, victim, width=_image_row(home, victim).width + 1)


def _bytes_in_a_bound_column(home, victim, _other):
    # SQLite keeps what it is given: a BLOB where text was, which no blob can have been sealed with.
    _set(home, victim, format=_image_row(home, victim).format.encode())


def _another_stores_key(home, victim, _other):
    _sealed_elsewhere(home, victim, lambda store_id, keyset: Sealer(Keyset.generate(), store_id))


def _another_key_with_this_key_id(home, victim, _other):
    def sealer(store_id, keyset):
        return Sealer(Keyset({keyset.primary_id: bytes(32)}, keyset.primary_id), store_id)

    _sealed_elsewhere(home, victim, sealer)


def _this_key_under_another_store_id(home, victim, _other):
    _sealed_elsewhere(home, victim, lambda _, keyset: Sealer(keyset, "another store"))


TAMPERINGS = [_flip_name, _flip_metadata, _move_name, _edit_width, _bytes_in_a_bound_column, _another_stores_key,
              _another_key_with_this_key_id, _this_key_under_another_store_id]  # fmt: skip


@pytest.mark.parametrize("tampering", TAMPERINGS, ids=lambda tampering: tampering.__name__.strip("_"))
def test_a_tampered_image_is_the_same_integrity_error_after_the_same_lines(vault, both, tampering):
    ids = image_ids(vault)
    # One with metadata (the first odd name), past the first page of the listing.
    with Store.open(vault) as store:
        victim = next(image.id for image in store.images("holidays", after=ids[2000]) if image.metadata)
    tampering(vault, victim, ids[0])
    for args in (["ls"], ["ls", "--json"], ["ls", "-c", "holidays"]):
        result = both(*args)
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: image.") and f" {victim} failed its integrity check" in result.stderr
        assert "someone else's" not in result.stdout
    listed = both("ls").stdout.splitlines()
    assert len(listed) == 1 + ids.index(victim)  # the header and every image before it, then the error
    with Store.open(vault) as reader, pytest.raises(IntegrityError):
        assert reader.database.file is not None
        list(reader.images())


def test_a_timestamp_that_is_not_one_fails_the_same_way_at_the_same_line(vault, both):
    ids = image_ids(vault)
    with sqlite3.connect(vault / "store.db") as connection:
        connection.execute("UPDATE images SET created_at = 'yesterday' WHERE id = ?", (ids[2005],))
    for args in (["ls"], ["ls", "--json"]):
        result = both(*args)
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: unexpected ValueError: Invalid isoformat string: 'yesterday'")
    # The first page is listed, none of the second (a page is read whole before it is listed, as Store reads it).
    assert len(both("ls").stdout.splitlines()) == 1 + 2000


@pytest.mark.parametrize("values", [{"params": '{"codec": {}}'}, {"method": b"kmeans"}], ids=["params", "bytes"])
def test_tampered_metrics_of_an_encoded_image_are_the_same_integrity_error(vault, both, values):
    engine = raw_engine(vault)
    with engine.begin() as connection:
        connection.execute(update(schema.encoded_images).values(values))
    engine.dispose()
    result = both("ls", "--encoded")
    assert result.exit_code == 1
    assert "encoded.metrics" in result.stderr and "failed its integrity check" in result.stderr


# -- which path ---------------------------------------------------------------------------------------------


def test_only_a_plain_sqlite_file_is_read_with_sqlite3(vault, monkeypatch):
    with Store.open(vault) as reader:
        assert reader.database.file is not None
    # Options for SQLAlchemy's driver (and %XX escapes it would unquote) stay with SQLAlchemy.
    monkeypatch.setenv("IMGVAULT_DB_URL", f"sqlite:///{vault / 'store.db'}?timeout=5")
    with Store.open(settings=Settings.resolve(vault)) as store:
        assert store.database.file is None
        assert [image.id for image in store.images()] == image_ids(vault)
