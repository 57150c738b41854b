"""Collections and images: putting images in (one, or many streamed), getting them back, listing, removing.

What putting needs (Pillow, worker processes, the writer thread) is imported by the methods that put, so
that a command that only reads (``imgvault ls``) starts without it.
"""

import functools
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import Connection, Select, bindparam, delete, func, insert, select

from . import schema
from .bindings import image_context_of, listed_image
from .engine import one_read
from .errors import CollectionNotFound, ImageNotFound
from .ids import new_id
from .keyring import Keyring
from .names import check_collection_name
from .records import CollectionInfo, ImageInfo, PutResult, Removal
from .records import utc_now as _now
from .schema import image_columns

DEFAULT_COLLECTION = "default"
# A batch of puts is committed when it holds this many images, this many bytes, or is this old.
BATCH_IMAGES = 500
BATCH_BYTES = 64 * 1024 * 1024
BATCH_SECONDS = 1.0


def _insert_ignoring_conflicts(connection: Connection, table, values: dict, unique: str):
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        return insert(table).values(values)
    return dialect_insert(table).values(values).on_conflict_do_nothing(index_elements=[unique])


@functools.cache
def image_by_id() -> Select:
    # Built once: making a SELECT and its cache key anew for each get costs more than running it.
    images = schema.images
    has_metadata = images.c.metadata.is_not(None).label("has_metadata")
    return image_columns().add_columns(has_metadata, images.c.data).where(images.c.id == bindparam("image_id"))


class Images(Keyring):
    """The collections and images part of :class:`~imgvault.store.Store`."""

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

    def collection(self, name: str) -> CollectionInfo:
        """The collection ``name`` with its image count and size; :class:`CollectionNotFound` if none."""
        found = self._collection_infos(schema.collections.c.name == name)
        if not found:
            raise CollectionNotFound(f'collection "{name}" not found')
        return found[0]

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its image count and size, by name."""
        return self._collection_infos()

    def _collection_infos(self, *where) -> list[CollectionInfo]:
        c, i = schema.collections, schema.images
        query = (
            select(c.c.name, c.c.created_at, func.count(i.c.id), func.coalesce(func.sum(i.c.bytes), 0))
            .select_from(c.outerjoin(i, i.c.collection_id == c.c.id))
            .where(*where)
            .group_by(c.c.id, c.c.name, c.c.created_at)
            .order_by(c.c.name)
        )
        with self.engine.connect() as connection:
            return [
                CollectionInfo(name=name, images=count, bytes=int(size), created=created)
                for name, created, count, size in connection.execute(query)
            ]

    def collection_names(self) -> list[str]:
        """The name of every collection, sorted (cheaper than :meth:`collections`, which counts images)."""
        c = schema.collections
        with one_read(self.engine) as connection:
            return list(connection.execute(select(c.c.name).order_by(c.c.name)).scalars())

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
        from .ingest import stored_name
        from .validate import check_metadata, inspect_image, read_image_file

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

        Files are validated in ``jobs`` worker processes and written in batches, each committed on a
        writer thread (:mod:`.writer`) while the next files are validated; a result is yielded for each
        file once its image is committed, or once it was refused. Bad files never stop the good ones.
        Memory does not grow with the number of files.
        """
        from .ingest import check_files, iter_files
        from .validate import check_metadata
        from .writer import BatchWriter

        check_collection_name(collection)
        check_metadata(metadata)
        pending: list[tuple] = []  # (path, facts, bytes)
        pending_bytes = 0
        started = 0.0
        with BatchWriter(lambda batch: self._commit_batch(collection, batch, metadata)) as writer:
            try:
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
                        yield from writer.submit(pending)
                        pending, pending_bytes = [], 0
                if pending:
                    yield from writer.submit(pending)
                yield from writer.finish()
            except GeneratorExit:  # the caller stopped asking: nobody to tell
                raise
            except BaseException:
                # A worker that died, a Ctrl-C (here, or raised here by a caller that got it between two
                # results): every image committed is given before the error, so that a caller's count (the
                # command line's summary) says what is stored.
                yield from writer.stop()
                raise

    def _commit_batch(self, collection: str, batch: list, metadata: dict | None) -> list[PutResult]:
        from .ingest import stored_name

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
            # Encoded once, for the image's two or three blobs.
            bound = image_context_of(collection_id, collection, facts.format, facts.width, facts.height, facts.mode,
                                     facts.bytes, bool(metadata))  # fmt: skip
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
                    "name": seal("image.name", image_id, name.encode(), context=bound),
                    "metadata": (
                        seal("image.metadata", image_id, json.dumps(metadata).encode(), context=bound)
                        if metadata
                        else None
                    ),
                    "data": seal("image.data", image_id, data, context=bound),
                }
            )
            info = ImageInfo.listed(image_id, name, collection, facts.format, facts.width, facts.height, facts.mode,
                                    facts.bytes, created, dict(metadata or {}))  # fmt: skip
            images.append(info)
        connection.execute(insert(schema.images), rows)
        return images

    def get(self, image_id: str) -> bytes:
        """The original bytes of image ``image_id``, exactly as they were put."""
        if self._reads is not None:  # a SQLite file: straight to the database (see .reads)
            row = self._reads.image_row(image_id)
        else:
            with one_read(self.engine) as connection:
                row = connection.execute(image_by_id(), {"image_id": image_id}).first()
        if row is None:
            raise ImageNotFound(f"image {image_id} not found")
        # The columns of image_by_id: the id, the bound columns in bindings.IMAGE order, the sealed data.
        return self._sealer.open("image.data", image_id, row[9], context=image_context_of(*row[1:9]))

    def _info_query(self):
        # The columns of bindings.listed_image, in its order (reader.py selects the same).
        i = schema.images
        return image_columns().add_columns(i.c.created_at, i.c.name, i.c.metadata)

    def _info(self, row) -> ImageInfo:
        return listed_image(self._sealer, row)

    def info(self, image_id: str) -> ImageInfo:
        """What the store knows about image ``image_id`` (name and metadata unsealed), without its bytes."""
        with self.engine.connect() as connection:
            row = connection.execute(self._info_query().where(schema.images.c.id == image_id)).first()
        if row is None:
            raise ImageNotFound(f"image {image_id} not found")
        return self._info(row)

    def images(self, collection: str | None = None, *, page_size: int = 2000, after: str = "") -> Iterator[ImageInfo]:
        """Every image (of one collection, if given) in the order they were put, streamed in pages.

        With ``after`` (an image id), only the images put after that one: where a listing left off.
        An unknown collection raises :class:`CollectionNotFound` here, before anything is listed.
        """
        images = schema.images
        query = self._info_query().where(images.c.id > bindparam("after")).order_by(images.c.id).limit(page_size)
        if collection is not None:
            with self.engine.connect() as connection:
                collection_id = self._collection_id(connection, collection, create=False)
            query = query.where(images.c.collection_id == collection_id)
        return self._pages(query, page_size, after)

    def _pages(self, query: Select, page_size: int, after: str) -> Iterator[ImageInfo]:
        while True:
            with one_read(self.engine) as connection:
                rows = connection.execute(query, {"after": after}).all()
            for row in rows:
                yield self._info(row)
            if len(rows) < page_size:
                return
            after = rows[-1].id

    def check_images(self, image_ids: Iterable[str]) -> None:
        """:class:`ImageNotFound` naming every one of ``image_ids`` that the store does not hold."""
        wanted = list(dict.fromkeys(image_ids))
        with self.engine.connect() as connection:
            found = set(connection.execute(select(schema.images.c.id).where(schema.images.c.id.in_(wanted))).scalars())
        _raise_missing([image_id for image_id in wanted if image_id not in found])

    def remove(self, image_ids: Iterable[str]) -> Removal:
        """Delete the images ``image_ids`` with their encoded images and the models fitted on them alone:
        all of them, or nothing if any image is missing. Returns what was deleted."""
        wanted = list(dict.fromkeys(image_ids))
        encoded, models = schema.encoded_images, schema.codec_models
        with self._writing() as connection:
            found = set(connection.execute(select(schema.images.c.id).where(schema.images.c.id.in_(wanted))).scalars())
            _raise_missing([image_id for image_id in wanted if image_id not in found])
            # An image takes its encoded images and the models fitted on it alone along; models fitted
            # on a whole collection stay for the collection's other images.
            encoded_ids = connection.execute(select(encoded.c.id).where(encoded.c.image_id.in_(wanted))).scalars()
            model_ids = connection.execute(select(models.c.id).where(models.c.image_id.in_(wanted))).scalars()
            removal = Removal(images=tuple(sorted(wanted)), encoded_images=tuple(sorted(encoded_ids)),
                              codec_models=tuple(sorted(model_ids)))  # fmt: skip
            connection.execute(delete(encoded).where(encoded.c.image_id.in_(wanted)))
            connection.execute(delete(models).where(models.c.image_id.in_(wanted)))
            connection.execute(delete(schema.images).where(schema.images.c.id.in_(wanted)))
        return removal


def _raise_missing(missing: list[str]) -> None:
    if missing:
        raise ImageNotFound(
            f"image {missing[0]} not found" if len(missing) == 1 else f"images not found: {', '.join(missing)}"
        )
