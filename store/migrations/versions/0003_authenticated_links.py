"""Authenticated links: every sealed blob bound to its record's columns (sealed-blob format 2); metrics sealed.

Re-seals every image, codec model and encoded image with the store's primary key in format 2, with the
record's context, and turns the encoded images' plaintext metrics into a sealed column. It needs the
store's key: ``imgvault db upgrade`` (``Store.upgrade_schema``) loads it and hands its sealer over.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import json

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


def _reseal_table(connection, sealer, kind: str, table, query, bound: tuple[str, ...], columns: tuple[str, ...],
                  extra=None) -> None:  # fmt: skip
    after = ""
    while True:
        rows = connection.execute(query.where(table.c.id > after).order_by(table.c.id).limit(BATCH)).all()
        for row in rows:
            values_of = row._mapping
            ctx = {name: values_of[name] for name in bound}
            values = {"key_id": sealer.keyset.primary_id}
            for column in columns:
                blob = values_of[column]
                if blob is not None:
                    place = f"{kind}.{column}"
                    plain = sealer.open(place, row.id, bytes(blob))  # format 1: no context
                    values[column] = sealer.seal(place, row.id, plain, context=ctx)
            if extra is not None:
                values.update(extra(row, ctx))
            connection.execute(table.update().where(table.c.id == row.id).values(values))
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _sealed_metrics(sealer):
    def extra(row, ctx) -> dict:
        metrics = json.dumps(json.loads(row.metrics), sort_keys=True).encode()
        return {"sealed_metrics": sealer.seal("encoded.metrics", row.id, metrics, context=ctx)}

    return extra


def upgrade() -> None:
    connection = op.get_bind()
    with op.batch_alter_table("encoded_images") as batch:
        batch.add_column(sa.Column("sealed_metrics", sa.LargeBinary(), nullable=True))
    records = sum(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                  for t in (images, codec_models, encoded_images))  # fmt: skip
    if records:
        sealer = context.config.attributes.get("sealer")
        if sealer is None:
            from imgvault.store.errors import ConfigError

            raise ConfigError("this upgrade re-seals the store's records and needs its key: run imgvault db upgrade")
        image_query = sa.select(images, collections.c.name.label("collection")).join(
            collections, collections.c.id == images.c.collection_id
        )
        _reseal_table(connection, sealer, "image", images, image_query, IMAGE, ("name", "metadata", "data"))
        _reseal_table(connection, sealer, "model", codec_models, sa.select(codec_models), MODEL, ("data",))
        _reseal_table(connection, sealer, "encoded", encoded_images, sa.select(encoded_images), ENCODED, ("data",),
                      _sealed_metrics(sealer))  # fmt: skip
    with op.batch_alter_table("encoded_images") as batch:
        batch.drop_column("metrics")
        batch.alter_column("sealed_metrics", new_column_name="metrics", existing_type=sa.LargeBinary(),
                           nullable=False)  # fmt: skip


def downgrade() -> None:
    raise NotImplementedError("format 2 blobs are not turned back into format 1; restore a backup instead")
