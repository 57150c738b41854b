"""Turning paths into checked images, streamed: files are found lazily and decoded in worker processes.

Memory stays flat however many files there are: directories are walked as a generator and at most a
fixed window of files is in flight. Workers send back the bytes they validated for files up to
``INLINE_BYTES``; for larger ones only the facts and digest, and the writer reads the file again and
checks the digest, so what is stored is always exactly what was validated.
"""

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

from .errors import InvalidImage
from .validate import ImageFacts, read_image_file

CHUNK = 16
INLINE_BYTES = 256 * 1024
# Below this many files a pool costs more to start than it saves.
POOL_THRESHOLD = 48


@dataclass(frozen=True)
class Checked:
    """One input path after validation: its facts, or the reason it was refused."""

    path: Path
    facts: ImageFacts | None = None
    error: str | None = None
    data: bytes | None = None


def iter_files(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Every file named, and every file below every directory named, in a stable order.

    Hidden files and folders (names starting with ".") inside directories are skipped; a path that
    does not exist is passed through so that its check reports it.
    """
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    yield Path(folder, name)


def _check(path: Path) -> Checked:
    try:
        data, facts = read_image_file(path)
    except InvalidImage as exc:
        return Checked(path, error=str(exc))
    return Checked(path, facts=facts, data=data if len(data) <= INLINE_BYTES else None)


def _check_chunk(paths: list[Path]) -> list[tuple]:
    # Plain tuples, without the paths the parent already has: pickling is the pool's main cost.
    return [(c.facts, c.error, c.data) for c in map(_check, paths)]


def check_files(paths: Iterable[Path], jobs: int | None = None) -> Iterator[Checked]:
    """Validate ``paths`` in order, in ``jobs`` worker processes (default: one per core)."""
    jobs = jobs or os.cpu_count() or 1
    paths = iter(paths)
    head = list(islice(paths, POOL_THRESHOLD))
    if jobs == 1 or len(head) < POOL_THRESHOLD:
        for path in head:
            yield _check(path)
        for path in paths:
            yield _check(path)
        return
    chunks = _chunked(chain(head, paths), CHUNK)
    # fork starts workers in milliseconds; they only run Pillow, never the parent's database handles.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method)) as pool:
        window: deque = deque()
        try:
            for chunk in chunks:
                window.append((chunk, pool.submit(_check_chunk, chunk)))
                if len(window) >= 4 * jobs:
                    yield from _unpack(*window.popleft())
            while window:
                yield from _unpack(*window.popleft())
        finally:
            for _, future in window:
                future.cancel()


def _unpack(chunk: list[Path], future) -> Iterator[Checked]:
    for path, (facts, error, data) in zip(chunk, future.result(), strict=True):
        yield Checked(path, facts, error, data)


def _chunked(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk
