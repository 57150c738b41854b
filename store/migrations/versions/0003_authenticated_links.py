"""Authenticated links: every sealed blob bound to its record's columns (sealed-blob format 2); metrics sealed.

Re-seals every image, codec model and encoded image with the store's primary key in format 2, with the
record's context, and turns the encoded images' plaintext metrics into a sealed column. It needs the
store's key: ``imgvault db upgrade`` (``Store.upgrade_schema``) loads it and hands its sealer over.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import json
import os
import struct

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 200

# What format 2 binds, frozen as of this revision (imgvault.store.bindings may move on; this must not).
IMAGE = ("collection_id", "collection", "format", "width", "height", "mode", "bytes")
MODEL = ("collection_id", "image_id", "method", "params")
ENCODED = ("image_id", "model_id", "method", "params")

collections = sa.table("collections", sa.column("id"), sa.column("name"))
images = sa.table(
    "images", *(sa.column(c) for c in ("id", "collection_id", "format", "width", "height", "mode", "bytes",
                                        "key_id", "name", "metadata", "data")),
)  # fmt: skip
codec_models = sa.table(
    "codec_models", *(sa.column(c) for c in ("id", "collection_id", "image_id", "method", "params", "key_id", "data"))
)
encoded_images = sa.table(
    "encoded_images",
    *(sa.column(c) for c in ("id", "image_id", "model_id", "method", "params", "key_id", "data", "metrics",
                             "sealed_metrics")),
)  # fmt: skip


def _rewrite(connection, table, query, change) -> None:
    """``UPDATE`` every row of ``query`` with ``change(row)``, in id order, a batch at a time."""
    after = ""
    while True:
        rows = connection.execute(query.where(table.c.id > after).order_by(table.c.id).limit(BATCH)).all()
        for row in rows:
            connection.execute(table.update().where(table.c.id == row.id).values(change(row)))
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _to_format_2(sealer, kind: str, bound: tuple[str, ...], columns: tuple[str, ...], metrics: bool = False):
    def change(row) -> dict:
        context = {name: row._mapping[name] for name in bound}
        values = {"key_id": sealer.keyset.primary_id}
        for column in columns:
            blob = row._mapping[column]
            if blob is not None:
                plain = sealer.open(f"{kind}.{column}", row.id, bytes(blob))  # format 1: no context
                values[column] = sealer.seal(f"{kind}.{column}", row.id, plain, context=context)
        if metrics:
            plain = json.dumps(json.loads(row.metrics), sort_keys=True).encode()
            values["sealed_metrics"] = sealer.seal("encoded.metrics", row.id, plain, context=context)
        return values

    return change


def _seal_format_1(sealer, kind: str, record_id: str, data: bytes) -> bytes:
    # Format 1, frozen here: header (magic, version 1, key id, nonce); AAD = header + store id + kind + id.
    def field(text: str) -> bytes:
        return struct.pack(">H", len(text.encode())) + text.encode()

    key_id = sealer.keyset.primary_id
    header = struct.pack(">4sBI12s", b"IVLT", 1, key_id, os.urandom(12))
    aad = header + field(sealer.store_id) + field(kind) + field(record_id)
    return header + sealer.keyset.aead(key_id).encrypt(header[9:], data, aad)


def _to_format_1(sealer, kind: str, bound: tuple[str, ...], columns: tuple[str, ...], metrics: bool = False):
    def change(row) -> dict:
        context = {name: row._mapping[name] for name in bound}
        values = {"key_id": sealer.keyset.primary_id}
        for column in columns:
            blob = row._mapping[column]
            if blob is not None:
                plain = sealer.open(f"{kind}.{column}", row.id, bytes(blob), context=context)
                values[column] = _seal_format_1(sealer, f"{kind}.{column}", row.id, plain)
        if metrics:
            plain = sealer.open("encoded.metrics", row.id, bytes(row.sealed_metrics), context=context)
            values["metrics"] = plain.decode()
        return values

    return change


def _sealer_for_records(connection):
    """The store's sealer, if there are records to re-seal (an empty store, as ``init`` makes, needs none)."""
    records = sum(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                  for t in (images, codec_models, encoded_images))  # fmt: skip
    if not records:
        return None
    sealer = context.config.attributes.get("sealer")
    if sealer is None:
        from imgvault.basics.errors import ConfigError

        raise ConfigError("this migration re-seals the store's records and needs its key: run imgvault db upgrade")
    return sealer


IMAGE_QUERY = sa.select(images, collections.c.name.label("collection")).join(
    collections, collections.c.id == images.c.collection_id
)


def _rewrite_all(connection, convert) -> None:
    _rewrite(connection, images, IMAGE_QUERY, convert("image", IMAGE, ("name", "metadata", "data")))
    _rewrite(connection, codec_models, sa.select(codec_models), convert("model", MODEL, ("data",)))
    _rewrite(connection, encoded_images, sa.select(encoded_images), convert("encoded", ENCODED, ("data",), True))


def upgrade() -> None:
    connection = op.get_bind()
    with op.batch_alter_table("encoded_images") as batch:
        batch.add_column(sa.Column("sealed_metrics", sa.LargeBinary(), nullable=True))
    sealer = _sealer_for_records(connection)
    if sealer is not None:
        _rewrite_all(connection, lambda *args: _to_format_2(sealer, *args))
    with op.batch_alter_table("encoded_images") as batch:
        batch.drop_column("metrics")
        batch.alter_column("sealed_metrics", new_column_name="metrics", existing_type=sa.LargeBinary(),
                           nullable=False)  # fmt: skip


def downgrade() -> None:
    connection = op.get_bind()
    with op.batch_alter_table("encoded_images") as batch:
        batch.alter_column("metrics", new_column_name="sealed_metrics", existing_type=sa.LargeBinary(),
                           nullable=True)  # fmt: skip
    with op.batch_alter_table("encoded_images") as batch:  # a batch of its own: the old name is free only now
        batch.add_column(sa.Column("metrics", sa.Text(), nullable=True))
    sealer = _sealer_for_records(connection)
    if sealer is not None:
        _rewrite_all(connection, lambda *args: _to_format_1(sealer, *args))
    with op.batch_alter_table("encoded_images") as batch:
        batch.drop_column("sealed_metrics")
        batch.alter_column("metrics", existing_type=sa.Text(), nullable=False)
