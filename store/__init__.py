"""imgvault.store: an encrypted image store (SQLite by default, any SQLAlchemy database).

>>> from imgvault.store import Store
>>> with Store.open("imgvault-data") as store:                 # doctest: +SKIP
...     image = store.put("scan.png", collection="scans")
...     assert store.get(image.id) == open("scan.png", "rb").read()

Names are imported on first use, so that light modules (``imgvault.basics.errors``) load without
SQLAlchemy, cryptography or Pillow, and the command line starts fast.
"""

from imgvault.basics.lazy import lazy_exports

_EXPORTS = {
    "Settings": "config",
    "CollectionNotFound": "imgvault.basics.errors",
    "ConfigError": "imgvault.basics.errors",
    "ImageNotFound": "imgvault.basics.errors",
    "EncodedNotFound": "imgvault.basics.errors",
    "InvalidParameter": "imgvault.basics.errors",
    "PluginError": "imgvault.basics.errors",
    "EncodedInfo": "records",
    "ImgVaultError": "imgvault.basics.errors",
    "IntegrityError": "imgvault.basics.errors",
    "InvalidImage": "imgvault.basics.errors",
    "NotFound": "imgvault.basics.errors",
    "check_collection_name": "names",
    "DEFAULT_COLLECTION": "store",
    "CollectionInfo": "records",
    "ImageInfo": "records",
    "PutResult": "records",
    "RotationReport": "records",
    "Removal": "records",
    "RotationInProgress": "imgvault.basics.errors",
    "Store": "store",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
