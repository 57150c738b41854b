"""Authenticated rights and absence: API token rows sealed; whether an image has metadata bound into its blobs.

Adds ``api_tokens.key_id`` and ``api_tokens.seal`` and seals every token row (a MAC of its name, hash, rights,
creation and revocation), so that a row written without the store's key grants nothing. Re-seals every
image's blobs with ``has_metadata`` in their context, so that a metadata column set to NULL is detected. It
needs the store's key: ``imgvault db upgrade`` (``Store.upgrade_schema``) loads it and hands its sealer over.

Revision ID: 0005_authenticated_rights
Revises: 0004_api_tokens
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0005_authenticated_rights"
down_revision = "0004_api_tokens"
branch_labels = None
depends_on = None

BATCH = 200

# What the image blobs are bound to before and after this revision, frozen here (imgvault.store.bindings may
# move on; this must not).
IMAGE_BEFORE = ("collection_id", "collection", "format", "width", "height", "mode", "bytes")
IMAGE_COLUMNS = ("name", "metadata", "data")

collections = sa.table("collections", sa.column("id"), sa.column("name"))
images = sa.table(
    "images", *(sa.column(c) for c in ("id", "collection_id", "format", "width", "height", "mode", "bytes",
                                        "key_id", "name", "metadata", "data")),
)  # fmt: skip
api_tokens = sa.table(
    "api_tokens", *(sa.column(c) for c in ("name", "token_sha256", "read_only", "created_at", "revoked_at", "key_id",
                                            "seal")),
)  # fmt: skip
IMAGE_QUERY = sa.select(images, collections.c.name.label("collection")).join(
    collections, collections.c.id == images.c.collection_id
)


def _image_context(row, with_presence: bool) -> dict:
    values = {name: row._mapping[name] for name in IMAGE_BEFORE}
    if with_presence:
        values["has_metadata"] = row.metadata is not None
    return values


def _token_context(row) -> dict:
    def when(moment):
        return None if moment is None else moment.isoformat(timespec="microseconds")

    return {"name": row.name, "token_sha256": row.token_sha256, "read_only": bool(row.read_only),
            "created_at": when(row.created_at), "revoked_at": when(row.revoked_at)}  # fmt: skip


def _reseal_images(connection, sealer, *, to_presence: bool) -> None:
    """Every image's blobs re-sealed from the context without ``has_metadata`` to the one with it (or back)."""
    after = ""
    while True:
        rows = connection.execute(IMAGE_QUERY.where(images.c.id > after).order_by(images.c.id).limit(BATCH)).all()
        for row in rows:
            before, now = _image_context(row, not to_presence), _image_context(row, to_presence)
            values = {"key_id": sealer.keyset.primary_id}
            for column in IMAGE_COLUMNS:
                blob = row._mapping[column]
                if blob is not None:
                    plain = sealer.open(f"image.{column}", row.id, bytes(blob), context=before)
                    values[column] = sealer.seal(f"image.{column}", row.id, plain, context=now)
            connection.execute(images.update().where(images.c.id == row.id).values(values))
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _sealer(connection):
    """The store's sealer, if there are records to seal (an empty store, as ``init`` makes, needs none)."""
    records = sum(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in (images, api_tokens))
    if not records:
        return None
    sealer = context.config.attributes.get("sealer")
    if sealer is None:
        from imgvault.basics.errors import ConfigError

        raise ConfigError("this migration re-seals the store's records and needs its key: run imgvault db upgrade")
    return sealer


def upgrade() -> None:
    connection = op.get_bind()
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("key_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("seal", sa.LargeBinary(), nullable=True))
    sealer = _sealer(connection)
    if sealer is None:
        return
    _reseal_images(connection, sealer, to_presence=True)
    for row in connection.execute(sa.select(api_tokens)).all():
        blob = sealer.seal("token.seal", row.name, b"", context=_token_context(row))
        connection.execute(api_tokens.update().where(api_tokens.c.name == row.name)
                           .values(key_id=sealer.keyset.primary_id, seal=blob))  # fmt: skip


def downgrade() -> None:
    connection = op.get_bind()
    sealer = _sealer(connection)
    if sealer is not None:
        _reseal_images(connection, sealer, to_presence=False)
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("seal")
        batch.drop_column("key_id")
