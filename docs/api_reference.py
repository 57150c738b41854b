"""The API reference's two helpers for mkdocs (not a page): where griffe finds ``imgvault``, and its lazy names.

imgvault installs as ``imgvault.store``, ``imgvault.methods``, ... from the top-level folders ``store/``,
``methods/``, ... (``[tool.setuptools.package-dir]``), so no folder is named ``imgvault`` for griffe, which reads
the source without importing it. :func:`on_config` (a mkdocs hook) makes one for the build: a temporary folder
whose ``imgvault/`` holds a link to each package's folder. The packages export their public names lazily
(``_EXPORTS``, name -> module, read by ``lazy_exports``); :class:`LazyExports` (a griffe extension) makes them
the package's members, as aliases of where they are defined, so that ``::: imgvault.store`` documents them.
"""

import ast
import atexit
import shutil
import tempfile
from pathlib import Path

import griffe
from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("store", "methods", "tracker", "cli", "web")


@event_priority(100)  # before mkdocstrings' own on_config, which makes the handler
def on_config(config):
    """Point mkdocstrings' python handler at a folder in which ``imgvault/`` is the packages' namespace."""
    folder = Path(tempfile.mkdtemp(prefix="imgvault-docs-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / "imgvault").mkdir()
    for package in PACKAGES:
        (folder / "imgvault" / package).symlink_to(ROOT / package, target_is_directory=True)
    python = config["plugins"]["mkdocstrings"].config["handlers"]["python"]
    python["paths"] = [str(folder)]
    return config


class LazyExports(griffe.Extension):
    """A package's ``_EXPORTS`` (public name -> module of the package) as its members and its ``__all__``."""

    def on_module_members(self, *, node, mod, agent, **kwargs):
        exports = _lazy_exports(node)
        if not exports:
            return
        for name, module in exports.items():
            mod.set_member(name, griffe.Alias(name, f"{mod.path}.{module}.{name}", parent=mod))
        mod.exports = list(exports)


def _lazy_exports(tree: ast.AST) -> dict[str, str]:
    for statement in getattr(tree, "body", []):
        if isinstance(statement, ast.Assign) and [getattr(t, "id", None) for t in statement.targets] == ["_EXPORTS"]:
            return ast.literal_eval(statement.value)
    return {}
