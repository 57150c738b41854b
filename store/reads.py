"""The store's hottest reads on a SQLite file, on read-only ``sqlite3`` connections of their own.

Getting an image by id is one indexed SELECT that SQLite answers in a few microseconds; through
SQLAlchemy (a pooled connection checked out and in, its events, the compiled-statement cache, a result
object) the same SELECT costs about 80 us, eight times the select and the AES-GCM open together. The web
service answers every image request with one, and checks an API token with another, so these go to the
database directly: the statement is still the one built with SQLAlchemy Core (compiled once, here), and
only the store reads through it.

The connections are opened read-only (``mode=ro``), so nothing here can write. One of them also tells
whether the database has changed: ``PRAGMA data_version`` on a connection changes when any other
connection, in this process or another, has committed since that connection last asked. That is what
lets a cache of token records (:mod:`.tokens`) never serve a token revoked from the command line. Its
numbers mean something on their own connection only (a new connection starts again from the same small
number), so :meth:`SqliteReads.data_version` pairs them with the connection they come from.
"""

import itertools
import os
import sqlite3
import threading
import weakref
from pathlib import Path

from sqlalchemy import Engine

from .opening import connect_read_only

_inherited: list = []  # in a forked child, the parent's connections (see SqliteReads._forget_in_child)
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


class SqliteReads:
    """Read-only connections to one SQLite file: one per concurrent reader, reused, closed by :meth:`close`."""

    def __init__(self, path: Path, image_by_id: str):
        self._path = Path(path)
        self._image_by_id = image_by_id
        self._idle: list[sqlite3.Connection] = []  # list.pop and list.append are atomic: no lock needed
        self._version_lock = threading.Lock()
        self._version_connection: sqlite3.Connection | None = None
        self._version_source = -1  # which connection _version_connection is (from _connections)
        # A connection must not be used on both sides of a fork: a child starts without any.
        forget_in_child(self)

    @classmethod
    def for_engine(cls, engine: Engine, image_by_id) -> "SqliteReads | None":
        """Reads for ``engine``'s database if it is a SQLite file opened by a plain URL, else None.

        ``image_by_id`` is the Core SELECT of an image by id (one bind parameter): its columns are the row's.
        """
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.get_driver_name() != "pysqlite" or url.query:
            return None
        if url.database in (None, "", ":memory:") or url.database.startswith("file:"):
            return None
        return cls(Path(url.database), str(image_by_id.compile(dialect=engine.dialect)))

    def _connect(self) -> sqlite3.Connection:
        return connect_read_only(self._path, check_same_thread=False)

    def image_row(self, image_id: str) -> tuple | None:
        """The row of image ``image_id`` in the columns of the SELECT given at construction, or None."""
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._connect()
        try:
            return connection.execute(self._image_by_id, (image_id,)).fetchone()
        finally:
            self._idle.append(connection)

    def data_version(self) -> tuple[int, int]:
        """A value that differs from the last call's whenever another connection (any process) has committed
        since: ``PRAGMA data_version`` with the connection it was asked on, which is new after :meth:`close`
        and in a forked child (a new connection's numbers start again, and would repeat older ones)."""
        with self._version_lock:
            if self._version_connection is None:
                self._version_connection, self._version_source = self._connect(), next(_connections)
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
