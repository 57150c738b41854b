"""The encrypted image store: put images in, get the exact bytes back by id.

Every payload (the file's bytes, its name, its metadata) is sealed with AES-256-GCM and bound to its
record (see :mod:`imgvault.store.crypto`). Writes are transactions: a put that fails or is killed
leaves no partial record behind.

:class:`Store` is one object made of parts, each over the store's one :class:`~.database.Database` (its
reads, its writes, its SELECTs in :mod:`.queries`): :class:`~.keyring.Keyring` (keys, the primary key,
write transactions), :class:`~.images.Images` (collections and images, put and put_many),
:class:`~.encoded.EncodedImages` (codec models and encoded images) and :class:`~.rotation.Rotation` (key
rotation, one at a time: :mod:`.locks`); API tokens are :mod:`.tokens`. Its methods hand each call to the
part that does it. What each sealed blob is bound to is in :mod:`.bindings`.

Reading a SQLite store in a plain file needs no SQLAlchemy: :meth:`Store.open` and every read go through
the standard library's sqlite3 (:mod:`.database`), so a command that only lists starts fast.
"""

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from imgvault.basics.errors import ConfigError

from .config import Settings
from .crypto import Sealer
from .database import Database
from .encoded import EncodedImages
from .images import BATCH_BYTES, BATCH_IMAGES, BATCH_SECONDS, DEFAULT_COLLECTION, Images
from .keyring import Keyring, read_settings
from .keys import write_key_file
from .opening import check_revision, store_identity
from .records import CollectionInfo, EncodedInfo, ImageInfo, PutResult, Removal, RotationReport


class Store:
    """An encrypted image store. Make one with :meth:`init` (new) or :meth:`open` (existing).

    Examples
    --------
    >>> store = Store.init("vault")                                  # doctest: +SKIP
    >>> image = store.put("scan.png", collection="scans")            # doctest: +SKIP
    >>> store.get(image.id) == open("scan.png", "rb").read()          # doctest: +SKIP
    True
    """

    def __init__(self, settings: Settings, database: Database, store_id: str, key_source: str):
        # Use Store.open or Store.init; this only assembles the parts.
        self.settings = settings
        self.database = database
        self.store_id = store_id
        self.key_source = key_source
        self.keyring = Keyring(settings, database, store_id, key_source)
        self._images = Images(database, self.keyring)
        self._encoded = EncodedImages(database, self.keyring, self._images)

    @property
    def engine(self):
        """SQLAlchemy's engine of the store's database (made, and SQLAlchemy imported, on first use)."""
        return self.database.engine

    @property
    def sealer(self) -> Sealer:
        """What the store seals and opens with: its keys, the primary first."""
        return self.keyring.sealer

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
        from sqlalchemy import insert

        from . import schema
        from .engine import current_revision, upgrade

        database = Database(settings)
        try:
            if current_revision(database.engine) is not None:
                raise ConfigError(f"a store already exists in {settings.describe_db()}")
            key_source = "passphrase" if settings.passphrase else "file"
            if key_source == "file" and settings.key_file.exists():
                raise ConfigError(f"key file {settings.key_file} already exists; refusing to overwrite a key")
            store = cls(settings, database, secrets.token_hex(16), key_source)
            with database.writing() as connection:
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
                key_id, key, kdf = store.keyring.new_key({})
                store.keyring.install_primary(connection, {key_id: key}, key_id, kdf)
                if key_source == "file":
                    write_key_file(settings.key_file, store.store_id, {key_id: key}, exclusive=True)
            return store
        except BaseException:
            database.close()
            raise

    @staticmethod
    def exists(settings: Settings) -> bool:
        """True if a store (with its schema) exists where ``settings`` point."""
        if settings.sqlite_path is not None and not settings.sqlite_path.exists():
            return False
        database = Database(settings)
        try:
            return database.revision() is not None
        finally:
            database.close()

    @classmethod
    def open(cls, home=None, *, settings: Settings | None = None) -> "Store":
        """Open an existing store, checking that the configured key opens it."""
        settings = settings or Settings.resolve(home)
        where = settings.describe_db()
        if settings.sqlite_path is not None and not settings.sqlite_path.exists():
            raise ConfigError(f'no imgvault store in {settings.home} (run "imgvault init" first)')
        database = Database(settings)
        try:
            check_revision(database.revision(), where)
            stored = read_settings(database)
            store = cls(settings, database, *store_identity(stored))
            store.keyring.load(settings=stored)
            if store.key_source == "file":
                store.keyring.tidy_key_file()
            return store
        except BaseException:
            database.close()
            raise

    @classmethod
    def upgrade_schema(cls, settings: Settings) -> tuple[str, str]:
        """Migrate an existing store's schema to this version; returns the revisions before and after.

        Migrations may re-seal records (0003 does), so the store's key is loaded first.
        """
        if settings.sqlite_path is not None and not settings.sqlite_path.exists():
            raise ConfigError(f'no imgvault store in {settings.home} (run "imgvault init" first)')
        from . import schema
        from .engine import current_revision, upgrade

        database = Database(settings)
        try:
            before = current_revision(database.engine)
            if before is None:
                raise ConfigError(f'no imgvault store in {settings.describe_db()} (run "imgvault init" first)')
            with database.writing() as connection:
                sealer = None
                if before != schema.SCHEMA_REVISION:
                    stored = read_settings(database, connection)
                    store = cls(settings, database, *store_identity(stored))
                    store.keyring.load(connection, stored)
                    sealer = store.sealer
                upgrade(connection, sealer)
            return before, current_revision(database.engine)
        finally:
            database.close()

    # -- collections and images (:class:`~.images.Images`) -------------------------------------------

    def collection(self, name: str) -> CollectionInfo:
        """The collection ``name`` with its image count and size; :class:`CollectionNotFound` if none."""
        return self._images.collection(name)

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its image count and size, by name."""
        return self._images.collections()

    def collection_names(self) -> list[str]:
        """The name of every collection, sorted (cheaper than :meth:`collections`, which counts images)."""
        return self._images.collection_names()

    def put(self, source: str | Path | bytes, *, collection: str = DEFAULT_COLLECTION, name: str | None = None,
            metadata: dict | None = None) -> ImageInfo:  # fmt: skip
        """Validate and store one image from a file path or from bytes (see :meth:`.images.Images.put`)."""
        return self._images.put(source, collection=collection, name=name, metadata=metadata)

    def put_many(self, paths: Iterable[str | Path], *, collection: str = DEFAULT_COLLECTION,
                 metadata: dict | None = None, jobs: int | None = None,
                 label_of: Callable[[Path], str | None] | None = None) -> Iterator[PutResult]:  # fmt: skip
        """Store every image file named in ``paths`` (directories recursively), streaming a result per file;
        ``label_of(path)`` labels each file (see :meth:`.images.Images.put_many`)."""
        return self._images.put_many(paths, collection=collection, metadata=metadata, jobs=jobs, label_of=label_of)

    def put_each(self, paths: Iterable[str | Path], tell: Callable[[PutResult], None], *,
                 collection: str = DEFAULT_COLLECTION, metadata: dict | None = None,
                 jobs: int | None = None, label_of: Callable[[Path], str | None] | None = None,
                 committed: Callable[[list[PutResult]], None] | None = None) -> None:  # fmt: skip
        """:meth:`put_many`, each result given to ``tell`` (the committed ones still told after a Ctrl-C in
        ``tell``), and each committed batch's results given to ``committed`` on the writer thread, where no
        Ctrl-C lands: the exact count (see :meth:`.images.Images.put_each`)."""
        return self._images.put_each(paths, tell, collection=collection, metadata=metadata, jobs=jobs,
                                     label_of=label_of, committed=committed)  # fmt: skip

    def get(self, image_id: str) -> bytes:
        """The original bytes of image ``image_id``, exactly as they were put."""
        return self._images.get(image_id)

    def info(self, image_id: str) -> ImageInfo:
        """What the store knows about image ``image_id`` (name and metadata unsealed), without its bytes."""
        return self._images.info(image_id)

    def images(self, collection: str | None = None, *, page_size: int = 2000, after: str = "") -> Iterator[ImageInfo]:
        """Every image (of one collection, if given) in the order they were put, streamed in pages; with
        ``after`` (an image id), those put after it (see :meth:`.images.Images.images`)."""
        return self._images.images(collection, page_size=page_size, after=after)

    def label_counts(self, collection: str) -> dict[str, int]:
        """How many images of ``collection`` carry each label, by label (see :meth:`.images.Images.label_counts`)."""
        return self._images.label_counts(collection)

    def check_images(self, image_ids: Iterable[str]) -> None:
        """:class:`ImageNotFound` naming every one of ``image_ids`` that the store does not hold."""
        return self._images.check_images(image_ids)

    def remove(self, image_ids: Iterable[str]) -> Removal:
        """Delete the images with their encoded images and the models fitted on them alone: all or nothing."""
        return self._images.remove(image_ids)

    # -- codec models and encoded images (:class:`~.encoded.EncodedImages`) ----------------------------

    def put_encoded_image(self, image_id: str, *, method: str, params: dict, encoded: bytes, metrics: dict,
                     model: bytes | None = None, model_id: str | None = None) -> EncodedInfo:  # fmt: skip
        """Store an encoded image with its model (see :meth:`.encoded.EncodedImages.put_encoded_image`)."""
        return self._encoded.put_encoded_image(image_id, method=method, params=params, encoded=encoded, metrics=metrics,
                                          model=model, model_id=model_id)  # fmt: skip

    def put_encoded_images(self, items: list[dict], *, method: str, params: dict, shared_model: bytes | None = None,
                      collection: str | None = None) -> list[EncodedInfo]:  # fmt: skip
        """Store several encoded images of one method in one transaction (see
        :meth:`.encoded.EncodedImages.put_encoded_images`)."""
        return self._encoded.put_encoded_images(items, method=method, params=params, shared_model=shared_model,
                                           collection=collection)  # fmt: skip

    def encoded_images(self, collection: str | None = None, *, image_id: str | None = None) -> Iterator[EncodedInfo]:
        """Every encoded image (of one collection, or of one image, if given), oldest first."""
        return self._encoded.encoded_images(collection, image_id=image_id)

    def get_encoded_image(self, encoded_id: str) -> tuple[EncodedInfo, bytes]:
        """An encoded image's record and its payload (the method's output)."""
        return self._encoded.get_encoded_image(encoded_id)

    def get_codec_model(self, model_id: str) -> tuple[str, dict, bytes]:
        """A codec model's method, parameters and payload."""
        return self._encoded.get_codec_model(model_id)

    # -- keys (:class:`~.rotation.Rotation`) --------------------------------------------------------------

    def rotate_key(self, *, batch_size: int = 200, before_retire: Callable[[Sealer], int] | None = None,
                   started: Callable[[int], None] = lambda total: None,
                   advance: Callable[[int], None] = lambda count: None) -> RotationReport:  # fmt: skip
        """Make a new primary key, re-seal every record with it, then retire the old keys (see
        :meth:`.rotation.Rotation.rotate_key`)."""
        from .rotation import Rotation

        return Rotation(self, self.database, self.keyring).rotate_key(
            batch_size=batch_size, before_retire=before_retire, started=started, advance=advance
        )

    def close(self) -> None:
        """Release the database connections."""
        self.database.close()

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
