"""Turning paths into checked images, streamed: files are found lazily and decoded in worker processes.

Memory stays flat however many files there are: directories are walked as a generator, at most a fixed
window of files is in flight, and workers send back only each file's facts and digest (the writer reads
the bytes again and checks the digest, so what is stored is exactly what was validated).
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
# Below this many files a pool costs more to start than it saves.
POOL_THRESHOLD = 48


@dataclass(frozen=True)
class Checked:
    """One input path after validation: its facts, or the reason it was refused."""

    path: Path
    facts: ImageFacts | None = None
    error: str | None = None


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
        _, facts = read_image_file(path)
    except InvalidImage as exc:
        return Checked(path, error=str(exc))
    return Checked(path, facts=facts)


def _check_chunk(paths: list[Path]) -> list[Checked]:
    return [_check(path) for path in paths]


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
                window.append(pool.submit(_check_chunk, chunk))
                if len(window) >= 4 * jobs:
                    yield from window.popleft().result()
            while window:
                yield from window.popleft().result()
        finally:
            for future in window:
                future.cancel()


def _chunked(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk
