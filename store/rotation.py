"""Key rotation: a new primary key, every record re-sealed with it in batches, the old keys retired.

Rotations run one at a time (see :mod:`.locks`). The key file always holds every key the store may
still need: a new key reaches the file before the store uses it, and an old key leaves the file only
after the store has dropped it. A rotation killed in between leaves the file with a key too many, which
the next command that opens the store removes (:meth:`Keyring.tidy_key_file`).
"""

from collections.abc import Callable

from sqlalchemy import Connection, delete, func, select, update

from . import bindings, schema
from .crypto import Keyset, Sealer
from .database import Database
from .keyring import Keyring
from .keys import read_key_file, write_key_file
from .locks import rotation_lock
from .records import RotationReport


class Rotation:
    """Rotating a store's key. Imported when a rotation runs: it needs SQLAlchemy."""

    def __init__(self, store, database: Database, keyring: Keyring):
        self.store, self.database, self.keyring = store, database, keyring
        self.settings, self.store_id, self.key_source = keyring.settings, keyring.store_id, keyring.key_source

    def rotate_key(
        self,
        *,
        batch_size: int = 200,
        before_retire: Callable[[Sealer], int] | None = None,
        started: Callable[[int], None] = lambda total: None,
        advance: Callable[[int], None] = lambda count: None,
    ) -> RotationReport:
        """Make a new primary key, re-seal every record with it in batches, then retire the old keys.

        Each batch is its own transaction, so memory stays bounded, other processes keep reading and
        writing, and every record stays readable throughout. Interrupted, it can simply be run again.
        Only one rotation runs on a store at a time: another one raises :class:`RotationInProgress`.

        Every record is re-sealed, and read back, before any key is retired; a record that does not open
        with the store's keys stops the rotation with :class:`IntegrityError` naming it, before any key
        is retired.

        Parameters
        ----------
        batch_size : int
            Records re-sealed per transaction.
        before_retire : callable, optional
            Called with the store's :class:`Sealer` once every record is re-sealed and before the old
            keys are removed (its keyset still holds the old keys and the new primary), to re-seal
            blobs kept outside the store; the count it returns is reported as ``resealed_artifacts``. If it
            raises, nothing is retired: every record stays readable under the old keys or the new one.
        started, advance : callable, optional
            For a progress bar: ``started(total)`` once the records to re-seal are counted, ``advance(n)``
            after each batch of ``n``.
        """
        with rotation_lock(self.store):
            if self.key_source == "file":
                self.keyring.tidy_key_file()
            new_primary = self._make_primary()
            started(self._count_to_reseal(new_primary))
            resealed = {kind: self._reseal_kind(kind, new_primary, batch_size, advance) for kind in schema.SEALED}
            artifacts = before_retire(self.keyring.sealer) if before_retire is not None else 0
            retired = self._retire_all_but(new_primary)
        return RotationReport(new_key_id=new_primary, retired_key_ids=sorted(retired), resealed=resealed,
                              resealed_artifacts=artifacts)  # fmt: skip

    def _make_primary(self) -> int:
        file_keys = {}
        if self.key_source == "file":
            file_keys = read_key_file(self.settings.key_file, self.store_id)
        keys = {**self.keyring.sealer.keyset.keys, **file_keys}
        key_id, key, kdf = self.keyring.new_key(keys)
        keys[key_id] = key
        if self.key_source == "file":
            # The new key reaches the key file before the store uses it, so no record is ever sealed
            # with a key that exists nowhere else.
            write_key_file(self.settings.key_file, self.store_id, {**file_keys, key_id: key})
        with self.keyring.writing() as connection:
            self.keyring.install_primary(connection, keys, key_id, kdf)
        return key_id

    def _count_to_reseal(self, new_primary: int) -> int:
        with self.database.engine.connect() as connection:
            return sum(connection.execute(select(func.count()).select_from(table).where(table.c.key_id != new_primary))
                       .scalar() for table, _columns in schema.SEALED.values())  # fmt: skip

    def _reseal_kind(self, kind: str, new_primary: int, batch_size: int,
                     advance: Callable[[int], None] = lambda count: None) -> int:  # fmt: skip
        """Re-seal every record of ``kind`` not sealed with ``new_primary``, in batches; return the count.

        The batches walk the table in id order, so the loop ends however the table changes meanwhile:
        records that writers add during the rotation are sealed with the new primary already.
        """
        count, after = 0, ""
        while True:
            with self.keyring.writing() as connection:
                rows = self._reseal_rows(connection, kind, new_primary, after, batch_size)
            if not rows:
                return count
            count += len(rows)
            advance(len(rows))
            after = rows[-1].id

    def _reseal_rows(self, connection: Connection, kind: str, new_primary: int, after: str | None,
                     limit: int | None) -> list:  # fmt: skip
        if self.keyring.sealer.keyset.primary_id != new_primary:
            raise RuntimeError("the primary key changed during a key rotation")  # the rotation lock prevents it
        table, columns = schema.SEALED[kind]
        key = schema.record_id(table)
        # A row without a key id (an API token row that was never sealed: forged) is not re-sealed into validity.
        # Locked (PostgreSQL; SQLite serialises writers): a token revoked meanwhile is not re-sealed from its
        # values before the revocation.
        query = schema.sealed_rows(kind).where(table.c.key_id != new_primary).with_for_update()
        if after is not None:
            query = query.where(key > after).order_by(key).limit(limit)
        rows = connection.execute(query).all()
        for row in rows:
            connection.execute(update(table).where(key == row.id).values(self._reseal(kind, columns, row)))
        return rows

    def _retire_all_but(self, new_primary: int) -> set[int]:
        with self.keyring.writing() as connection:
            # Normally nothing is left; whatever is (a writer's batch that began before the new primary
            # was installed, on a database that does not serialise writers) is re-sealed here, under the
            # same lock as the retirement, so that no record outlives its key.
            for kind in schema.SEALED:
                self._reseal_rows(connection, kind, new_primary, None, None)
            keys = schema.keys
            retired = set(connection.execute(select(keys.c.key_id).where(keys.c.key_id != new_primary)).scalars())
            connection.execute(delete(keys).where(keys.c.key_id != new_primary))
        key = self.keyring.sealer.keyset.keys[new_primary]
        if self.key_source == "file":
            # Only after the store dropped the old keys: killed before this, the key file has a key too
            # many, never one too few.
            retired |= set(read_key_file(self.settings.key_file, self.store_id)) - {new_primary}
            write_key_file(self.settings.key_file, self.store_id, {new_primary: key})
        self.keyring.use(Sealer(Keyset({new_primary: key}, new_primary), self.store_id))
        return retired

    def _reseal(self, kind: str, columns: tuple[str, ...], row) -> dict:
        sealer, bound = self.keyring.sealer, bindings.CONTEXT[kind](row._mapping)
        values = {"key_id": sealer.keyset.primary_id}
        for column in columns:
            blob = getattr(row, column)
            if blob is not None:
                place = f"{kind}.{column}"
                plain = sealer.open(place, row.id, blob, context=bound)
                values[column] = sealer.seal(place, row.id, plain, context=bound)
                # Read back before it replaces the only copy: the old key is retired on the strength of it.
                if sealer.open(place, row.id, values[column], context=bound) != plain:
                    raise RuntimeError(f"{place} of {row.id} did not read back after re-sealing")
        return values
