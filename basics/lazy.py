"""Package attributes imported on first use (PEP 562), so that importing a package stays cheap."""

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` exporting ``name -> module`` (a submodule of
    ``package``, or a module named in full: ``imgvault.basics.errors``)."""
    names = sorted(exports)

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = exports[name]
        module = importlib.import_module(where if where.startswith("imgvault.") else f"{package}.{where}")
        value = getattr(module, name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
