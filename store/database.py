"""The store's database: one object that reads with the SELECTs of :mod:`.queries` and writes through SQLAlchemy.

Reads of a SQLite store in a plain file go to the database directly, on read-only connections of the
standard library's sqlite3 (``mode=ro``: they never create, migrate or write the database). Getting an
image by id is one indexed SELECT that SQLite answers in a few microseconds; through SQLAlchemy (a pooled
connection checked out and in, its events, a result object) the same SELECT costs about 80 us, eight times
the select and the AES-GCM open together; and importing SQLAlchemy takes longer than listing an empty
store. Any other database, a SQLite URL with options (SQLAlchemy reads them after a ``?`` and unquotes
``%XX`` escapes in the path), and a SQLite file that a read-only connection cannot reach at all, are read
through SQLAlchemy, with the same SELECTs, into the same named rows.

SQLAlchemy's engine (:mod:`.engine`) is made on first use: by a write, or a read inside one. One of the
read-only connections also tells whether the database has changed: ``PRAGMA data_version`` changes when
any other connection, in this process or another, has committed since that connection last asked (what a
cache of token records needs). Like every read-only connection to a database in WAL mode, they leave the
database's ``-wal`` and ``-shm`` files (empty, private as the database is) for the next writer.
"""

import itertools
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .config import Settings
from .opening import connect_read_only
from .queries import Query

_inherited: list = []  # in a forked child, the parent's connections (see SQLiteFile._forget_in_child)
_forked: weakref.WeakSet = weakref.WeakSet()  # what must forget its parent's state in a forked child
_connections = itertools.count()  # numbers each connection data_version asks: next() is atomic


def forget_in_child(thing) -> None:
    """Have ``thing._forget_in_child()`` called in every child forked from now on, while ``thing`` lives.

    One hook for all: ``os.register_at_fork`` cannot take a hook back, and one per store would pile up.
    """
    _forked.add(thing)


def _after_fork_in_child() -> None:
    for thing in list(_forked):
        thing._forget_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _timestamp(value) -> datetime | None:
    # What SQLAlchemy's DateTime gives for SQLite's text timestamps (and its error for anything else).
    return value if value is None or isinstance(value, datetime) else datetime.fromisoformat(value)


def _rows(query: Query, rows) -> list:
    make = query.row._make
    if not query.times:
        return [make(row) for row in rows]
    made = [make(row) for row in rows]
    # Every row's timestamps are read before any row is used: a bad one fails the whole read, as SQLAlchemy's.
    return [row._replace(**{name: _timestamp(getattr(row, name)) for name in query.times}) for row in made]


class SQLiteFile:
    """Read-only sqlite3 connections to one SQLite file: one per concurrent reader, reused, closed by
    :meth:`close`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._idle: list[sqlite3.Connection] = []  # list.pop and list.append are atomic: no lock needed
        self._version_lock = threading.Lock()
        self._version_connection: sqlite3.Connection | None = None
        self._version_source = -1  # which connection _version_connection is (from _connections)
        # A connection must not be used on both sides of a fork: a child starts without any.
        forget_in_child(self)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = connect_read_only(self.path, check_same_thread=False)
        try:
            yield connection
        finally:
            self._idle.append(connection)

    def fetch(self, sql: str, parameters: dict) -> list:
        """The rows of one SELECT, on an idle connection (or a new one). Written out rather than through
        :meth:`connection`: an image request makes one, and a context manager costs more than the SELECT."""
        idle = self._idle
        try:
            connection = idle.pop()
        except IndexError:
            connection = connect_read_only(self.path, check_same_thread=False)
        try:
            return connection.execute(sql, parameters).fetchall()
        finally:
            idle.append(connection)

    def revision(self) -> str | None:
        """The Alembic revision of the database, None without our schema (as :func:`.engine.current_revision`).
        The first contact: a database that cannot be reached raises :class:`sqlite3.Error` here."""
        with self.connection() as connection:
            tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            if connection.execute(tables).fetchone() is None:
                return None
            found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if found is None else found[0]

    def data_version(self) -> tuple[int, int]:
        """A value that differs from the last call's whenever another connection (any process) has committed
        since: ``PRAGMA data_version`` with the connection it was asked on, which is new after :meth:`close`
        and in a forked child (a new connection's numbers start again, and would repeat older ones)."""
        with self._version_lock:
            if self._version_connection is None:
                self._version_connection = connect_read_only(self.path, check_same_thread=False)
                self._version_source = next(_connections)
            return self._version_source, self._version_connection.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        """Close the connections not in use now (one in use is closed when it is collected)."""
        while self._idle:
            self._idle.pop().close()
        with self._version_lock:
            if self._version_connection is not None:
                self._version_connection.close()
                self._version_connection = None

    def _forget_in_child(self) -> None:
        # Kept, never closed nor used: SQLite must not close in a child what the parent opened.
        _inherited.extend(self._idle)
        _inherited.append(self._version_connection)
        self._idle = []
        self._version_lock = threading.Lock()
        self._version_connection = None


def plain_sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file of ``settings`` when its URL is a plain path (sqlite3 can read it as SQLAlchemy would)."""
    if settings.sqlite_path is None or "?" in settings.db_url or "%" in settings.db_url:
        return None
    database = settings.db_url.split(":///", 1)[-1]
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return settings.sqlite_path


class Database:
    """The database of a store at ``settings``: its reads (:meth:`rows`, :meth:`first`), its write
    transactions (:meth:`writing`) and SQLAlchemy's engine (:attr:`engine`, made on first use)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.is_sqlite = settings.db_url.startswith("sqlite")  # asked on every web request (web.auth.on_store)
        self._engine = None
        path = plain_sqlite_file(settings)
        self.file = SQLiteFile(path) if path is not None else None

    @property
    def engine(self):
        """SQLAlchemy's engine for the database (imports SQLAlchemy the first time)."""
        if self._engine is None:
            from .engine import create_store_engine

            self._engine = create_store_engine(self.settings.db_url)
        return self._engine

    def read_through_sqlalchemy(self) -> None:
        """Read through SQLAlchemy from now on (a SQLite file that read-only connections cannot reach)."""
        if self.file is not None:
            self.file.close()
            self.file = None

    def revision(self) -> str | None:
        """The schema's Alembic revision, None without our schema; :class:`ConfigError` if the database
        cannot be reached."""
        if self.file is not None:
            try:
                return self.file.revision()
            except sqlite3.Error:
                self.read_through_sqlalchemy()  # SQLAlchemy opens it, or says why as it always has
        from .engine import current_revision

        return current_revision(self.engine)

    def rows(self, query: Query, connection=None, **parameters) -> list:
        """The rows of ``query`` (named rows of its type), on ``connection`` if given (a SQLAlchemy connection
        in a transaction of the caller's), else on a read of their own."""
        if connection is None and self.file is not None:
            return _rows(query, self.file.fetch(query.sql, parameters))
        from sqlalchemy import text

        if connection is not None:
            return _rows(query, connection.execute(text(query.sql), parameters).all())
        from .engine import one_read

        with one_read(self.engine) as reader:
            return _rows(query, reader.execute(text(query.sql), parameters).all())

    def first(self, query: Query, connection=None, **parameters):
        """The first row of ``query``, or None."""
        if connection is None and self.file is not None:  # the hot path: an image request's select, written out
            found = self.file.fetch(query.sql, parameters)
            if not found:
                return None
            return query.row._make(found[0]) if not query.times else _rows(query, found[:1])[0]
        found = self.rows(query, connection, **parameters)
        return found[0] if found else None

    @contextmanager
    def writing(self):
        """A SQLAlchemy connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        from .engine import write_transaction

        with write_transaction(self.engine) as connection:
            yield connection

    def data_version(self) -> tuple[int, int] | None:
        """A value that changes whenever another connection commits (see :meth:`SQLiteFile.data_version`), or
        None where the database cannot tell (anything but a SQLite file)."""
        return self.file.data_version() if self.file is not None else None

    def close(self) -> None:
        """Release the database connections."""
        if self.file is not None:
            self.file.close()
        if self._engine is not None:
            self._engine.dispose()
