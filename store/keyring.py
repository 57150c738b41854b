"""The store's keys: loading them from the key file or passphrase, making new ones, the primary key.

Every write goes through :meth:`Keyring._writing`, which makes sure that records are sealed with the
store's current primary key even when another process rotated it since this one opened the store.
"""

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, insert, select, update

from . import schema
from .config import Settings
from .crypto import Keyset, Sealer, new_key_id
from .engine import read_settings, write_transaction
from .errors import ConfigError, IntegrityError
from .keys import derive_key, new_kdf_params, read_key_file, write_key_file
from .locks import key_file_lock_path, leftover_key_files, try_file_lock
from .records import utc_now as _now

_KEY_CHECK = b"imgvault key check"


class Keyring:
    """The keys part of :class:`~imgvault.store.Store`; the other parts seal and open through :attr:`sealer`."""

    settings: Settings
    engine: Engine
    store_id: str
    key_source: str
    _sealer: Sealer | None
    _derived: dict[str, bytes]

    @property
    def sealer(self) -> Sealer:
        return self._sealer

    def _load_keys(self, connection: Connection) -> None:
        primary_id = _primary_key_id(read_settings(connection))
        rows = connection.execute(select(schema.keys)).all()
        if self.key_source == "passphrase":
            if not self.settings.passphrase:
                raise ConfigError("this store's key is derived from a passphrase: set IMGVAULT_PASSPHRASE")
            keys = {}
            for row in rows:
                if row.kdf not in self._derived:
                    try:
                        params = json.loads(row.kdf)
                        self._derived[row.kdf] = derive_key(self.settings.passphrase, params)
                    except (ValueError, TypeError, KeyError, AttributeError):
                        altered = f"the key derivation parameters of key {row.key_id} were altered"
                        raise IntegrityError(altered) from None
                keys[row.key_id] = self._derived[row.kdf]
            wrong_key = "IMGVAULT_PASSPHRASE is not this store's passphrase (the key it gives does not open it)"
        else:
            if self.settings.passphrase:
                raise ConfigError(
                    f"this store's key is in a key file ({self.settings.key_file}), not derived from a"
                    " passphrase: unset IMGVAULT_PASSPHRASE"
                )
            keys = read_key_file(self.settings.key_file, self.store_id)
            wrong_key = f"key file {self.settings.key_file} does not open this store (wrong key)"
        if primary_id not in keys:
            raise IntegrityError(f"{wrong_key}: it lacks the store's current key {primary_id}")
        sealer = Sealer(Keyset(keys, primary_id), self.store_id)
        checks = {row.key_id: row.check for row in rows}
        try:
            sealer.open("key", str(primary_id), checks.get(primary_id))
        except IntegrityError:
            raise IntegrityError(wrong_key) from None
        self._sealer = sealer

    def _new_key(self, taken: dict[int, bytes]) -> tuple[int, bytes, str | None]:
        """A fresh key id and key: random for a key file, derived with a new salt for a passphrase."""
        key_id = new_key_id(taken)
        if self.key_source == "file":
            return key_id, secrets.token_bytes(32), None
        params = new_kdf_params()
        kdf = json.dumps(params, sort_keys=True)
        self._derived[kdf] = derive_key(self.settings.passphrase, params)
        return key_id, self._derived[kdf], kdf

    def _install_primary(self, connection: Connection, keys: dict[int, bytes], key_id: int, kdf: str | None) -> None:
        """Record ``key_id`` (one of ``keys``) as the store's primary key, inside the caller's transaction."""
        self._sealer = Sealer(Keyset(keys, key_id), self.store_id)
        check = self._sealer.seal("key", str(key_id), _KEY_CHECK)
        connection.execute(insert(schema.keys).values(key_id=key_id, kdf=kdf, check=check, created_at=_now()))
        table = schema.settings
        moved = connection.execute(update(table).where(table.c.name == "primary_key_id").values(value=str(key_id)))
        if moved.rowcount == 0:
            connection.execute(insert(table).values(name="primary_key_id", value=str(key_id)))

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction whose sealer uses the store's current primary key.

        Another process may have rotated the key since this store was opened; sealing with a key that
        is about to be retired would make the record unreadable, so the primary is checked under the
        write lock and the keys reloaded when it moved.
        """
        with write_transaction(self.engine) as connection:
            # FOR SHARE (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers already): a rotation
            # installing a new primary waits for this transaction to commit, so no record sealed here
            # with the old primary can commit after the rotation started re-sealing.
            table = schema.settings
            primary = connection.execute(
                select(table.c.value).where(table.c.name == "primary_key_id").with_for_update(read=True)
            ).scalar()
            if _primary_key_id({"primary_key_id": primary}) != self._sealer.keyset.primary_id:
                self._load_keys(connection)
            yield connection

    def _tidy_key_file(self, connection: Connection) -> None:
        """Finish what a killed rotation left in the key file, unless a rotation is running now.

        Removes temporary key files (they hold keys, some of them retired), and drops from the key file
        the keys the store does not have: a retired key, or a new key the store never installed. No
        record can be sealed with either.
        """
        key_file = self.settings.key_file
        with try_file_lock(key_file_lock_path(key_file)) as held:
            if not held:
                return  # a rotation is running (these are its files), or nothing can be written there
            for leftover in leftover_key_files(key_file):
                leftover.unlink(missing_ok=True)
            file_keys = read_key_file(key_file, self.store_id)
            in_store = set(connection.execute(select(schema.keys.c.key_id)).scalars())
            kept = {key_id: key for key_id, key in file_keys.items() if key_id in in_store}
            if kept and len(kept) < len(file_keys):
                write_key_file(key_file, self.store_id, kept)


def _primary_key_id(settings: dict[str, str]) -> int:
    value = settings.get("primary_key_id")
    if value is None or not (value.isascii() and value.isdigit()):
        raise IntegrityError("the store's settings were altered: primary_key_id is missing or not a key id")
    return int(value)


def read_store_settings(connection: Connection) -> tuple[str, str]:
    """The store id and key source from the settings table, checked to be of the right shape."""
    settings = read_settings(connection)
    store_id, key_source = settings.get("store_id"), settings.get("key_source")
    if not store_id:
        raise IntegrityError("the store's settings were altered: store_id is missing")
    if key_source not in ("file", "passphrase"):
        raise IntegrityError('the store\'s settings were altered: key_source is neither "file" nor "passphrase"')
    return store_id, key_source
