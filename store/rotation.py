"""Key rotation: a new primary key, every record re-sealed with it in batches, the old keys retired."""

from sqlalchemy import delete, select, update

from . import schema
from .crypto import Keyset, Sealer
from .keyring import Keyring
from .keys import read_key_file, write_key_file
from .records import RotationReport


class Rotation(Keyring):
    """The key rotation part of :class:`~imgvault.store.Store`."""

    def rotate_key(self, *, batch_size: int = 200) -> RotationReport:
        """Make a new primary key, re-seal every record with it in batches, then retire the old keys.

        Each batch is its own transaction, so memory stays bounded, other processes keep reading and
        writing, and every record stays readable throughout. Interrupted, it can simply be run again.
        """
        file_keys = {}
        if self.key_source == "file":
            file_keys = read_key_file(self.settings.key_file, self.store_id)
        keys = {**self._sealer.keyset.keys, **file_keys}
        key_id, key, kdf = self._new_key(keys)
        keys[key_id] = key
        if self.key_source == "file":
            # The new key reaches the key file before the store uses it, so no record is ever sealed
            # with a key that exists nowhere else.
            write_key_file(self.settings.key_file, self.store_id, {**file_keys, key_id: key})
        with self._writing() as connection:
            self._install_primary(connection, keys, key_id, kdf)
        new_primary = self._sealer.keyset.primary_id
        resealed = {}
        for kind, (table, columns) in schema.SEALED.items():
            resealed[kind] = 0
            while True:
                with self._writing() as connection:
                    rows = connection.execute(
                        select(table.c.id, *(table.c[c] for c in columns))
                        .where(table.c.key_id != new_primary)
                        .limit(batch_size)
                    ).all()
                    for row in rows:
                        values = self._reseal(kind, columns, row)
                        connection.execute(update(table).where(table.c.id == row.id).values(values))
                resealed[kind] += len(rows)
                if not rows:
                    break
        with self._writing() as connection:
            retired = list(
                connection.execute(select(schema.keys.c.key_id).where(schema.keys.c.key_id != new_primary)).scalars()
            )
            connection.execute(delete(schema.keys).where(schema.keys.c.key_id != new_primary))
        key = self._sealer.keyset.keys[new_primary]
        if self.key_source == "file":
            write_key_file(self.settings.key_file, self.store_id, {new_primary: key})
            retired = set(retired) | (set(file_keys) - {new_primary})
        self._sealer = Sealer(Keyset({new_primary: key}, new_primary), self.store_id)
        return RotationReport(new_key_id=new_primary, retired_key_ids=sorted(retired), resealed=resealed)

    def _reseal(self, kind: str, columns: tuple[str, ...], row) -> dict:
        sealer = self._sealer
        values = {"key_id": sealer.keyset.primary_id}
        for column in columns:
            blob = getattr(row, column)
            if blob is not None:
                place = f"{kind}.{column}"
                values[column] = sealer.seal(place, row.id, sealer.open(place, row.id, blob))
        return values
