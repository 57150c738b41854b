"""The store's database reached behind the store's back: what an attacker with database access can do."""

import sqlalchemy

from imgvault.store import Settings


def raw_engine(home) -> sqlalchemy.Engine:
    """An engine on the store's database itself (SQLite or PostgreSQL, as IMGVAULT_DB_URL says)."""
    return sqlalchemy.create_engine(Settings.resolve(home).db_url, poolclass=sqlalchemy.pool.NullPool)


def tamper(home, table, record_id: str, column: str, change) -> None:
    """Replace a stored blob with ``change(blob)``."""
    engine = raw_engine(home)
    with engine.begin() as connection:
        blob = connection.execute(sqlalchemy.select(table.c[column]).where(table.c.id == record_id)).scalar_one()
        connection.execute(table.update().where(table.c.id == record_id).values({column: change(bytes(blob))}))
    engine.dispose()


def flip_bit(at: int):
    """A change for :func:`tamper`: one bit flipped at byte ``at``."""

    def change(blob: bytes) -> bytes:
        out = bytearray(blob)
        out[at] ^= 1
        return bytes(out)

    return change
