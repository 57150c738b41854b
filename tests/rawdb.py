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


def stored_bytes(home) -> bytes:
    """Everything the database holds, as an attacker with a copy of it sees it.

    SQLite: the bytes of the database file and its WAL. PostgreSQL: every value of every row of the
    store's tables.
    """
    from imgvault.store import schema

    settings = Settings.resolve(home)
    if settings.sqlite_path is not None:
        folder, name = settings.sqlite_path.parent, settings.sqlite_path.name
        return b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.name.startswith(name))
    engine = raw_engine(home)
    values = []
    with engine.connect() as connection:
        for table in schema.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                values += [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row]
    engine.dispose()
    return b"\n".join(values)
