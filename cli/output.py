"""Printing for people (aligned tables, progress bars) and for programs (streamed JSON lists)."""

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

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
        padded = [str(cell).ljust(width) for cell, (_, width) in zip(cells, columns, strict=True)]
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


def write_output(output: str, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to stdout (``-``) or to a file, atomically; without ``overwrite``, never replace one."""
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(output)
    if not overwrite and os.path.lexists(path):
        raise click.ClickException(f"{output} already exists (use -o to choose where to write)")
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    click.echo(f"Wrote {output} ({len(data):,} bytes)", err=True)
