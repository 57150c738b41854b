"""imgvault.store: an encrypted image store (SQLite by default, any SQLAlchemy database).

>>> from imgvault.store import Store
>>> with Store.open("imgvault-data") as store:                 # doctest: +SKIP
...     image = store.put("scan.png", collection="scans")
...     assert store.get(image.id) == open("scan.png", "rb").read()

Names are imported on first use, so that light modules (``imgvault.store.errors``) load without
SQLAlchemy, cryptography or Pillow, and the command line starts fast.
"""

import importlib

_EXPORTS = {
    "Settings": "config",
    "CollectionNotFound": "errors",
    "ConfigError": "errors",
    "ImageNotFound": "errors",
    "EncodedNotFound": "errors",
    "InvalidParameter": "errors",
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
    "Store": "store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
