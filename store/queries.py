"""Every SELECT the store reads with, written once, each with the named row it gives.

The same text runs on the standard library's sqlite3 (a SQLite file, read-only) and through SQLAlchemy
(any database): it is plain SQL that both SQLite and PostgreSQL take, with ``:name`` parameters. What
each row's sealed columns are bound to is in :mod:`.bindings`, which opens the rows read here. Writes,
and the reads inside them, are SQLAlchemy Core next to the code that writes (:mod:`.schema` has their
SELECTs of sealed rows). Nothing here imports SQLAlchemy: listing a SQLite store starts without it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

# An image's columns that its sealed blobs are bound to (with the collection's name), as both image rows begin.
_IMAGE_BOUND = [("id", str), ("collection_id", str), ("collection", str), ("format", str), ("width", int),
                ("height", int), ("mode", str), ("bytes", int)]  # fmt: skip
#: An image as listed: its bound columns, its time, and its sealed name and metadata.
ImageRow = NamedTuple(
    "ImageRow", [*_IMAGE_BOUND, ("created_at", datetime), ("name", bytes), ("metadata", bytes | None)]
)
#: An image's bound columns and its sealed bytes: what getting it reads.
ImageData = NamedTuple("ImageData", [*_IMAGE_BOUND, ("has_metadata", bool), ("data", bytes)])


class CollectionRow(NamedTuple):
    name: str
    created_at: datetime
    images: int
    bytes: int


class EncodedRow(NamedTuple):
    """An encoded image as listed: its bound columns, its collection's name, and its sealed metrics."""

    id: str
    image_id: str
    model_id: str
    collection: str
    method: str
    params: str
    metrics: bytes
    bytes: int
    created_at: datetime


class EncodedData(NamedTuple):
    """An encoded image's bound columns and its sealed payload."""

    id: str
    image_id: str
    model_id: str
    method: str
    params: str
    data: bytes


class ModelData(NamedTuple):
    """A codec model's bound columns and its sealed payload."""

    id: str
    collection_id: str
    image_id: str | None
    method: str
    params: str
    data: bytes


class TokenRow(NamedTuple):
    """An API token's row: the columns its seal authenticates, and the seal."""

    name: str
    token_sha256: str
    read_only: bool
    created_at: datetime
    revoked_at: datetime | None
    key_id: int | None
    seal: bytes | None


class KeyRow(NamedTuple):
    key_id: int
    kdf: str | None
    check: bytes


class Setting(NamedTuple):
    name: str
    value: str


class Name(NamedTuple):
    name: str


class Id(NamedTuple):
    id: str


@dataclass(frozen=True)
class Query:
    """A SELECT and the row type of its rows; ``times`` names the columns that hold timestamps (SQLite
    gives them as text, as SQLAlchemy wrote them: :meth:`Database.rows <.database.Database.rows>` makes them
    datetimes)."""

    sql: str
    row: type
    times: tuple[str, ...] = ()

    def __post_init__(self):
        for name in self.times:
            if name not in self.row._fields:
                raise ValueError(f"{name} is not a column of {self.row.__name__}")


_IMAGE_COLUMNS = (
    "images.id, images.collection_id, collections.name AS collection, images.format, images.width, images.height,"
    " images.mode, images.bytes"
)
_IMAGE_JOIN = " FROM images JOIN collections ON collections.id = images.collection_id"
_LISTED_IMAGE = f"SELECT {_IMAGE_COLUMNS}, images.created_at, images.name, images.metadata{_IMAGE_JOIN}"
_PAGE = " WHERE images.id > :after{} ORDER BY images.id LIMIT :limit"

IMAGE = Query(f"{_LISTED_IMAGE} WHERE images.id = :image_id", ImageRow, ("created_at",))
IMAGES_PAGE = Query(_LISTED_IMAGE + _PAGE.format(""), ImageRow, ("created_at",))
COLLECTION_IMAGES_PAGE = Query(
    _LISTED_IMAGE + _PAGE.format(" AND images.collection_id = :collection_id"), ImageRow, ("created_at",)
)
IMAGE_DATA = Query(
    f"SELECT {_IMAGE_COLUMNS}, images.metadata IS NOT NULL AS has_metadata, images.data{_IMAGE_JOIN}"
    " WHERE images.id = :image_id",
    ImageData,
)

COLLECTION_ID = Query("SELECT collections.id FROM collections WHERE collections.name = :name", Id)
COLLECTION_NAMES = Query("SELECT collections.name FROM collections ORDER BY collections.name", Name)
_COLLECTIONS = (
    "SELECT collections.name, collections.created_at, count(images.id) AS images,"
    " coalesce(sum(images.bytes), 0) AS bytes"
    " FROM collections LEFT OUTER JOIN images ON images.collection_id = collections.id{}"
    " GROUP BY collections.id, collections.name, collections.created_at ORDER BY collections.name"
)
COLLECTIONS = Query(_COLLECTIONS.format(""), CollectionRow, ("created_at",))
COLLECTION = Query(_COLLECTIONS.format(" WHERE collections.name = :name"), CollectionRow, ("created_at",))

_LISTED_ENCODED = (
    "SELECT encoded_images.id, encoded_images.image_id, encoded_images.model_id, collections.name AS collection,"
    " encoded_images.method, encoded_images.params, encoded_images.metrics, encoded_images.bytes,"
    " encoded_images.created_at"
    " FROM encoded_images JOIN images ON images.id = encoded_images.image_id"
    " JOIN collections ON collections.id = images.collection_id{} ORDER BY encoded_images.id"
)
ENCODED_IMAGES = Query(_LISTED_ENCODED.format(""), EncodedRow, ("created_at",))
COLLECTION_ENCODED_IMAGES = Query(
    _LISTED_ENCODED.format(" WHERE images.collection_id = :collection_id"), EncodedRow, ("created_at",)
)
IMAGE_ENCODED_IMAGES = Query(
    _LISTED_ENCODED.format(" WHERE encoded_images.image_id = :image_id"), EncodedRow, ("created_at",)
)
ENCODED_IMAGE = Query(_LISTED_ENCODED.format(" WHERE encoded_images.id = :encoded_id"), EncodedRow, ("created_at",))
ENCODED_DATA = Query(
    "SELECT id, image_id, model_id, method, params, data FROM encoded_images WHERE id = :encoded_id", EncodedData
)
MODEL_DATA = Query(
    "SELECT id, collection_id, image_id, method, params, data FROM codec_models WHERE id = :model_id", ModelData
)

_TOKENS = "SELECT name, token_sha256, read_only, created_at, revoked_at, key_id, seal FROM api_tokens"
TOKEN_BY_DIGEST = Query(f"{_TOKENS} WHERE token_sha256 = :digest", TokenRow, ("created_at", "revoked_at"))
TOKEN_BY_NAME = Query(f"{_TOKENS} WHERE name = :name", TokenRow, ("created_at", "revoked_at"))
TOKENS = Query(f"{_TOKENS} ORDER BY name", TokenRow, ("created_at", "revoked_at"))

SETTINGS = Query("SELECT name, value FROM settings", Setting)
KEYS = Query('SELECT key_id, kdf, "check" FROM keys', KeyRow)
