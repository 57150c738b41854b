"""What each sealed blob is bound to: the plaintext columns of its record that must not change under it.

Every sealed column of a record is sealed with the record's context (see :mod:`.crypto`), so editing a
bound column in the database, or swapping it with another row's, makes the record's blobs fail to open
with :class:`IntegrityError` instead of serving other pixels, another model or other metrics.

===========  ==============================  ==========================================================
record       sealed columns                  bound columns
===========  ==============================  ==========================================================
image        name, metadata, data            collection (id and name), format, width, height, mode,
                                             bytes, whether it has metadata
codec model  data                            collection id, image id (NULL for a collection's model),
                                             method, params
encoded      data, metrics                   image id, model id, method, params
API token    seal (an empty payload: a MAC)  name, token hash, read-only, created, revoked
===========  ==============================  ==========================================================

Parameters are bound as the JSON text stored, so they are checked before they are parsed. Whether an image
has metadata is bound too, so that setting its metadata to NULL is detected like any other edit. An API
token's row holds no secret, but it grants rights: its seal authenticates every column of it, so a row
inserted or edited by whoever can write the database but lacks the key (a new token, a revocation undone,
a read-only token made writable) is refused. The metrics
of an encoded image are sealed (they are what users read about a method's quality), and bound with it.
Renaming a collection would therefore mean re-sealing its images; imgvault has no rename.
"""

import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii

from .crypto import Sealer, context_bytes
from .records import EncodedInfo, ImageInfo

IMAGE = ("collection_id", "collection", "format", "width", "height", "mode", "bytes", "has_metadata")
MODEL = ("collection_id", "image_id", "method", "params")
ENCODED = ("image_id", "model_id", "method", "params")
TOKEN = ("name", "token_sha256", "read_only", "created_at", "revoked_at")


def _context(names: tuple[str, ...]):
    def context(values: Mapping) -> dict:
        return {name: values[name] for name in names}

    return context


# Each takes the record's columns (a dict, or a row's ``_mapping``; an image's with ``collection``, the
# collection's name) and gives the context its blobs are sealed with.
def image_context(values: Mapping) -> dict:
    """An image's context; ``has_metadata`` from the row's sealed metadata column when it is not given."""
    has = values["has_metadata"] if "has_metadata" in values else values["metadata"] is not None
    return {**{name: values[name] for name in IMAGE[:-1]}, "has_metadata": bool(has)}


model_context = _context(MODEL)
encoded_context = _context(ENCODED)


def token_context(values: Mapping) -> dict:
    """An API token row's context: every column, its times as ISO text (as the database gives them back)."""
    when = values["created_at"], values["revoked_at"]
    created, revoked = (None if moment is None else moment.isoformat(timespec="microseconds") for moment in when)
    return {"name": values["name"], "token_sha256": values["token_sha256"], "read_only": bool(values["read_only"]),
            "created_at": created, "revoked_at": revoked}  # fmt: skip


CONTEXT = {"image": image_context, "model": model_context, "encoded": encoded_context, "token": token_context}

# The canonical JSON of an image's context (keys sorted, no spaces, ASCII), written out: listing opens a
# blob or two per image, and building a dict to encode it costs as much as opening them.
_IMAGE_JSON = (
    '{"bytes":%d,"collection":%s,"collection_id":%s,"format":%s,"has_metadata":%s,"height":%d,"mode":%s,"width":%d}'
)


def image_context_of(collection_id, collection, format_, width, height, mode, size, has_metadata) -> bytes | dict:
    """``context_bytes(image_context(...))`` of an image's bound columns, given in :data:`IMAGE` order (or
    the context itself if JSON cannot hold a value of it, for Sealer.open to refuse as altered)."""
    has_metadata = bool(has_metadata)
    if type(width) is int and type(height) is int and type(size) is int:
        quote = encode_basestring_ascii
        try:
            presence = "true" if has_metadata else "false"
            return (_IMAGE_JSON % (size, quote(collection), quote(collection_id), quote(format_), presence, height,
                                   quote(mode), width)).encode()  # fmt: skip
        except TypeError:
            pass  # a value that is not a str: json.dumps knows what to do with it
    values = dict(zip(IMAGE, (collection_id, collection, format_, width, height, mode, size, has_metadata),
                      strict=True))  # fmt: skip
    try:
        return context_bytes(values)
    except TypeError:
        return values  # bytes in a bound column: open refuses it as tampering, seal as the caller's mistake


# Listing: the rows of queries.IMAGE and queries.ENCODED_IMAGES (and their variants), opened.


def listed_image(sealer: Sealer, row) -> ImageInfo:
    """An image as listed, its name and metadata opened: ``row`` is a :class:`~.queries.ImageRow`."""
    image_id, collection_id, collection, format_, width, height, mode, size, created, name, metadata = row
    bound = image_context_of(collection_id, collection, format_, width, height, mode, size, metadata is not None)
    open_ = sealer.open
    name = open_("image.name", image_id, name, context=bound).decode()
    metadata = {} if metadata is None else json.loads(open_("image.metadata", image_id, metadata, context=bound))
    return ImageInfo.listed(image_id, name, collection, format_, width, height, mode, size, created, metadata)


def listed_encoded(sealer: Sealer, row) -> EncodedInfo:
    """An encoded image as listed, its metrics opened: ``row`` is an :class:`~.queries.EncodedRow`."""
    encoded_id, image_id, model_id, collection, method, params, metrics, size, created = row
    # The metrics open first: they authenticate the links and parameters before these are used.
    bound = encoded_context({"image_id": image_id, "model_id": model_id, "method": method, "params": params})
    metrics = sealer.open("encoded.metrics", encoded_id, metrics, context=bound)
    return EncodedInfo(id=encoded_id, image_id=image_id, model_id=model_id, collection=collection, method=method,
                       params=json.loads(params), metrics=json.loads(metrics), bytes=size, created=created)  # fmt: skip
