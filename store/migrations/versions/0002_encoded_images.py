"""Encoded images and codec models.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "codec_models",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("collection_id", sa.String(26), nullable=False),
        sa.Column("image_id", sa.String(26), nullable=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name="fk_codec_models_collection_id_collections"
        ),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_codec_models_image_id_images"),
        sa.PrimaryKeyConstraint("id", name="pk_codec_models"),
    )
    op.create_index("ix_codec_models_collection_id", "codec_models", ["collection_id"])
    op.create_index("ix_codec_models_image_id", "codec_models", ["image_id"])
    op.create_index("ix_codec_models_key_id", "codec_models", ["key_id"])
    op.create_table(
        "encoded_images",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("image_id", sa.String(26), nullable=False),
        sa.Column("model_id", sa.String(26), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_encoded_images_image_id_images"),
        sa.ForeignKeyConstraint(["model_id"], ["codec_models.id"], name="fk_encoded_images_model_id_codec_models"),
        sa.PrimaryKeyConstraint("id", name="pk_encoded_images"),
    )
    op.create_index("ix_encoded_images_image_id", "encoded_images", ["image_id"])
    op.create_index("ix_encoded_images_model_id", "encoded_images", ["model_id"])
    op.create_index("ix_encoded_images_key_id", "encoded_images", ["key_id"])


def downgrade() -> None:
    op.drop_table("encoded_images")
    op.drop_table("codec_models")
