"""Printing for people (aligned tables, progress bars) and for programs (streamed JSON lists)."""

import json
import os
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import click

# Lines are written to the terminal or pipe this many at a time: one write per line is most of the time
# of a long listing, and a fixed number keeps memory flat.
LINES_PER_WRITE = 1000


class _Lines:
    """Lines to stdout, written in blocks of :data:`LINES_PER_WRITE`."""

    def __init__(self):
        self.pending: list[str] = []

    def add(self, text: str) -> None:
        self.pending.append(text)
        if len(self.pending) >= LINES_PER_WRITE:
            self.flush()

    def flush(self, end: str = "") -> None:
        if self.pending or end:
            click.echo("".join(self.pending) + end, nl=False)
            self.pending.clear()


class JsonList:
    """Streams a JSON list to stdout item by item, so that memory does not grow with its length."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.count = 0
        self._out = _Lines()

    def __enter__(self) -> "JsonList":
        if self.enabled:
            self._out.add("[")
        return self

    def append(self, item: dict | str) -> None:
        """Add ``item``: a dict, or the JSON text of one."""
        self._out.add(("," if self.count else "") + "\n  " + (item if isinstance(item, str) else json.dumps(item)))
        self.count += 1

    def __exit__(self, exc_type, *_) -> None:
        # On an error the list is left open on purpose: a truncated list must not parse as complete.
        if self.enabled and exc_type is None:
            self._out.flush("\n]\n" if self.count else "]\n")
        else:
            self._out.flush()


def plain_table(columns: list[tuple[str, int]], rows: Iterable[tuple]) -> None:
    """Print ``rows`` under ``columns`` (name, width; the last column is not padded), streaming."""

    def line(cells) -> str:
        padded = [printable(str(cell)).ljust(width) for cell, (_, width) in zip(cells, columns, strict=True)]
        return "  ".join(padded).rstrip() + "\n"

    out = _Lines()
    out.add(line(name for name, _ in columns))
    try:
        for row in rows:
            out.add(line(row))
    finally:
        out.flush()  # what was listed before an error is shown


class _Bar:
    """A progress bar handle: ``start(total)`` once the amount of work is known, ``advance()`` per item, and
    ``echo(text)`` for a line printed while the bar is shown."""

    def __init__(self, progress=None, task=None, stdout_on_terminal: bool = False):
        self.progress, self.task = progress, task
        self._stdout_on_terminal = stdout_on_terminal

    def start(self, total: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, total=total)

    def advance(self, count: int = 1) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, count)

    def echo(self, text: str, err: bool = False) -> None:
        """Print a line (to stderr if ``err``) above the bar, never glued onto it.

        A line for the terminal that shows the bar goes through the bar's console, which takes the bar
        away, prints the line and draws the bar again below it; stdout to a pipe or a file is untouched.
        """
        if self.progress is not None and (err or self._stdout_on_terminal):
            self.progress.console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            click.echo(text, err=err)


def _same_terminal(one, other) -> bool:
    try:
        return one.isatty() and os.path.samestat(os.fstat(one.fileno()), os.fstat(other.fileno()))
    except (AttributeError, OSError, ValueError):  # a stream without a file (a test's capture)
        return False


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[_Bar]:
    """A progress bar on stderr when ``enabled`` (stderr is a terminal), else a handle that does nothing.

    The bar is gone when the block ends (a line printed after it starts on a line of its own); lines
    printed inside the block go through :meth:`_Bar.echo`.
    """
    if not enabled:
        yield _Bar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, redirect_stdout=False,
                  redirect_stderr=False) as progress:  # fmt: skip
        yield _Bar(progress, progress.add_task(label, total=None), _same_terminal(sys.stdout, sys.stderr))


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
