"""The store's keys: loading them from the key file or passphrase, making new ones, the primary key.

Every write goes through :meth:`Keyring.writing`, which makes sure that records are sealed with the
store's current primary key even when another process rotated it since this one opened the store.
"""

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from . import queries
from .config import Settings
from .crypto import Keyset, Sealer, new_key_id
from .database import Database
from .keys import derive_key, new_kdf_params
from .opening import KEY_CHECK, primary_key_id, tidy_key_file, unlock
from .records import utc_now as _now


def read_settings(database: Database, connection=None) -> dict[str, str]:
    """The store-wide settings (store id, key source, primary key id), read once when a store is opened."""
    return dict(database.rows(queries.SETTINGS, connection))


class Keyring:
    """The keys of a store: what every other part seals and opens with (:attr:`sealer`)."""

    def __init__(self, settings: Settings, database: Database, store_id: str, key_source: str):
        self.settings, self.database = settings, database
        self.store_id, self.key_source = store_id, key_source
        self._sealer: Sealer | None = None
        self._derived: dict[str, bytes] = {}  # keys derived from the passphrase, by their parameters

    @property
    def sealer(self) -> Sealer:
        return self._sealer

    def load(self, connection=None, settings: dict[str, str] | None = None) -> None:
        """Read the keys table and open it with the key file or passphrase (checked against it); ``settings``:
        the settings table, if the caller has just read it."""
        if settings is None:
            settings = read_settings(self.database, connection)
        primary_id = primary_key_id(settings)
        rows = self.database.rows(queries.KEYS, connection)
        self.use(unlock(self.settings, self.store_id, self.key_source, primary_id, rows, self._derived))

    def use(self, sealer: Sealer) -> None:
        """Seal and open with ``sealer`` from now on; it reads the keys again when it meets a newer key."""
        sealer.reload = self._reloaded_keyset
        self._sealer = sealer

    def _reloaded_keyset(self) -> Keyset:
        # A blob sealed with a key this process lacks: another process rotated the key (it re-seals every
        # record, then retires the old key), so the keys are read again, as when the store was opened. A
        # key id that is in no keys table (an altered blob) still finds no key and is refused.
        self.load()
        return self._sealer.keyset

    def new_key(self, taken: dict[int, bytes]) -> tuple[int, bytes, str | None]:
        """A fresh key id and key: random for a key file, derived with a new salt for a passphrase."""
        key_id = new_key_id(taken)
        if self.key_source == "file":
            return key_id, secrets.token_bytes(32), None
        params = new_kdf_params()
        kdf = json.dumps(params, sort_keys=True)
        self._derived[kdf] = derive_key(self.settings.passphrase, params)
        return key_id, self._derived[kdf], kdf

    def install_primary(self, connection, keys: dict[int, bytes], key_id: int, kdf: str | None) -> None:
        """Record ``key_id`` (one of ``keys``) as the store's primary key, inside the caller's transaction."""
        from sqlalchemy import insert, update

        from . import schema

        self.use(Sealer(Keyset(keys, key_id), self.store_id))
        check = self._sealer.seal("key", str(key_id), KEY_CHECK)
        connection.execute(insert(schema.keys).values(key_id=key_id, kdf=kdf, check=check, created_at=_now()))
        table = schema.settings
        moved = connection.execute(update(table).where(table.c.name == "primary_key_id").values(value=str(key_id)))
        if moved.rowcount == 0:
            connection.execute(insert(table).values(name="primary_key_id", value=str(key_id)))

    @contextmanager
    def writing(self) -> Iterator:
        """A write transaction whose sealer uses the store's current primary key.

        Another process may have rotated the key since this store was opened; sealing with a key that
        is about to be retired would make the record unreadable, so the primary is checked under the
        write lock and the keys reloaded when it moved.
        """
        from sqlalchemy import select

        from . import schema

        with self.database.writing() as connection:
            # FOR SHARE (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers already): a rotation
            # installing a new primary waits for this transaction to commit, so no record sealed here
            # with the old primary can commit after the rotation started re-sealing.
            table = schema.settings
            primary = connection.execute(
                select(table.c.value).where(table.c.name == "primary_key_id").with_for_update(read=True)
            ).scalar()
            if primary_key_id({"primary_key_id": primary}) != self._sealer.keyset.primary_id:
                self.load(connection)
            yield connection

    def tidy_key_file(self) -> None:
        """Finish what a killed rotation left in the key file (see :func:`.opening.tidy_key_file`)."""
        tidy_key_file(self.settings.key_file, self.store_id,
                      lambda: {row.key_id for row in self.database.rows(queries.KEYS)})  # fmt: skip
