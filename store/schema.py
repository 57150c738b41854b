"""The store's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create and change them.

What is sealed and what stays visible is decided here: every ``LargeBinary`` column below holds a sealed
blob (see :mod:`imgvault.store.crypto`); everything else is plaintext that the database can index.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.sql import Select

# The Alembic revision this code reads and writes, bumped with every migration, is kept where the read-only
# listing checks it without SQLAlchemy.
from .opening import SCHEMA_REVISION as SCHEMA_REVISION

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Store-wide settings: store_id (bound into every sealed blob), key_source ("file" or "passphrase"),
# primary_key_id (the key new blobs are sealed with).
settings = Table(
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per key that may have sealed something. ``kdf`` holds the scrypt salt and parameters of a
# passphrase key; ``check`` is a constant sealed with the key, to tell a wrong key at open time.
keys = Table(
    "keys",
    metadata,
    Column("key_id", BigInteger, primary_key=True, autoincrement=False),
    Column("kdf", Text, nullable=True),
    Column("check", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

collections = Table(
    "collections",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)

# The sealed original bytes come last so that listing an image reads only its first database page.
images = Table(
    "images",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("collection_id", String(26), ForeignKey("collections.id"), nullable=False, index=True),
    Column("key_id", BigInteger, nullable=False, index=True),
    Column("format", String(16), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("name", LargeBinary, nullable=False),
    Column("metadata", LargeBinary, nullable=True),
    Column("data", LargeBinary, nullable=False),
)

# A fitted codec ("the key" of the ML methods): plain arrays in an npz, sealed. ``image_id`` is set when
# it was fitted on one image, NULL when fitted on a whole collection.
codec_models = Table(
    "codec_models",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("collection_id", String(26), ForeignKey("collections.id"), nullable=False, index=True),
    Column("image_id", String(26), ForeignKey("images.id"), nullable=True, index=True),
    Column("method", String(32), nullable=False),
    Column("params", Text, nullable=False),
    Column("key_id", BigInteger, nullable=False, index=True),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# An "encrypted image": the method's output for one image, sealed, with its quality metrics (sealed JSON;
# a plain column before revision 0003).
encoded_images = Table(
    "encoded_images",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("image_id", String(26), ForeignKey("images.id"), nullable=False, index=True),
    Column("model_id", String(26), ForeignKey("codec_models.id"), nullable=False, index=True),
    Column("method", String(32), nullable=False),
    Column("params", Text, nullable=False),
    Column("key_id", BigInteger, nullable=False, index=True),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("metrics", LargeBinary, nullable=False),
)

# The web service's API tokens (see :mod:`imgvault.store.tokens`): only the SHA-256 of each token is kept,
# so that the database does not hold what would let its reader in. A revoked token keeps its row, for ``token ls``.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("read_only", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    # A MAC of the row's columns under the store's key (an empty sealed payload, see bindings): a row without
    # a seal that opens grants nothing.
    Column("key_id", BigInteger, nullable=True),
    Column("seal", LargeBinary, nullable=True),
)

# Every table with sealed columns, with those columns: what key rotation re-seals. The seal kind of a
# column is "<kind>.<column>"; what each record's blobs are bound to is in ``bindings``.
SEALED = {
    "image": (images, ("name", "metadata", "data")),
    "model": (codec_models, ("data",)),
    "encoded": (encoded_images, ("data", "metrics")),
    "token": (api_tokens, ("seal",)),
}


def record_id(table: Table):
    """The column that names a record of ``table`` in its seals: ``id``, or an API token's ``name``."""
    return table.c.id if "id" in table.c else table.c.name


# What each sealed blob is bound to is in ``bindings``; these are the SELECTs that read them with their blobs.


def image_columns() -> Select:
    """The images' bound columns, with the collection's name as ``collection``, joined."""
    i, c = images, collections
    return select(
        i.c.id, i.c.collection_id, c.c.name.label("collection"), i.c.format, i.c.width, i.c.height, i.c.mode,
        i.c.bytes,
    ).join(c, c.c.id == i.c.collection_id)  # fmt: skip


def sealed_rows(kind: str) -> Select:
    """Every record of ``kind`` with its sealed columns and the columns they are bound to."""
    table, columns = SEALED[kind]
    sealed = [table.c[column] for column in columns]
    if kind == "image":
        return image_columns().add_columns(*sealed)
    if kind == "model":
        t = table.c
        return select(t.id, t.collection_id, t.image_id, t.method, t.params, *sealed)
    if kind == "token":
        t = table.c
        return select(t.name.label("id"), t.name, t.token_sha256, t.read_only, t.created_at, t.revoked_at, *sealed)
    t = table.c
    return select(t.id, t.image_id, t.model_id, t.method, t.params, *sealed)
