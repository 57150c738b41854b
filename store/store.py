"""The encrypted image store: put images in, get the exact bytes back by id.

Every payload (the file's bytes, its name, its metadata) is sealed with AES-256-GCM and bound to its
record (see :mod:`imgvault.store.crypto`). Writes are transactions: a put that fails or is killed
leaves no partial record behind.
"""

import json
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, delete, func, insert, select, update

from . import schema
from .config import Settings
from .crypto import Keyset, Sealer, new_key_id
from .engine import check_revision, create_store_engine, current_revision, read_settings, upgrade, write_transaction
from .errors import CollectionNotFound, ConfigError, EncodedNotFound, ImageNotFound, IntegrityError, NotFound
from .ids import new_id
from .ingest import check_files, iter_files, stored_name
from .keys import derive_key, new_kdf_params, read_key_file, write_key_file
from .names import check_collection_name
from .records import CollectionInfo, EncodedInfo, ImageInfo, PutResult, RotationReport
from .validate import ImageFacts, check_metadata, inspect_image, read_image_file

DEFAULT_COLLECTION = "default"
# A batch of puts is committed when it holds this many images, this many bytes, or is this old.
BATCH_IMAGES = 500
BATCH_BYTES = 64 * 1024 * 1024
BATCH_SECONDS = 1.0
_KEY_CHECK = b"imgvault key check"


def _insert_ignoring_conflicts(connection: Connection, table, values: dict, unique: str):
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        return insert(table).values(values)
    return dialect_insert(table).values(values).on_conflict_do_nothing(index_elements=[unique])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Store:
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

    # -- opening and closing -----------------------------------------------------------------------

    @classmethod
    def init(cls, home=None, *, settings: Settings | None = None) -> "Store":
        """Create a new store (schema, store id, first key) and return it open.

        The key goes to the key file, which must not exist yet, unless a passphrase is configured.
        """
        settings = settings or Settings.resolve(home)
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
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
                values = read_settings(connection)
                store = cls(settings, engine, values["store_id"], values["key_source"])
                store._load_keys(connection)
            return store
        except BaseException:
            engine.dispose()
            raise

    @staticmethod
    def upgrade_schema(settings: Settings) -> tuple[str, str]:
        """Migrate an existing store's schema to this version; returns the revisions before and after."""
        if settings.sqlite_path is not None and not settings.sqlite_path.exists():
            raise ConfigError(f'no imgvault store in {settings.home} (run "imgvault init" first)')
        engine = create_store_engine(settings.db_url)
        try:
            before = current_revision(engine)
            if before is None:
                raise ConfigError(f'no imgvault store in {settings.describe_db()} (run "imgvault init" first)')
            with write_transaction(engine) as connection:
                upgrade(connection)
            return before, current_revision(engine)
        finally:
            engine.dispose()

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- keys ----------------------------------------------------------------------------------------

    @property
    def sealer(self) -> Sealer:
        return self._sealer

    def _load_keys(self, connection: Connection) -> None:
        primary_id = int(read_settings(connection)["primary_key_id"])
        rows = connection.execute(select(schema.keys)).all()
        if self.key_source == "passphrase":
            if not self.settings.passphrase:
                raise ConfigError("this store's key is derived from a passphrase: set IMGVAULT_PASSPHRASE")
            keys = {}
            for row in rows:
                if row.kdf not in self._derived:
                    self._derived[row.kdf] = derive_key(self.settings.passphrase, json.loads(row.kdf))
                keys[row.key_id] = self._derived[row.kdf]
            wrong_key = "IMGVAULT_PASSPHRASE is not this store's passphrase (the key it gives does not open it)"
        else:
            if self.settings.passphrase:
                raise ConfigError(
                    f"this store's key is in a key file ({self.settings.key_file}), not derived from a"
                    " passphrase: unset IMGVAULT_PASSPHRASE"
                )
            keys = read_key_file(self.settings.key_file, self.store_id)
            wrong_key = f"key file {self.settings.key_file} does not open this store (wrong key)"
        if primary_id not in keys:
            raise IntegrityError(f"{wrong_key}: it lacks the store's current key {primary_id}")
        sealer = Sealer(Keyset(keys, primary_id), self.store_id)
        checks = {row.key_id: row.check for row in rows}
        try:
            sealer.open("key", str(primary_id), checks.get(primary_id))
        except IntegrityError:
            raise IntegrityError(wrong_key) from None
        self._sealer = sealer

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
        self._sealer = Sealer(Keyset(keys, key_id), self.store_id)
        check = self._sealer.seal("key", str(key_id), _KEY_CHECK)
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
            primary = connection.execute(
                select(schema.settings.c.value).where(schema.settings.c.name == "primary_key_id")
            ).scalar_one()
            if int(primary) != self._sealer.keyset.primary_id:
                self._load_keys(connection)
            yield connection

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

    # -- collections ---------------------------------------------------------------------------------

    def _collection_id(self, connection: Connection, name: str, *, create: bool) -> str:
        table = schema.collections
        query = select(table.c.id).where(table.c.name == name)
        found = connection.execute(query).scalar()
        if found is None and create:
            # ON CONFLICT: two writers creating the same collection at once (PostgreSQL does not
            # serialise them as SQLite's BEGIN IMMEDIATE does) must both end up using one row.
            values = {"id": new_id(), "name": name, "created_at": _now()}
            connection.execute(_insert_ignoring_conflicts(connection, table, values, "name"))
            found = connection.execute(query).scalar()
        if found is None:
            raise CollectionNotFound(f'collection "{name}" not found')
        return found

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its image count and size, by name."""
        c, i = schema.collections, schema.images
        query = (
            select(c.c.name, c.c.created_at, func.count(i.c.id), func.coalesce(func.sum(i.c.bytes), 0))
            .select_from(c.outerjoin(i, i.c.collection_id == c.c.id))
            .group_by(c.c.id, c.c.name, c.c.created_at)
            .order_by(c.c.name)
        )
        with self.engine.connect() as connection:
            return [
                CollectionInfo(name=name, images=count, bytes=int(size), created=created)
                for name, created, count, size in connection.execute(query)
            ]

    # -- images --------------------------------------------------------------------------------------

    def put(
        self,
        source: str | Path | bytes,
        *,
        collection: str = DEFAULT_COLLECTION,
        name: str | None = None,
        metadata: dict | None = None,
    ) -> ImageInfo:
        """Validate and store one image from a file path or from bytes; return what was stored.

        Raises :class:`InvalidImage` (naming the file) when it is not an image the store accepts.
        """
        check_collection_name(collection)
        check_metadata(metadata)
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            name = name or "image"
            facts = inspect_image(data, name)
        else:
            path = Path(source)
            data, facts = read_image_file(path)
            name = name or stored_name(path)
        with self._writing() as connection:
            collection_id = self._collection_id(connection, collection, create=True)
            [image] = self._insert(connection, collection, collection_id, [(name, facts, data, metadata)])
        return image

    def put_many(
        self,
        paths: Iterable[str | Path],
        *,
        collection: str = DEFAULT_COLLECTION,
        metadata: dict | None = None,
        jobs: int | None = None,
    ) -> Iterator[PutResult]:
        """Store every image file named in ``paths`` (directories recursively), streaming.

        Files are validated in ``jobs`` worker processes and written in batches; a result is yielded
        for each file once its image is committed, or once it was refused. Bad files never stop the
        good ones. Memory does not grow with the number of files.
        """
        check_collection_name(collection)
        check_metadata(metadata)
        pending: list[tuple[Path, ImageFacts, bytes]] = []
        pending_bytes = 0
        started = 0.0
        for checked in check_files(iter_files(paths), jobs):
            data, error = checked.bytes_to_store()
            if error:
                yield PutResult(checked.path, error=error)
                continue
            if not pending:
                started = time.monotonic()
            pending.append((checked.path, checked.facts, data))
            pending_bytes += len(data)
            if (
                len(pending) >= BATCH_IMAGES
                or pending_bytes >= BATCH_BYTES
                or time.monotonic() - started > BATCH_SECONDS
            ):
                yield from self._commit_batch(collection, pending, metadata)
                pending, pending_bytes = [], 0
        if pending:
            yield from self._commit_batch(collection, pending, metadata)

    def _commit_batch(self, collection: str, batch: list, metadata: dict | None) -> list[PutResult]:
        with self._writing() as connection:
            collection_id = self._collection_id(connection, collection, create=True)
            images = self._insert(
                connection,
                collection,
                collection_id,
                [(stored_name(path), facts, data, metadata) for path, facts, data in batch],
            )
        return [PutResult(path, image=image) for (path, _, _), image in zip(batch, images, strict=True)]

    def _insert(self, connection: Connection, collection: str, collection_id: str, items: list) -> list[ImageInfo]:
        seal = self._sealer.seal
        key_id = self._sealer.keyset.primary_id
        rows, images = [], []
        for name, facts, data, metadata in items:
            image_id, created = new_id(), _now()
            rows.append(
                {
                    "id": image_id,
                    "collection_id": collection_id,
                    "key_id": key_id,
                    "format": facts.format,
                    "width": facts.width,
                    "height": facts.height,
                    "mode": facts.mode,
                    "bytes": facts.bytes,
                    "created_at": created,
                    "name": seal("image.name", image_id, name.encode()),
                    "metadata": seal("image.metadata", image_id, json.dumps(metadata).encode()) if metadata else None,
                    "data": seal("image.data", image_id, data),
                }
            )
            images.append(
                ImageInfo(
                    id=image_id,
                    name=name,
                    collection=collection,
                    format=facts.format,
                    width=facts.width,
                    height=facts.height,
                    mode=facts.mode,
                    bytes=facts.bytes,
                    created=created,
                    metadata=dict(metadata or {}),
                )
            )
        connection.execute(insert(schema.images), rows)
        return images

    def get(self, image_id: str) -> bytes:
        """The original bytes of image ``image_id``, exactly as they were put."""
        with self.engine.connect() as connection:
            blob = connection.execute(select(schema.images.c.data).where(schema.images.c.id == image_id)).scalar()
        if blob is None:
            raise ImageNotFound(f"image {image_id} not found")
        return self._sealer.open("image.data", image_id, blob)

    def _info_query(self):
        i, c = schema.images, schema.collections
        return select(
            i.c.id, c.c.name.label("collection"), i.c.format, i.c.width, i.c.height, i.c.mode, i.c.bytes,
            i.c.created_at, i.c.name, i.c.metadata,
        ).join(c, c.c.id == i.c.collection_id)  # fmt: skip

    def _info(self, row) -> ImageInfo:
        open_ = self._sealer.open
        metadata = json.loads(open_("image.metadata", row.id, row.metadata)) if row.metadata is not None else {}
        return ImageInfo(
            id=row.id,
            name=open_("image.name", row.id, row.name).decode(),
            collection=row.collection,
            format=row.format,
            width=row.width,
            height=row.height,
            mode=row.mode,
            bytes=row.bytes,
            created=row.created_at,
            metadata=metadata,
        )

    def info(self, image_id: str) -> ImageInfo:
        """What the store knows about image ``image_id`` (name and metadata unsealed), without its bytes."""
        with self.engine.connect() as connection:
            row = connection.execute(self._info_query().where(schema.images.c.id == image_id)).first()
        if row is None:
            raise ImageNotFound(f"image {image_id} not found")
        return self._info(row)

    def images(self, collection: str | None = None, *, page_size: int = 500) -> Iterator[ImageInfo]:
        """Every image (of one collection, if given) in the order they were put, streamed in pages."""
        query = self._info_query().order_by(schema.images.c.id).limit(page_size)
        if collection is not None:
            with self.engine.connect() as connection:
                collection_id = self._collection_id(connection, collection, create=False)
            query = query.where(schema.images.c.collection_id == collection_id)
        after = ""
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(query.where(schema.images.c.id > after)).all()
            for row in rows:
                yield self._info(row)
            if len(rows) < page_size:
                return
            after = rows[-1].id

    def remove(self, image_ids: Iterable[str]) -> int:
        """Delete the images ``image_ids``: all of them, or none if any is missing. Returns the count."""
        wanted = list(dict.fromkeys(image_ids))
        with self._writing() as connection:
            found = set(connection.execute(select(schema.images.c.id).where(schema.images.c.id.in_(wanted))).scalars())
            missing = [image_id for image_id in wanted if image_id not in found]
            if missing:
                raise ImageNotFound(
                    f"image {missing[0]} not found" if len(missing) == 1 else f"images not found: {', '.join(missing)}"
                )
            # An image takes its encoded images and the models fitted on it alone along; models fitted
            # on a whole collection stay for the collection's other images.
            encoded, models = schema.encoded_images, schema.codec_models
            connection.execute(delete(encoded).where(encoded.c.image_id.in_(wanted)))
            connection.execute(delete(models).where(models.c.image_id.in_(wanted)))
            connection.execute(delete(schema.images).where(schema.images.c.id.in_(wanted)))
        return len(wanted)

    # -- codec models and encoded images -------------------------------------------------------------

    def _insert_model(self, connection, collection_id, image_id, method, params, data) -> str:
        model_id = new_id()
        connection.execute(
            insert(schema.codec_models).values(
                id=model_id,
                collection_id=collection_id,
                image_id=image_id,
                method=method,
                params=json.dumps(params, sort_keys=True),
                key_id=self._sealer.keyset.primary_id,
                bytes=len(data),
                created_at=_now(),
                data=self._sealer.seal("model.data", model_id, data),
            )
        )
        return model_id

    def put_encoding(self, image_id: str, *, method: str, params: dict, encoded: bytes, metrics: dict,
                     model: bytes | None = None, model_id: str | None = None) -> EncodedInfo:  # fmt: skip
        """Store an encoded image with its model, in one transaction; return what was stored.

        Give ``model`` (the payload of a model fitted on this image alone, stored with it) or
        ``model_id`` (a model already stored, fitted on the image's collection).
        """
        item = {"image_id": image_id, "encoded": encoded, "metrics": metrics, "model": model, "model_id": model_id}
        [info] = self.put_encodings([item], method=method, params=params)
        return info

    def put_encodings(self, items: list[dict], *, method: str, params: dict, shared_model: bytes | None = None,
                      collection: str | None = None) -> list[EncodedInfo]:  # fmt: skip
        """Store several encodings of one method and parameters in one transaction (all or none).

        Each item is a dict with ``image_id``, ``encoded``, ``metrics`` and either ``model`` (bytes of a
        model fitted on that image alone) or ``model_id`` (a stored model). With ``shared_model`` (a model
        fitted on the whole ``collection``), it is stored in the same transaction and serves the items
        that name no model of their own.
        """
        for item in items:
            if shared_model is None and (item.get("model") is None) == (item.get("model_id") is None):
                raise TypeError("give exactly one of model and model_id for every item")
        results = []
        with self._writing() as connection:
            if shared_model is not None:
                collection_id = self._collection_id(connection, collection, create=False)
                shared_id = self._insert_model(connection, collection_id, None, method, params, shared_model)
                items = [item if item.get("model") or item.get("model_id") else {**item, "model_id": shared_id}
                         for item in items]  # fmt: skip
            images = schema.images
            wanted = list({item["image_id"] for item in items})
            found = {
                row.id: row
                for row in connection.execute(
                    select(images.c.id, images.c.collection_id, schema.collections.c.name)
                    .join(schema.collections, schema.collections.c.id == images.c.collection_id)
                    .where(images.c.id.in_(wanted))
                )
            }
            shared = {item["model_id"] for item in items if item.get("model_id")} - {None}
            known = set(
                connection.execute(
                    select(schema.codec_models.c.id).where(schema.codec_models.c.id.in_(shared))
                ).scalars()
            )
            encoded_rows = []
            for item in items:
                row = found.get(item["image_id"])
                if row is None:
                    raise ImageNotFound(f"image {item['image_id']} not found")
                model_id = item.get("model_id")
                if model_id is None:
                    model_id = self._insert_model(connection, row.collection_id, row.id, method, params, item["model"])
                elif model_id not in known:
                    raise NotFound(f"codec model {model_id} not found")
                encoded_id, created = new_id(), _now()
                encoded_rows.append(
                    {
                        "id": encoded_id,
                        "image_id": row.id,
                        "model_id": model_id,
                        "method": method,
                        "params": json.dumps(params, sort_keys=True),
                        "metrics": json.dumps(item["metrics"], sort_keys=True),
                        "key_id": self._sealer.keyset.primary_id,
                        "bytes": len(item["encoded"]),
                        "created_at": created,
                        "data": self._sealer.seal("encoded.data", encoded_id, item["encoded"]),
                    }
                )
                results.append(
                    EncodedInfo(
                        id=encoded_id, image_id=row.id, model_id=model_id, collection=row.name, method=method,
                        params=params, metrics=item["metrics"], bytes=len(item["encoded"]), created=created,
                    )
                )  # fmt: skip
            if encoded_rows:
                connection.execute(insert(schema.encoded_images), encoded_rows)
        return results

    def _encoded_query(self):
        e, i, c = schema.encoded_images, schema.images, schema.collections
        return (
            select(e.c.id, e.c.image_id, e.c.model_id, c.c.name.label("collection"), e.c.method, e.c.params,
                   e.c.metrics, e.c.bytes, e.c.created_at)
            .join(i, i.c.id == e.c.image_id)
            .join(c, c.c.id == i.c.collection_id)
        )  # fmt: skip

    @staticmethod
    def _encoded_info(row) -> EncodedInfo:
        return EncodedInfo(
            id=row.id, image_id=row.image_id, model_id=row.model_id, collection=row.collection, method=row.method,
            params=json.loads(row.params), metrics=json.loads(row.metrics), bytes=row.bytes, created=row.created_at,
        )  # fmt: skip

    def encoded_images(self, collection: str | None = None) -> Iterator[EncodedInfo]:
        """Every encoded image (of one collection, if given), oldest first."""
        query = self._encoded_query().order_by(schema.encoded_images.c.id)
        with self.engine.connect() as connection:
            if collection is not None:
                collection_id = self._collection_id(connection, collection, create=False)
                query = query.where(schema.images.c.collection_id == collection_id)
            rows = connection.execute(query).all()
        return (self._encoded_info(row) for row in rows)

    def get_encoded(self, encoded_id: str) -> tuple[EncodedInfo, bytes]:
        """An encoded image's record and its payload (the method's output)."""
        with self.engine.connect() as connection:
            row = connection.execute(self._encoded_query().where(schema.encoded_images.c.id == encoded_id)).first()
            blob = connection.execute(
                select(schema.encoded_images.c.data).where(schema.encoded_images.c.id == encoded_id)
            ).scalar()
        if row is None:
            raise EncodedNotFound(f"encoded image {encoded_id} not found")
        return self._encoded_info(row), self._sealer.open("encoded.data", encoded_id, blob)

    def get_model(self, model_id: str) -> tuple[str, dict, bytes]:
        """A codec model's method, parameters and payload."""
        table = schema.codec_models
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table.c.method, table.c.params, table.c.data).where(table.c.id == model_id)
            ).first()
        if row is None:
            raise NotFound(f"codec model {model_id} not found")
        return row.method, json.loads(row.params), self._sealer.open("model.data", model_id, row.data)


__all__ = ["DEFAULT_COLLECTION", "Store"]
