"""Turning paths into checked images, streamed: files are found lazily and decoded in worker processes.

Memory stays flat however many files there are: directories are walked as a generator and at most a
fixed window of files is in flight. Workers send back the bytes they validated for files up to
``INLINE_BYTES``; for larger ones only the facts and a SHA-256 digest, and the writer reads the file
again and checks the digest, so what is stored is always exactly what was validated.
"""

import hashlib
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

from imgvault.basics.errors import InvalidImage

from .validate import ImageFacts, read_image_file, read_regular_file
from .workers import ordered_map

CHUNK = 32
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
    # The SHA-256 of the validated bytes, when they were not sent back (``data`` is None).
    sha256: str | None = None

    def bytes_to_store(self) -> tuple[bytes | None, str | None]:
        """The bytes that were validated, read again if the worker did not send them; or why not.

        A file read again must still be what was validated (same digest), and still a regular file.
        """
        if self.error:
            return None, self.error
        if self.data is not None:
            return self.data, None
        try:
            data = read_regular_file(self.path)
        except InvalidImage as exc:
            return None, str(exc)
        if hashlib.sha256(data).hexdigest() != self.sha256:
            return None, f"{self.path}: file changed while it was being stored"
        return data, None


def iter_files(paths: Iterable[str | os.PathLike]) -> Iterator[Path | Checked]:
    """Every file named, and every file below every directory named, in a stable order.

    Hidden files and folders (names starting with ".") inside directories are skipped; a path that
    does not exist is passed through so that its check reports it. A folder that cannot be listed is
    yielded as a :class:`Checked` carrying the error, in its place, so that it is reported like a bad file.
    """
    for raw in paths:
        # Not Path(raw) for a Path, which parses it again: a put of many files named one by one pays it per file.
        path = raw if isinstance(raw, Path) else Path(raw)
        if not _is_dir(path):
            yield path
            continue
        unreadable: list[OSError] = []
        for folder, subfolders, files in os.walk(path, onerror=unreadable.append):
            # os.walk calls onerror when it fails to list a folder, just before it moves on.
            yield from _unreadable_folders(unreadable)
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(files):
                if not name.startswith("."):
                    yield Path(folder, name)
        yield from _unreadable_folders(unreadable)


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    # Missing, unreadable, or a name with a NUL byte: not a folder, and the file's own check says why. (Where
    # Path.is_dir raises a permission error, which would end the whole put.)
    except (OSError, ValueError):
        return False


def _unreadable_folders(errors: list[OSError]) -> Iterator[Checked]:
    while errors:
        error = errors.pop(0)
        folder = Path(error.filename)
        yield Checked(folder, error=f"{folder}: cannot read folder ({error.strerror or error})")


def stored_name(path: Path) -> str:
    """The name an image put from ``path`` is stored under: the file name, always valid UTF-8.

    Bytes of a name that are not UTF-8 (which ``os.fsdecode`` keeps as surrogates) become ``\\xNN``.
    """
    return os.fsencode(path.name).decode("utf-8", "backslashreplace")


def _check(path: str | Path | Checked) -> tuple:
    """``(facts, error, data, sha256)`` for one path: what :class:`Checked` holds besides the path."""
    if isinstance(path, Checked):
        return path.facts, path.error, path.data, path.sha256
    try:
        data, facts = read_image_file(path)  # a str from a worker's chunk is already a Path's text
    except InvalidImage as exc:
        return None, str(exc), None, None
    if len(data) <= INLINE_BYTES:
        return facts, None, data, None
    return facts, None, None, hashlib.sha256(data).hexdigest()


def _check_chunk(paths: list[str | Checked]) -> list[tuple]:
    # Plain tuples and strings, without the paths the parent already has: pickling is the pool's main
    # cost on both sides (a dataclass pickles several times slower than the tuple of its fields).
    checked = []
    for facts, error, data, sha256 in map(_check, paths):
        facts = facts and (facts.format, facts.width, facts.height, facts.mode, facts.bytes)
        checked.append((facts, error, data, sha256))
    return checked


def check_files(paths: Iterable[Path | Checked], jobs: int | None = None) -> Iterator[Checked]:
    """Validate ``paths`` in order, in ``jobs`` worker processes (default: one per core).

    Items that are already a :class:`Checked` (a folder that could not be read) pass through in place.
    """
    jobs = jobs or os.cpu_count() or 1
    paths = iter(paths)
    head = list(islice(paths, POOL_THRESHOLD))
    if jobs == 1 or len(head) < POOL_THRESHOLD:
        for path in chain(head, paths):
            yield path if isinstance(path, Checked) else Checked(path, *_check(path))
        return
    # The chunks are kept to pair each answer with its path: the workers do not send paths back.
    kept: deque = deque()
    for answers in ordered_map(_check_chunk, _sent(_chunked(chain(head, paths), CHUNK), kept), jobs):
        yield from _unpack(kept.popleft(), answers)


def _sent(chunks: Iterator[list], kept: deque) -> Iterator[list]:
    """Each chunk as it is sent to a worker (paths as strings, which pickle fastest), keeping the original."""
    for chunk in chunks:
        kept.append(chunk)
        yield [path if isinstance(path, Checked) else os.fspath(path) for path in chunk]


def _unpack(chunk: list[Path | Checked], answers: list[tuple]) -> Iterator[Checked]:
    for path, (facts, error, data, sha256) in zip(chunk, answers, strict=True):
        if isinstance(path, Checked):
            yield path
        else:
            yield Checked(path, facts and ImageFacts(*facts), error, data, sha256)


def _chunked(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk
