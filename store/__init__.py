"""imgvault.store: an encrypted image store (SQLite by default, any SQLAlchemy database).

>>> from imgvault.store import Store
>>> with Store.open("imgvault-data") as store:                 # doctest: +SKIP
...     image = store.put("scan.png", collection="scans")
...     assert store.get(image.id) == open("scan.png", "rb").read()
"""

from .config import Settings
from .errors import (
    CollectionNotFound,
    ConfigError,
    ImageNotFound,
    ImgVaultError,
    IntegrityError,
    InvalidImage,
    NotFound,
)
from .store import (
    DEFAULT_COLLECTION,
    CollectionInfo,
    ImageInfo,
    PutResult,
    RotationReport,
    Store,
    check_collection_name,
)

__all__ = [
    "DEFAULT_COLLECTION",
    "CollectionInfo",
    "CollectionNotFound",
    "ConfigError",
    "ImageInfo",
    "ImageNotFound",
    "ImgVaultError",
    "IntegrityError",
    "InvalidImage",
    "NotFound",
    "PutResult",
    "RotationReport",
    "Settings",
    "Store",
    "check_collection_name",
]
