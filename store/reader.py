"""A read-only view of a SQLite store on the standard library's sqlite3: listing without SQLAlchemy.

Importing SQLAlchemy takes longer than listing an empty store may take, so the commands that only list
(``imgvault ls``, ``ls --encoded`` and ``collections``) read a SQLite store through :class:`SQLiteReader`
instead of :class:`~imgvault.store.Store`. It opens the database file read-only (a ``mode=ro`` URI: it
never creates, migrates or writes the database), makes the checks of :meth:`Store.open` with the same
functions (:mod:`.opening`: the schema revision, the settings, the key file or passphrase, and tidying
what a killed rotation left in the key file), runs the SELECTs that Store runs, and opens each row with
the same function (:mod:`.bindings`), so that a tampered or moved blob is the same
:class:`IntegrityError`. ``tests/test_fast_listing.py`` holds the two paths to the same output.

Other databases, and SQLite URLs with options, are read by :class:`Store` (:func:`open_reader`). So is
a database that the read-only connection cannot reach at all: Store then says why, as it always has.
Like every read-only connection to a database in WAL mode, the reader leaves the database's ``-wal`` and
``-shm`` files (empty, private as the database is) for the next writer, which removes them when it closes.
"""

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from .bindings import listed_encoded, listed_image
from .config import Settings
from .crypto import Sealer
from .errors import CollectionNotFound, ConfigError
from .opening import check_revision, connect_read_only, primary_key_id, store_identity, tidy_key_file, unlock
from .records import CollectionInfo, EncodedInfo, ImageInfo

# The SELECTs of Store (images.py, encodings.py), as SQLAlchemy compiles them for SQLite.
_IMAGES = (
    "SELECT images.id, images.collection_id, collections.name, images.format, images.width, images.height,"
    " images.mode, images.bytes, images.created_at, images.name, images.metadata"
    " FROM images JOIN collections ON collections.id = images.collection_id"
    " WHERE images.id > :after{} ORDER BY images.id LIMIT :limit"
)
_IN_COLLECTION = " AND images.collection_id = :collection_id"
_ENCODED = (
    "SELECT encoded_images.id, encoded_images.image_id, encoded_images.model_id, collections.name,"
    " encoded_images.method, encoded_images.params, encoded_images.metrics, encoded_images.bytes,"
    " encoded_images.created_at"
    " FROM encoded_images JOIN images ON images.id = encoded_images.image_id"
    " JOIN collections ON collections.id = images.collection_id{} ORDER BY encoded_images.id"
)
_COLLECTIONS = (
    "SELECT collections.name, collections.created_at, count(images.id), coalesce(sum(images.bytes), 0)"
    " FROM collections LEFT OUTER JOIN images ON images.collection_id = collections.id"
    " GROUP BY collections.id, collections.name, collections.created_at ORDER BY collections.name"
)


def open_reader(settings: Settings):
    """What the listing commands read: a :class:`SQLiteReader` for a SQLite store in a plain file, else an
    open :class:`Store` (which lists the same way). Either is a context manager."""
    path = _plain_sqlite_file(settings)
    if path is not None:
        try:
            return SQLiteReader.open(settings, path)
        except sqlite3.Error:
            pass  # the database cannot be reached read-only: Store opens it, or says why as it always has
    from .store import Store

    return Store.open(settings=settings)


def _plain_sqlite_file(settings: Settings) -> Path | None:
    # Only a plain path: SQLAlchemy reads options after a "?" and unquotes %XX escapes in the path.
    if settings.sqlite_path is None or "?" in settings.db_url or "%" in settings.db_url:
        return None
    return settings.sqlite_path


def _revision(connection: sqlite3.Connection) -> str | None:
    """The Alembic revision of the database, None without our schema (as engine.current_revision)."""
    tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    if connection.execute(tables).fetchone() is None:
        return None
    found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if found is None else found[0]


def _datetime(value) -> datetime | None:
    # What SQLAlchemy's DateTime gives for SQLite's text timestamps (and its error for anything else).
    return None if value is None else datetime.fromisoformat(value)


class SQLiteReader:
    """A SQLite store opened read-only, for listing: :meth:`images`, :meth:`collection_names`,
    :meth:`collections` and :meth:`encoded_images`, as :class:`Store` has them."""

    def __init__(self, settings: Settings, connection: sqlite3.Connection, store_id: str, key_source: str,
                 sealer: Sealer):  # fmt: skip
        # Use SQLiteReader.open; this only assembles the parts.
        self.settings = settings
        self.store_id = store_id
        self.key_source = key_source
        self.sealer = sealer
        self._connection = connection

    @classmethod
    def open(cls, settings: Settings, path: Path) -> "SQLiteReader":
        """Open the store in the SQLite file ``path`` read-only, checking what :meth:`Store.open` checks.

        Raises :class:`sqlite3.Error` when the database cannot be reached at all (the caller lets Store
        say why), and the errors of Store.open for everything else.
        """
        if not path.exists():
            raise ConfigError(f'no imgvault store in {settings.home} (run "imgvault init" first)')
        connection = connect_read_only(path)
        try:
            # The first contact: a database that cannot be reached raises sqlite3.Error here.
            check_revision(_revision(connection), settings.describe_db())
            stored = dict(connection.execute("SELECT name, value FROM settings").fetchall())
            store_id, key_source = store_identity(stored)
            primary_id = primary_key_id(stored)
            rows = connection.execute('SELECT key_id, kdf, "check" FROM keys').fetchall()
            sealer = unlock(settings, store_id, key_source, primary_id, rows, {})
            if key_source == "file":
                key_ids = "SELECT key_id FROM keys"
                tidy_key_file(settings.key_file, store_id, lambda: {k for (k,) in connection.execute(key_ids)})
            return cls(settings, connection, store_id, key_source, sealer)
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> "SQLiteReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _collection_id(self, name: str) -> str:
        found = self._connection.execute("SELECT collections.id FROM collections WHERE collections.name = ?",
                                         (name,)).fetchone()  # fmt: skip
        if found is None:
            raise CollectionNotFound(f'collection "{name}" not found')
        return found[0]

    def images(self, collection: str | None = None, *, page_size: int = 2000, after: str = "") -> Iterator[ImageInfo]:
        """As :meth:`Store.images`: every image (of one collection) in the order they were put, in pages."""
        parameters = {"limit": page_size}
        if collection is not None:
            parameters["collection_id"] = self._collection_id(collection)
        query = _IMAGES.format(_IN_COLLECTION if collection is not None else "")
        return self._pages(query, parameters, page_size, after)

    def _pages(self, query: str, parameters: dict, page_size: int, after: str) -> Iterator[ImageInfo]:
        sealer, execute = self.sealer, self._connection.execute
        while True:
            rows = execute(query, {**parameters, "after": after}).fetchall()
            # Each page's timestamps are read before any of its images is listed, as Store's rows are.
            created = [_datetime(row[8]) for row in rows]
            for row, when in zip(rows, created, strict=True):
                yield listed_image(sealer, (*row[:8], when, row[9], row[10]))
            if len(rows) < page_size:
                return
            after = rows[-1][0]

    def collection_names(self) -> list[str]:
        """Every collection's name, sorted."""
        return [name for (name,) in self._connection.execute("SELECT collections.name FROM collections"
                                                             " ORDER BY collections.name")]  # fmt: skip

    def collections(self) -> list[CollectionInfo]:
        """As :meth:`Store.collections`: every collection with its image count and size, by name."""
        rows = [(name, _datetime(created), count, size) for name, created, count, size
                in self._connection.execute(_COLLECTIONS).fetchall()]  # fmt: skip
        return [CollectionInfo(name=name, images=count, bytes=int(size), created=created)
                for name, created, count, size in rows]  # fmt: skip

    def encoded_images(self, collection: str | None = None) -> Iterator[EncodedInfo]:
        """As :meth:`Store.encoded_images`: every encoded image (of one collection), oldest first."""
        parameters = {}
        if collection is not None:
            parameters["collection_id"] = self._collection_id(collection)
        query = _ENCODED.format(" WHERE images.collection_id = :collection_id" if collection is not None else "")
        rows = [(*row[:8], _datetime(row[8])) for row in self._connection.execute(query, parameters).fetchall()]
        return (listed_encoded(self.sealer, row) for row in rows)
