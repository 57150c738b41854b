"""What the store hands back: images, collections, put outcomes and rotation reports."""

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from pathlib import Path

_new_object = object.__new__


def utc_now() -> datetime:
    """Now, as the naive UTC datetime the store's timestamps are kept in."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_utc(moment: datetime) -> str:
    """A naive UTC datetime as ISO 8601 with a Z (``2026-11-25T13:02:26.000000Z``)."""
    return moment.isoformat("T", "microseconds") + "Z"  # positional: a fifth faster, once per image listed


@dataclass(frozen=True)
class ImageInfo:
    """An image in the store, as listed: everything but its bytes."""

    id: str
    name: str
    collection: str
    format: str
    width: int
    height: int
    mode: str
    bytes: int
    created: datetime
    metadata: dict = field(default_factory=dict)

    @property
    def label(self) -> str | None:
        """The image's label (its metadata's ``"label"``, sealed with it), or None."""
        label = self.metadata.get("label")
        return label if isinstance(label, str) else None

    @classmethod
    def listed(cls, image_id, name, collection, format_, width, height, mode, size, created, metadata) -> "ImageInfo":
        """``ImageInfo(...)`` of every field, in order, made without the frozen ``__init__`` (which calls
        ``object.__setattr__`` for each field, and costs twice as much): a listing makes one per image."""
        self = _new_object(cls)
        self.__dict__.update(id=image_id, name=name, collection=collection, format=format_, width=width,
                             height=height, mode=mode, bytes=size, created=created, metadata=metadata)  # fmt: skip
        return self

    def to_dict(self) -> dict:
        """A JSON-ready dict (``created`` as ISO 8601 UTC)."""
        # Field by field: asdict deep-copies each value, which is most of the time of a JSON listing.
        return {"id": self.id, "name": self.name, "collection": self.collection, "format": self.format,
                "width": self.width, "height": self.height, "mode": self.mode, "bytes": self.bytes,
                "created": iso_utc(self.created), "metadata": dict(self.metadata)}  # fmt: skip

    def to_json(self) -> str:
        """``json.dumps(self.to_dict())``, written out: a JSON listing makes one per image."""
        if type(self.width) is int and type(self.height) is int and type(self.bytes) is int:
            quote = encode_basestring_ascii
            try:
                return _IMAGE_JSON % (quote(self.id), quote(self.name), quote(self.collection), quote(self.format),
                                      self.width, self.height, quote(self.mode), self.bytes, iso_utc(self.created),
                                      json.dumps(self.metadata) if self.metadata else "{}")  # fmt: skip
            except TypeError:
                pass  # a field that is not a str: json.dumps knows what to do with it
        return json.dumps(self.to_dict())


_IMAGE_JSON = (
    '{"id": %s, "name": %s, "collection": %s, "format": %s, "width": %d, "height": %d, "mode": %s, "bytes": %d,'
    ' "created": "%s", "metadata": %s}'
)


@dataclass(frozen=True)
class CollectionInfo:
    """A collection with its image count and total size in bytes."""

    name: str
    images: int
    bytes: int
    created: datetime

    def to_dict(self) -> dict:
        return {**asdict(self), "created": iso_utc(self.created)}


@dataclass(frozen=True)
class PutResult:
    """The outcome for one file of :meth:`Store.put_many`: the stored image, or why it was refused."""

    path: Path
    image: ImageInfo | None = None
    error: str | None = None


@dataclass(frozen=True)
class RotationReport:
    """What :meth:`Store.rotate_key` did."""

    new_key_id: int
    retired_key_ids: list[int]
    resealed: dict[str, int]
    # What the ``before_retire`` callback of :meth:`Store.rotate_key` re-sealed outside the store.
    resealed_artifacts: int = 0

    @property
    def resealed_images(self) -> int:
        return self.resealed.get("image", 0)


@dataclass(frozen=True)
class Removal:
    """What :meth:`Store.remove` deleted: the images, their encoded images, and the codec models fitted on
    those images alone (ids, sorted)."""

    images: tuple[str, ...]
    encoded_images: tuple[str, ...]
    codec_models: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"images": list(self.images), "encoded_images": list(self.encoded_images),
                "codec_models": list(self.codec_models)}  # fmt: skip


@dataclass(frozen=True)
class EncodedInfo:
    """An encoded ("encrypted") image: which image, method, parameters and model, and its quality metrics."""

    id: str
    image_id: str
    model_id: str
    collection: str
    method: str
    params: dict
    metrics: dict
    bytes: int
    created: datetime

    def to_dict(self) -> dict:
        return {**asdict(self), "created": iso_utc(self.created)}
