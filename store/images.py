"""Collections and images: putting images in (one, or many streamed), getting them back, listing, removing.

What putting needs (Pillow, worker processes, the writer thread) is imported by the methods that put, so
that a command that only reads (``imgvault ls``) starts without it.
"""

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from imgvault.basics.errors import CollectionNotFound, ImageNotFound

from . import queries
from .bindings import image_context_of, listed_image
from .database import Database
from .ids import new_id
from .keyring import Keyring
from .names import check_collection_name
from .records import CollectionInfo, ImageInfo, PutResult, Removal
from .records import utc_now as _now

DEFAULT_COLLECTION = "default"
# A batch of puts is committed when it holds this many images, this many bytes, or is this old.
BATCH_IMAGES = 500
BATCH_BYTES = 64 * 1024 * 1024
BATCH_SECONDS = 1.0


def _insert_ignoring_conflicts(connection, table, values: dict, unique: str):
    from sqlalchemy import insert

    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        return insert(table).values(values)
    return dialect_insert(table).values(values).on_conflict_do_nothing(index_elements=[unique])


class Images:
    """The collections and images of a store."""

    def __init__(self, database: Database, keyring: Keyring):
        self.database, self.keyring = database, keyring

    # -- collections ---------------------------------------------------------------------------------

    def collection_id(self, name: str, connection=None, *, create: bool = False) -> str:
        """The id of collection ``name`` (made, with ``create``, in the caller's write transaction
        ``connection``); :class:`CollectionNotFound` if there is none."""
        found = self.database.first(queries.COLLECTION_ID, connection, name=name)
        if found is None and create:
            from . import schema

            # ON CONFLICT: two writers creating the same collection at once (PostgreSQL does not
            # serialise them as SQLite's BEGIN IMMEDIATE does) must both end up using one row.
            values = {"id": new_id(), "name": name, "created_at": _now()}
            connection.execute(_insert_ignoring_conflicts(connection, schema.collections, values, "name"))
            found = self.database.first(queries.COLLECTION_ID, connection, name=name)
        if found is None:
            raise CollectionNotFound(f'collection "{name}" not found')
        return found.id

    def collection(self, name: str) -> CollectionInfo:
        """The collection ``name`` with its image count and size; :class:`CollectionNotFound` if none."""
        found = self.database.rows(queries.COLLECTION, name=name)
        if not found:
            raise CollectionNotFound(f'collection "{name}" not found')
        return _collection_info(found[0])

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its image count and size, by name."""
        return [_collection_info(row) for row in self.database.rows(queries.COLLECTIONS)]

    def collection_names(self) -> list[str]:
        """The name of every collection, sorted (cheaper than :meth:`collections`, which counts images)."""
        return [row.name for row in self.database.rows(queries.COLLECTION_NAMES)]

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
        with self.keyring.writing() as connection:
            collection_id = self.collection_id(collection, connection, create=True)
            [image] = self._insert(connection, collection, collection_id, [(name, facts, data, metadata)])
        return image

    def put_many(
        self,
        paths: Iterable[str | Path],
        *,
        collection: str = DEFAULT_COLLECTION,
        metadata: dict | None = None,
        jobs: int | None = None,
        label_of: Callable[[Path], str | None] | None = None,
        committed: Callable[[list[PutResult]], None] | None = None,
    ) -> Iterator[PutResult]:
        """Store every image file named in ``paths`` (directories recursively), streaming.

        Files are validated in ``jobs`` worker processes and written in batches, each committed on a
        writer thread (:mod:`.writer`) while the next files are validated; a result is yielded for each
        file once its image is committed, or once it was refused. Bad files never stop the good ones.
        Memory does not grow with the number of files.

        ``label_of(path)``, if given, is each file's label (or None for none), stored as its metadata's
        ``"label"`` beside ``metadata`` (which then has no label of its own): for instance
        :func:`~.names.label_from_folder`, the name of the folder the file is in. A file whose label is not
        one (:func:`~.names.check_label`) is refused with that reason, as a bad file is.

        ``committed(results)``, if given, is called with each batch's results as soon as it is committed, on
        the writer thread: where no Ctrl-C lands, so that a count kept there is every image stored, even
        when an interrupt stops the caller between a result given and the result counted.
        """
        from imgvault.basics.errors import InvalidParameter

        from .ingest import check_files, iter_files
        from .validate import check_metadata
        from .writer import BatchWriter

        check_collection_name(collection)
        check_metadata(metadata)
        if label_of is not None and metadata and "label" in metadata:
            raise InvalidParameter("a label is given both in the metadata and by label_of: give one of them")
        pending: list[tuple] = []  # (path, facts, bytes, metadata)
        pending_bytes = 0
        started = 0.0
        with BatchWriter(lambda batch: self._commit_batch(collection, batch, committed)) as writer:
            try:
                for checked in check_files(iter_files(paths), jobs):
                    data, error = checked.bytes_to_store()
                    if error:
                        yield PutResult(checked.path, error=error)
                        continue
                    its_metadata = metadata
                    if label_of is not None:
                        its_metadata, error = _labelled(checked.path, metadata, label_of)
                        if error:
                            yield PutResult(checked.path, error=error)
                            continue
                    if not pending:
                        started = time.monotonic()
                    pending.append((checked.path, checked.facts, data, its_metadata))
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

    def put_each(self, paths: Iterable[str | Path], tell: Callable[[PutResult], None], *,
                 collection: str = DEFAULT_COLLECTION, metadata: dict | None = None,
                 jobs: int | None = None, label_of: Callable[[Path], str | None] | None = None,
                 committed: Callable[[list[PutResult]], None] | None = None) -> None:  # fmt: skip
        """:meth:`put_many`, each result given to ``tell`` as it comes (and each committed batch's to
        ``committed``, on the writer thread: see :meth:`put_many`).

        A ``KeyboardInterrupt`` (Ctrl-C) that lands in ``tell`` rather than inside the put is raised inside
        the put too, which then still gives the images it committed to ``tell`` before the interrupt goes on.
        A result the interrupt caught between the put and ``tell`` is not told: count in ``committed`` for a
        count of every image stored. Whichever way it ends, the put's writer thread has ended when this
        returns or raises, so ``committed`` has been given every committed batch.
        """
        results = self.put_many(paths, collection=collection, metadata=metadata, jobs=jobs, label_of=label_of,
                                committed=committed)  # fmt: skip
        try:
            for result in results:
                tell(result)
        except KeyboardInterrupt as interrupt:
            if results.gi_frame is not None:
                with contextlib.suppress(KeyboardInterrupt):
                    for result in _thrown_into(results, interrupt):
                        tell(result)
            raise
        finally:
            results.close()  # a second Ctrl-C left it suspended: its writer ends now, not when it is collected

    def _commit_batch(self, collection: str, batch: list, committed: Callable | None = None) -> list[PutResult]:
        from .ingest import stored_name

        with self.keyring.writing() as connection:
            collection_id = self.collection_id(collection, connection, create=True)
            images = self._insert(
                connection,
                collection,
                collection_id,
                [(stored_name(path), facts, data, metadata) for path, facts, data, metadata in batch],
            )
        results = [PutResult(path, image=image) for (path, *_), image in zip(batch, images, strict=True)]
        if committed is not None:
            committed(results)
        return results

    def _insert(self, connection, collection: str, collection_id: str, items: list) -> list[ImageInfo]:
        from sqlalchemy import insert

        from . import schema

        sealer = self.keyring.sealer
        seal, key_id = sealer.seal, sealer.keyset.primary_id
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
        row = self.database.first(queries.IMAGE_DATA, image_id=image_id)
        if row is None:
            raise ImageNotFound(f"image {image_id} not found")
        _, collection_id, collection, format_, width, height, mode, size, has_metadata, data = row
        bound = image_context_of(collection_id, collection, format_, width, height, mode, size, has_metadata)
        return self.keyring.sealer.open("image.data", image_id, data, context=bound)

    def info(self, image_id: str) -> ImageInfo:
        """What the store knows about image ``image_id`` (name and metadata unsealed), without its bytes."""
        row = self.database.first(queries.IMAGE, image_id=image_id)
        if row is None:
            raise ImageNotFound(f"image {image_id} not found")
        return listed_image(self.keyring.sealer, row)

    def images(self, collection: str | None = None, *, page_size: int = 2000, after: str = "") -> Iterator[ImageInfo]:
        """Every image (of one collection, if given) in the order they were put, streamed in pages.

        With ``after`` (an image id), only the images put after that one: where a listing left off.
        An unknown collection raises :class:`CollectionNotFound` here, before anything is listed.
        """
        if collection is None:
            return self._pages(queries.IMAGES_PAGE, {}, page_size, after)
        parameters = {"collection_id": self.collection_id(collection)}
        return self._pages(queries.COLLECTION_IMAGES_PAGE, parameters, page_size, after)

    def _pages(self, query: queries.Query, parameters: dict, page_size: int, after: str) -> Iterator[ImageInfo]:
        rows, sealer = self.database.rows, self.keyring.sealer
        while True:
            page = rows(query, **parameters, after=after, limit=page_size)
            for row in page:
                yield listed_image(sealer, row)
            if len(page) < page_size:
                return
            after = page[-1].id

    def label_counts(self, collection: str) -> dict[str, int]:
        """How many images of ``collection`` carry each label, by label; images without one are not counted.

        Labels are sealed with the images' metadata, so every image's record is opened (not its bytes).
        """
        counts: dict[str, int] = {}
        for image in self.images(collection):
            label = image.label
            if label is not None:
                counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))

    def check_images(self, image_ids: Iterable[str]) -> None:
        """:class:`ImageNotFound` naming every one of ``image_ids`` that the store does not hold."""
        from sqlalchemy import select

        from . import schema

        wanted = list(dict.fromkeys(image_ids))
        with self.database.engine.connect() as connection:
            found = set(connection.execute(select(schema.images.c.id).where(schema.images.c.id.in_(wanted))).scalars())
        _raise_missing([image_id for image_id in wanted if image_id not in found])

    def remove(self, image_ids: Iterable[str]) -> Removal:
        """Delete the images ``image_ids`` with their encoded images and the models fitted on them alone:
        all of them, or nothing if any image is missing. Returns what was deleted."""
        from sqlalchemy import delete, select

        from . import schema

        wanted = list(dict.fromkeys(image_ids))
        encoded, models = schema.encoded_images, schema.codec_models
        with self.keyring.writing() as connection:
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


def _labelled(
    path: Path, metadata: dict | None, label_of: Callable[[Path], str | None]
) -> tuple[dict | None, str | None]:
    """``metadata`` with the label ``label_of`` gives the file at ``path``, checked; or why it cannot be stored."""
    from imgvault.basics.errors import ImgVaultError

    from .validate import check_metadata

    try:
        label = label_of(path)
        if label is None:
            return metadata, None
        labelled = {**(metadata or {}), "label": label}
        check_metadata(labelled)
    except ImgVaultError as exc:
        return None, f"{path}: {exc}"
    return labelled, None


def _thrown_into(results, interrupt: BaseException):
    """What ``results`` (a generator) gives once ``interrupt`` is raised inside it."""
    yield results.throw(interrupt)
    yield from results


def _collection_info(row: queries.CollectionRow) -> CollectionInfo:
    return CollectionInfo(name=row.name, images=row.images, bytes=int(row.bytes), created=row.created_at)


def _raise_missing(missing: list[str]) -> None:
    if missing:
        raise ImageNotFound(
            f"image {missing[0]} not found" if len(missing) == 1 else f"images not found: {', '.join(missing)}"
        )
