"""What each sealed blob is bound to: the plaintext columns of its record that must not change under it.

Every sealed column of a record is sealed with the record's context (see :mod:`.crypto`), so editing a
bound column in the database, or swapping it with another row's, makes the record's blobs fail to open
with :class:`IntegrityError` instead of serving other pixels, another model or other metrics.

===========  ==============================  ==========================================================
record       sealed columns                  bound columns
===========  ==============================  ==========================================================
image        name, metadata, data            collection (id and name), format, width, height, mode,
                                             bytes
codec model  data                            collection id, image id (NULL for a collection's model),
                                             method, params
encoded      data, metrics                   image id, model id, method, params
===========  ==============================  ==========================================================

Parameters are bound as the JSON text stored, so they are checked before they are parsed. The metrics
of an encoded image are sealed (they are what users read about a method's quality), and bound with it.
Renaming a collection would therefore mean re-sealing its images; imgvault has no rename.
"""

from collections.abc import Mapping

from sqlalchemy import Select, select

from . import schema

IMAGE = ("collection_id", "collection", "format", "width", "height", "mode", "bytes")
MODEL = ("collection_id", "image_id", "method", "params")
ENCODED = ("image_id", "model_id", "method", "params")


def _context(names: tuple[str, ...]):
    def context(values: Mapping) -> dict:
        return {name: values[name] for name in names}

    return context


# Each takes the record's columns (a dict, or a row's ``_mapping``; an image's with ``collection``, the
# collection's name) and gives the context its blobs are sealed with.
image_context = _context(IMAGE)
model_context = _context(MODEL)
encoded_context = _context(ENCODED)


CONTEXT = {"image": image_context, "model": model_context, "encoded": encoded_context}


def image_columns() -> Select:
    """The images' bound columns, with the collection's name as ``collection``, joined."""
    i, c = schema.images, schema.collections
    return select(
        i.c.id, i.c.collection_id, c.c.name.label("collection"), i.c.format, i.c.width, i.c.height, i.c.mode,
        i.c.bytes,
    ).join(c, c.c.id == i.c.collection_id)  # fmt: skip


def sealed_rows(kind: str) -> Select:
    """Every record of ``kind`` with its sealed columns and the columns they are bound to."""
    table, columns = schema.SEALED[kind]
    sealed = [table.c[column] for column in columns]
    if kind == "image":
        return image_columns().add_columns(*sealed)
    if kind == "model":
        t = table.c
        return select(t.id, t.collection_id, t.image_id, t.method, t.params, *sealed)
    t = table.c
    return select(t.id, t.image_id, t.model_id, t.method, t.params, *sealed)
