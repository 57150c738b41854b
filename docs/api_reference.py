"""The API reference's two helpers for mkdocs (not a page): where griffe finds ``imgvault``, and its lazy names.

imgvault installs as ``imgvault.store``, ``imgvault.methods``, ... from the top-level folders ``store/``,
``methods/``, ... (``[tool.setuptools.package-dir]``), so no folder is named ``imgvault`` for griffe, which reads
the source without importing it. :func:`on_config` (a mkdocs hook) makes one for the build: a temporary folder
whose ``imgvault/`` holds a link to each package's folder. The packages export their public names lazily
(``_EXPORTS``, name -> module, read by ``lazy_exports``); :class:`LazyExports` (a griffe extension) makes them
the package's members, as aliases of where they are defined, so that ``::: imgvault.store`` documents them.
The docstrings are numpydoc with a little reStructuredText, which mkdocstrings renders as Markdown:
:class:`RestructuredText` (another griffe extension) fences their tables and doctests and makes their
cross-reference roles code.
"""

import ast
import atexit
import re
import shutil
import tempfile
from pathlib import Path

import griffe
from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("basics", "store", "methods", "tracker", "cli", "web")


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
            where = module if module.startswith("imgvault.") else f"{mod.path}.{module}"
            mod.set_member(name, griffe.Alias(name, f"{where}.{name}", parent=mod))
        mod.exports = list(exports)


def _lazy_exports(tree: ast.AST) -> dict[str, str]:
    for statement in getattr(tree, "body", []):
        if isinstance(statement, ast.Assign) and [getattr(t, "id", None) for t in statement.targets] == ["_EXPORTS"]:
            return ast.literal_eval(statement.value)
    return {}


class RestructuredText(griffe.Extension):
    """Each docstring's reStructuredText tables and doctests in code fences, its ``:func:`x``` roles as ``x``."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)


_TABLE_BORDER = re.compile(r"^( *)=+( +=+)+ *$")
_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|exc|obj|const):`~?([^`]+)`")


def markdown(text: str) -> str:
    """``text`` with its simple tables (three ``===`` borders) and doctests (``>>>`` lines up to a blank line)
    fenced; a numpydoc Examples section is left to griffe, which reads its doctests itself."""
    lines, out, i = text.split("\n"), [], 0
    examples = False
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):  # a numpydoc section's title
            examples = line.strip() == "Examples"
        border = _TABLE_BORDER.match(line)
        if border:
            end, borders = i, 0
            while end < len(lines) and borders < 3:
                borders += bool(_TABLE_BORDER.match(lines[end]))
                end += 1
            out += [f"{border.group(1)}```text", *lines[i:end], f"{border.group(1)}```"]
            i = end
        elif line.lstrip().startswith(">>>") and not examples:
            indent = line[: len(line) - len(line.lstrip())]
            end = i + 1
            while end < len(lines) and lines[end].strip():
                end += 1
            out += [f"{indent}```pycon", *lines[i:end], f"{indent}```"]
            i = end
        else:
            out.append(_ROLE.sub(r"`\1`", line))
            i += 1
    return "\n".join(out)
