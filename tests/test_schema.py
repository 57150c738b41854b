"""The Alembic migrations and the schema the code uses must describe the same tables."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rawdb import raw_engine
from sqlalchemy import inspect

from imgvault.store import Store, schema
from imgvault.store.engine import current_revision


def test_migrations_create_exactly_the_tables_the_code_declares(store):
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), schema.metadata) == []


def test_the_store_records_its_schema_revision(store):
    assert current_revision(store.engine) == schema.SCHEMA_REVISION


@pytest.mark.sqlite_only
def test_sqlite_is_set_up_for_concurrent_use(store, home):
    with store.engine.connect() as connection:
        pragma = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in
                  ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}  # fmt: skip
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1, "synchronous": 2}


def test_a_store_from_a_newer_schema_is_refused(store, home):
    store.close()
    engine = raw_engine(home)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        assert inspect(connection).has_table("images")
    engine.dispose()
    import pytest

    from imgvault.store import ConfigError

    with pytest.raises(ConfigError, match=f"has schema revision 9999 and this imgvault needs {schema.SCHEMA_REVISION}"):
        Store.open(home)
