"""Printing for people (aligned tables, progress bars) and for programs (streamed JSON lists)."""

import json
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import click


class JsonList:
    """Streams a JSON list to stdout item by item, so that memory does not grow with its length."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.count = 0

    def __enter__(self) -> "JsonList":
        if self.enabled:
            click.echo("[", nl=False)
        return self

    def append(self, item: dict) -> None:
        click.echo(("," if self.count else "") + "\n  " + json.dumps(item), nl=False)
        self.count += 1

    def __exit__(self, exc_type, *_) -> None:
        # On an error the list is left open on purpose: a truncated list must not parse as complete.
        if self.enabled and exc_type is None:
            click.echo("\n]" if self.count else "]")


def plain_table(columns: list[tuple[str, int]], rows: Iterable[tuple]) -> None:
    """Print ``rows`` under ``columns`` (name, width; the last column is not padded), streaming."""

    def line(cells) -> str:
        padded = [printable(str(cell)).ljust(width) for cell, (_, width) in zip(cells, columns, strict=True)]
        return "  ".join(padded).rstrip()

    click.echo(line(name for name, _ in columns))
    for row in rows:
        click.echo(line(row))


class _Bar:
    """A progress bar handle: ``start(total)`` once the amount of work is known, ``advance()`` per item."""

    def __init__(self, progress=None, task=None):
        self.progress, self.task = progress, task

    def start(self, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, total=total)

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[_Bar]:
    """A progress bar on stderr when ``enabled`` (stderr is a terminal), else a handle that does nothing."""
    if not enabled:
        yield _Bar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield _Bar(progress, progress.add_task(label, total=None))


# Characters that reorder or hide what follows them on a terminal (bidirectional overrides and isolates).
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters escaped (``\\n``, ``\\x1b``), and the
    undecodable bytes of a file name (``os.fsdecode``'s surrogates) shown as ``\\xNN``.

    JSON output does not need it: ``json.dumps`` escapes them and keeps the exact value.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(repr(ch)[1:-1] if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)
