"""The encrypted image store: put images in, get the exact bytes back by id.

Every payload (the file's bytes, its name, its metadata) is sealed with AES-256-GCM and bound to its
record (see :mod:`imgvault.store.crypto`). Writes are transactions: a put that fails or is killed
leaves no partial record behind.

:class:`Store` is the facade; each concern lives in a module of its own, as a part the facade is made of:
:mod:`.keyring` (keys, the primary key, write transactions), :mod:`.rotation` (key rotation, one at a
time: :mod:`.locks`), :mod:`.images` (collections and images, put and put_many) and :mod:`.encodings`
(codec models and encoded images). What each sealed blob is bound to is in :mod:`.bindings`.
"""

import contextlib
import os
import secrets
from pathlib import Path

from sqlalchemy import insert

from . import schema
from .config import Settings
from .crypto import Sealer
from .encodings import Encodings
from .engine import check_revision, create_store_engine, current_revision, upgrade, write_transaction
from .errors import ConfigError
from .images import BATCH_BYTES, BATCH_IMAGES, BATCH_SECONDS, DEFAULT_COLLECTION, image_by_id
from .keyring import read_store_settings
from .keys import write_key_file
from .reads import SqliteReads
from .rotation import Rotation
from .tokens import TokenCache


class Store(Encodings, Rotation):
    """An encrypted image store. Make one with :meth:`init` (new) or :meth:`open` (existing).

    Examples
    --------
    >>> store = Store.init("vault")                                  # doctest: +SKIP
    >>> image = store.put("scan.png", collection="scans")            # doctest: +SKIP
    >>> store.get(image.id) == open("scan.png", "rb").read()          # doctest: +SKIP
    True
    """

    def __init__(self, settings: Settings, engine, store_id: str, key_source: str):
        # Use Store.open or Store.init; this only assembles the parts.
        self.settings = settings
        self.engine = engine
        self.store_id = store_id
        self.key_source = key_source
        self._sealer: Sealer | None = None
        self._derived: dict[str, bytes] = {}
        # On a SQLite file: the image and token reads that every web request makes, without SQLAlchemy.
        self._reads = SqliteReads.for_engine(engine, image_by_id())
        self.token_cache = TokenCache(self._reads) if self._reads is not None else None

    # -- opening and closing -----------------------------------------------------------------------

    @classmethod
    def init(cls, home=None, *, settings: Settings | None = None) -> "Store":
        """Create a new store (schema, store id, first key) and return it open.

        The key goes to the key file, which must not exist yet, unless a passphrase is configured.
        """
        settings = settings or Settings.resolve(home)
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and os.stat(settings.home).st_mode & 0o077:
            os.chmod(settings.home, 0o700)  # a folder that existed, open to others: the store's is for its user
        _create_private_file(settings.sqlite_path)
        engine = create_store_engine(settings.db_url)
        try:
            if current_revision(engine) is not None:
                raise ConfigError(f"a store already exists in {settings.describe_db()}")
            key_source = "passphrase" if settings.passphrase else "file"
            if key_source == "file" and settings.key_file.exists():
                raise ConfigError(f"key file {settings.key_file} already exists; refusing to overwrite a key")
            store = cls(settings, engine, secrets.token_hex(16), key_source)
            with write_transaction(engine) as connection:
                upgrade(connection)
                connection.execute(
                    insert(schema.settings),
                    [
                        {"name": "store_id", "value": store.store_id},
                        {"name": "key_source", "value": key_source},
                    ],
                )
                # The key file is written last, inside the transaction: if it cannot be written the
                # store is not created, and if the commit fails the key file is removed again.
                key_id, key, kdf = store._new_key({})
                store._install_primary(connection, {key_id: key}, key_id, kdf)
                if key_source == "file":
                    write_key_file(settings.key_file, store.store_id, {key_id: key}, exclusive=True)
            return store
        except BaseException:
            engine.dispose()
            raise

    @staticmethod
    def exists(settings: Settings) -> bool:
        """True if a store (with its schema) exists where ``settings`` point."""
        if settings.sqlite_path is not None and not settings.sqlite_path.exists():
            return False
        engine = create_store_engine(settings.db_url)
        try:
            return current_revision(engine) is not None
        finally:
            engine.dispose()

    @classmethod
    def open(cls, home=None, *, settings: Settings | None = None) -> "Store":
        """Open an existing store, checking that the configured key opens it."""
        settings = settings or Settings.resolve(home)
        where = settings.describe_db()
        if settings.sqlite_path is not None and not settings.sqlite_path.exists():
            raise ConfigError(f'no imgvault store in {settings.home} (run "imgvault init" first)')
        engine = create_store_engine(settings.db_url)
        try:
            check_revision(engine, where)
            with engine.connect() as connection:
                store = cls(settings, engine, *read_store_settings(connection))
                store._load_keys(connection)
                if store.key_source == "file":
                    store._tidy_key_file(connection)
            return store
        except BaseException:
            engine.dispose()
            raise

    @classmethod
    def upgrade_schema(cls, settings: Settings) -> tuple[str, str]:
        """Migrate an existing store's schema to this version; returns the revisions before and after.

        Migrations may re-seal records (0003 does), so the store's key is loaded first.
        """
        if settings.sqlite_path is not None and not settings.sqlite_path.exists():
            raise ConfigError(f'no imgvault store in {settings.home} (run "imgvault init" first)')
        engine = create_store_engine(settings.db_url)
        try:
            before = current_revision(engine)
            if before is None:
                raise ConfigError(f'no imgvault store in {settings.describe_db()} (run "imgvault init" first)')
            with write_transaction(engine) as connection:
                sealer = None
                if before != schema.SCHEMA_REVISION:
                    store = cls(settings, engine, *read_store_settings(connection))
                    store._load_keys(connection)
                    sealer = store.sealer
                upgrade(connection, sealer)
            return before, current_revision(engine)
        finally:
            engine.dispose()

    def close(self) -> None:
        """Release the database connections."""
        if self._reads is not None:
            self._reads.close()
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _create_private_file(path: Path | None) -> None:
    """Create the SQLite database file empty with mode 0600 before SQLite does (with 0644 less the umask).

    SQLite creates the -wal and -shm files with the mode of the database file, so they are private too.
    """
    if path is None or not path.parent.is_dir():
        return
    # An existing file (a store, refused below, or an empty file someone made) keeps its mode.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


__all__ = ["BATCH_BYTES", "BATCH_IMAGES", "BATCH_SECONDS", "DEFAULT_COLLECTION", "Store"]
