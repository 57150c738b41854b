"""What opening a store checks, on values however they were read: the schema revision, the settings, the keys.

:meth:`Store.open <imgvault.store.Store.open>` reads them with the standard library's sqlite3 (a SQLite
file) or through SQLAlchemy (any database, :mod:`.database`) and hands what it read to these functions, so
a store is refused with the same message whichever way it was read. Nothing here imports SQLAlchemy.
"""

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from imgvault.basics.errors import ConfigError, IntegrityError

from .config import Settings
from .crypto import Keyset, Sealer
from .keys import derive_key, read_key_file, write_key_file
from .locks import key_file_lock_path, leftover_key_files, try_file_lock

# The Alembic revision this code reads and writes; bumped with every migration (schema.py re-exports it).
SCHEMA_REVISION = "0005_authenticated_rights"
# Sealed with each key into the keys table, to tell a wrong key when the store is opened.
KEY_CHECK = b"imgvault key check"
# How long a SQLite connection waits for another's lock before it gives up.
BUSY_TIMEOUT_S = 30


def connect_read_only(path: Path, **options) -> sqlite3.Connection:
    """A sqlite3 connection to the SQLite file ``path`` that cannot write: it never creates, migrates or
    changes the database. Each SELECT is its own read transaction (isolation_level None), a snapshot of
    the latest commit."""
    uri = f"{Path(path).absolute().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, **options)


def check_revision(revision: str | None, where: str) -> None:
    """Raise :class:`ConfigError` unless ``revision`` (None: no schema at all) is this version's."""
    if revision is None:
        raise ConfigError(f'no imgvault store in {where} (run "imgvault init" first)')
    if revision != SCHEMA_REVISION:
        raise ConfigError(
            f"the store in {where} has schema revision {revision} and this imgvault needs {SCHEMA_REVISION}"
            ' (run "imgvault db upgrade", or use the imgvault version that wrote it)'
        )


def store_identity(settings: Mapping[str, str]) -> tuple[str, str]:
    """The store id and key source from the settings table's rows, checked to be of the right shape."""
    store_id, key_source = settings.get("store_id"), settings.get("key_source")
    if not store_id:
        raise IntegrityError("the store's settings were altered: store_id is missing")
    if key_source not in ("file", "passphrase"):
        raise IntegrityError('the store\'s settings were altered: key_source is neither "file" nor "passphrase"')
    return store_id, key_source


def primary_key_id(settings: Mapping[str, str]) -> int:
    """The primary key's id from the settings table's rows."""
    value = settings.get("primary_key_id")
    if value is None or not (value.isascii() and value.isdigit()):
        raise IntegrityError("the store's settings were altered: primary_key_id is missing or not a key id")
    return int(value)


def unlock(settings: Settings, store_id: str, key_source: str, primary_id: int, key_rows: Iterable[tuple],
           derived: dict[str, bytes]) -> Sealer:  # fmt: skip
    """The store's :class:`Sealer`, from its key file or passphrase, checked against the keys table.

    ``key_rows`` are the keys table's ``(key_id, kdf, check)``; ``derived`` caches the keys derived from
    the passphrase by their parameters (scrypt is slow on purpose). A key file or passphrase that does
    not open the store raises :class:`IntegrityError` or :class:`ConfigError` saying which.
    """
    rows = list(key_rows)
    if key_source == "passphrase":
        if not settings.passphrase:
            raise ConfigError("this store's key is derived from a passphrase: set IMGVAULT_PASSPHRASE")
        keys = {}
        for key_id, kdf, _ in rows:
            if kdf not in derived:
                try:
                    derived[kdf] = derive_key(settings.passphrase, json.loads(kdf))
                except (ValueError, TypeError, KeyError, AttributeError):
                    raise IntegrityError(f"the key derivation parameters of key {key_id} were altered") from None
            keys[key_id] = derived[kdf]
        wrong_key = "IMGVAULT_PASSPHRASE is not this store's passphrase (the key it gives does not open it)"
    else:
        if settings.passphrase:
            raise ConfigError(
                f"this store's key is in a key file ({settings.key_file}), not derived from a"
                " passphrase: unset IMGVAULT_PASSPHRASE"
            )
        keys = read_key_file(settings.key_file, store_id)
        wrong_key = f"key file {settings.key_file} does not open this store (wrong key)"
    if primary_id not in keys:
        raise IntegrityError(f"{wrong_key}: it lacks the store's current key {primary_id}")
    sealer = Sealer(Keyset(keys, primary_id), store_id)
    checks = {key_id: check for key_id, _, check in rows}
    try:
        sealer.open("key", str(primary_id), checks.get(primary_id))
    except IntegrityError:
        raise IntegrityError(wrong_key) from None
    return sealer


def tidy_key_file(key_file, store_id: str, store_key_ids: Callable[[], set[int]]) -> None:
    """Finish what a killed rotation left in the key file, unless a rotation is running now.

    Removes temporary key files (they hold keys, some of them retired), and drops from the key file
    the keys the store does not have (``store_key_ids()``, read under the key file's lock): a retired
    key, or a new key the store never installed. No record can be sealed with either.
    """
    with try_file_lock(key_file_lock_path(key_file)) as held:
        if not held:
            return  # a rotation is running (these are its files), or nothing can be written there
        for leftover in leftover_key_files(key_file):
            leftover.unlink(missing_ok=True)
        file_keys = read_key_file(key_file, store_id)
        in_store = store_key_ids()
        kept = {key_id: key for key_id, key in file_keys.items() if key_id in in_store}
        if kept and len(kept) < len(file_keys):
            write_key_file(key_file, store_id, kept)
