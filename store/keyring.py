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
from .keys import derive_key, new_kdf_params
from .opening import KEY_CHECK, primary_key_id, store_identity, tidy_key_file, unlock
from .records import utc_now as _now


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
        primary_id = primary_key_id(read_settings(connection))
        k = schema.keys.c
        rows = connection.execute(select(k.key_id, k.kdf, k.check)).all()
        self._use(unlock(self.settings, self.store_id, self.key_source, primary_id, rows, self._derived))

    def _use(self, sealer: Sealer) -> None:
        """Seal and open with ``sealer`` from now on; it reads the keys again when it meets a newer key."""
        sealer.reload = self._reloaded_keyset
        self._sealer = sealer

    def _reloaded_keyset(self) -> Keyset:
        # A blob sealed with a key this process lacks: another process rotated the key (it re-seals every
        # record, then retires the old key), so the keys are read again, as when the store was opened. A
        # key id that is in no keys table (an altered blob) still finds no key and is refused.
        with self.engine.connect() as connection:
            self._load_keys(connection)
        return self._sealer.keyset

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
        self._use(Sealer(Keyset(keys, key_id), self.store_id))
        check = self._sealer.seal("key", str(key_id), KEY_CHECK)
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
            if primary_key_id({"primary_key_id": primary}) != self._sealer.keyset.primary_id:
                self._load_keys(connection)
            yield connection

    def _tidy_key_file(self, connection: Connection) -> None:
        """Finish what a killed rotation left in the key file (see :func:`.opening.tidy_key_file`)."""
        key_ids = schema.keys.c.key_id
        tidy_key_file(self.settings.key_file, self.store_id, lambda: set(connection.execute(select(key_ids)).scalars()))


def read_store_settings(connection: Connection) -> tuple[str, str]:
    """The store id and key source from the settings table, checked to be of the right shape."""
    return store_identity(read_settings(connection))
