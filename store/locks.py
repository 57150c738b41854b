"""One key rotation per store at a time, and what a killed rotation leaves behind.

A rotation runs as many transactions (one per batch), so no transaction can hold it; it holds two locks
for its whole length instead, both released by the operating system or the server if the process dies,
so that a killed rotation never leaves a stale lock behind:

- the database lock: on PostgreSQL a session-level advisory lock (``pg_try_advisory_lock``) on a
  connection of its own, keyed by the store id; on SQLite an exclusive ``flock`` on a lock file beside
  the database file. (SQLite's own locks last one transaction, and a ``BEGIN IMMEDIATE`` held for the
  whole rotation would stop every writer; SQLite's readers and writers are on this machine anyway, as
  its file locks are.) A row in a table would survive a SIGKILL and then need a lease to expire.
- the key file lock: an exclusive ``flock`` on ``.<key file>.lock`` beside the key file, which also keeps
  a starting command from tidying the key file under a running rotation.

A second rotation fails fast with :class:`RotationInProgress` rather than waiting: a rotation of a large
store takes minutes, and a command that silently waits that long looks hung.
"""

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from imgvault.basics.errors import ConfigError, RotationInProgress

BUSY = "another key rotation is in progress on this store; run imgvault key rotate again when it has finished"


def key_file_lock_path(key_file: Path) -> Path:
    return key_file.with_name(f".{key_file.name}.lock")


def leftover_key_files(key_file: Path) -> list[Path]:
    """Temporary key files that a killed :func:`~imgvault.store.keys.write_key_file` left beside ``key_file``."""
    return sorted(key_file.parent.glob(f".{key_file.name}.*.tmp"))


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def try_file_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600) if it is free; yields whether it is held.

    Yields False too when the lock file cannot be made (a key file in a read-only place).
    """
    try:
        fd = _open_lock_file(path)
    except OSError:
        yield False
        return
    try:
        yield _try_lock(fd)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def _held_file_lock(path: Path, what: str) -> Iterator[None]:
    try:
        fd = _open_lock_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot lock the {what} for a key rotation: {path}: {exc.strerror or exc}") from None
    try:
        if not _try_lock(fd):
            raise RotationInProgress(BUSY)
        yield
    finally:
        os.close(fd)


def _advisory_key(store_id: str) -> int:
    """A signed 64-bit advisory lock key that is this store's, for rotations."""
    digest = hashlib.sha256(f"imgvault key rotation {store_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _postgresql_lock(engine, store_id: str) -> Iterator[None]:
    # SQLAlchemy is imported here: the key file's lock (above) serves the read-only listing, without it.
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    key = _advisory_key(store_id)
    connection, held = engine.connect(), False
    try:
        held = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        connection.commit()  # the lock belongs to the session: no transaction stays open for the rotation
        if not held:
            raise RotationInProgress(BUSY)
        yield
    finally:
        # Released now: a closed connection's session (and its locks) ends only when the server notices,
        # which a rotation right after this one could beat. Should the unlock fail, the session's end
        # releases the lock: the connection is not pooled either way.
        with contextlib.suppress(SQLAlchemyError):
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
        connection.invalidate()
        connection.close()


@contextmanager
def rotation_lock(store) -> Iterator[None]:
    """Hold ``store``'s rotation locks (database, then key file), or raise :class:`RotationInProgress`."""
    with ExitStack() as stack:
        if store.engine.dialect.name == "postgresql":
            stack.enter_context(_postgresql_lock(store.engine, store.store_id))
        elif store.settings.sqlite_path is not None:
            path = store.settings.sqlite_path
            stack.enter_context(_held_file_lock(path.with_name(f".{path.name}.rotation.lock"), "database"))
        if store.key_source == "file":
            stack.enter_context(_held_file_lock(key_file_lock_path(store.settings.key_file), "key file"))
        yield
