"""Database engines set up for real use, and the schema's Alembic migrations.

SQLite gets WAL (readers never wait for the writer), a 30-second busy timeout, foreign keys, and
``BEGIN IMMEDIATE`` for write transactions: a writer takes the lock when it starts rather than when it
first writes, so two writers never deadlock upgrading read locks and none fails with "database is locked".
A single read (:func:`one_read`) runs without BEGIN: a lone SELECT is already its own transaction.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from imgvault.basics.errors import ConfigError

from . import opening
from .opening import BUSY_TIMEOUT_S
from .schema import settings

_WRITE = "imgvault_write"
_ONE_READ = "imgvault_one_read"


def create_store_engine(url: str) -> Engine:
    """An engine for the store at ``url``; SQLite files are configured as described above."""
    scheme = url.split(":", 1)[0]
    try:
        if not url.startswith("sqlite"):
            return create_engine(url, pool_pre_ping=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
    except NoSuchModuleError:
        raise ConfigError(f"IMGVAULT_DB_URL names an unknown kind of database: {scheme}") from None
    except ArgumentError as exc:
        raise ConfigError(f"IMGVAULT_DB_URL is not a database URL ({exc})") from None
    except ImportError as exc:
        hint = " (install it with: pip install 'imgvault[postgres]')" if scheme.startswith("postgres") else ""
        raise ConfigError(f"the database driver for {scheme} is not installed: {exc}{hint}") from None

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # Let us issue BEGIN ourselves (pysqlite's own BEGIN is always DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        options = connection.get_execution_options()
        if options.get(_ONE_READ):
            return  # one SELECT is a transaction of its own in SQLite: BEGIN and ROLLBACK would double its cost
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE) else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
    with engine.connect() as connection:
        connection.execution_options(**{_WRITE: True})
        with connection.begin():
            yield connection


@contextmanager
def one_read(engine: Engine) -> Iterator[Connection]:
    """A connection for a single SELECT (on SQLite run without BEGIN: one statement reads one snapshot).

    Only for one statement: several statements on it would each see the database as it is then.
    """
    with engine.connect() as connection:
        connection.execution_options(**{_ONE_READ: True})
        yield connection


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for a database without our schema.

    As the first contact with the database, it turns a failure to reach it into a :class:`ConfigError`.
    """
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise ConfigError(f"cannot open the store database {where}: {first_line(exc.orig)}") from None


def first_line(error: BaseException) -> str:
    """The first line of an error's message (database drivers add hints on further lines)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def check_revision(engine: Engine, where: str) -> None:
    """Raise :class:`ConfigError` unless the database holds this version's schema."""
    opening.check_revision(current_revision(engine), where)


def upgrade(connection: Connection, sealer=None, revision: str = "head") -> None:
    """Bring the schema to this version's revision with Alembic, in the caller's transaction.

    Creates the schema in an empty database. Migrations that re-seal records use ``sealer`` (the
    store's :class:`~imgvault.store.crypto.Sealer`). Alembic is imported only here: it is slow to
    import and no other command needs it.
    """
    from alembic import command

    command.upgrade(migration_config(connection, sealer), revision)


def migration_config(connection: Connection, sealer=None):
    """Alembic's configuration for our migrations, running on ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    config.attributes["sealer"] = sealer
    return config


def read_settings(connection: Connection) -> dict[str, str]:
    """The store-wide settings (store id, key source, primary key id)."""
    return dict(connection.execute(select(settings.c.name, settings.c.value)).all())
