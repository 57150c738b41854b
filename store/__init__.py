"""imgvault.store: an encrypted image store (SQLite by default, any SQLAlchemy database).

>>> from imgvault.store import Store
>>> with Store.open("imgvault-data") as store:                 # doctest: +SKIP
...     image = store.put("scan.png", collection="scans")
...     assert store.get(image.id) == open("scan.png", "rb").read()

Names are imported on first use, so that light modules (``imgvault.store.errors``) load without
SQLAlchemy, cryptography or Pillow, and the command line starts fast.
"""

from .lazy import lazy_exports

_EXPORTS = {
    "Settings": "config",
    "CollectionNotFound": "errors",
    "ConfigError": "errors",
    "ImageNotFound": "errors",
    "EncodedNotFound": "errors",
    "InvalidParameter": "errors",
    "PluginError": "errors",
    "EncodedInfo": "records",
    "ImgVaultError": "errors",
    "IntegrityError": "errors",
    "InvalidImage": "errors",
    "NotFound": "errors",
    "check_collection_name": "names",
    "DEFAULT_COLLECTION": "store",
    "CollectionInfo": "records",
    "ImageInfo": "records",
    "PutResult": "records",
    "RotationReport": "records",
    "RotationInProgress": "errors",
    "Store": "store",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
