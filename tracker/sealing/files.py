"""Sealed artifacts as files: the home's artifact folder sealed in place, and re-sealed after a key rotation.

This module needs no MLflow (``imgvault key rotate`` and ``imgvault db upgrade`` stay light): a sealed
artifact is a sealed blob (:mod:`imgvault.store.crypto`) of kind ``artifact`` whose record id is its
*place*, what identifies it wherever it is stored (:func:`artifact_place`):

- an artifact of a run: ``run:<run id>/<path inside the run's artifacts>`` (a logged model's, likewise with
  its ``m-...`` id), so that a home moved, copied, restored or reached through a symlink still opens, while an
  artifact copied to another run or another path of its run does not;
- any other file: its full location (``s3://bucket/key``, or ``home:/mlartifacts/...`` inside the home).

The store id is in every blob's associated data too (:class:`~imgvault.store.crypto.Sealer`).

The embedded default keeps its runs at ``imgvault+home:`` locations, relative to the home in use
(``$IMGVAULT_HOME``), not at the absolute path the home had when a run was made. Earlier versions of
imgvault wrote plaintext artifacts at ``file://`` locations, then sealed ones at absolute
``imgvault+file://`` locations bound to those locations. :func:`seal_home` seals the first in place,
re-binds the second to their run, and points the experiments and runs of ``mlflow.db`` at the home.
"""

import os
import posixpath
import re
import sqlite3
import urllib.parse
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from imgvault.basics.errors import IntegrityError
from imgvault.store.config import sqlite_file
from imgvault.store.crypto import HEADER, MAGIC, TAG_SIZE, blob_key_id

PREFIX = "imgvault+"  # imgvault+<inner URI>: a sealed artifact location
HOME = "home"  # imgvault+home:///mlartifacts/...: a location inside the home in use, wherever it is
ARTIFACTS = "mlartifacts"  # the home's folder of artifacts
KIND = "artifact"  # the kind bound into every sealed artifact's associated data
OVERHEAD = HEADER.size + TAG_SIZE  # bytes that sealing adds to an artifact

# <run id>/artifacts/<path> (a logged model: models/m-<id>/artifacts/<path>), as MLflow lays out every
# experiment's artifact location; the id is MLflow's uuid4 hex.
_RUN_ARTIFACT = re.compile(r"(?:^|/)((?:models/)?m-[0-9a-f]{32}|[0-9a-f]{32})/artifacts/([^/].*)$")
# A location of the embedded default as mlflow.db records it: .../mlartifacts/<experiment>[/<run>/artifacts]
_HOME_LOCATION = re.compile(r"^(?P<home>.*)/mlartifacts/(?P<rest>[^/]+(?:/[0-9a-f]{32}/artifacts)?)/?$")


def artifact_place(scheme: str, netloc: str, path: str) -> str:
    """What the artifact at ``scheme://netloc/path`` (``path`` as in the URI, percent-encoded) is bound to."""
    decoded = urllib.parse.unquote(path)
    found = _RUN_ARTIFACT.search(decoded)
    if found is not None:
        return f"run:{found[1]}/{found[2]}"
    return f"{HOME}:{decoded}" if scheme == HOME else f"{scheme}://{netloc}{path}"


def legacy_places(location: str) -> list[str]:
    """The places earlier versions bound an artifact at ``location`` (``file:///...``) to: the location as a
    URI (percent-encoded) and as a raw path."""
    parsed = urllib.parse.urlparse(location)
    raw = urllib.parse.unquote(parsed.path)
    encoded = urllib.parse.quote(raw)
    return list(dict.fromkeys(f"{parsed.scheme}://{parsed.netloc}{path}" for path in (parsed.path, encoded, raw)))


def home_uri(relative: str) -> str:
    """``imgvault+home:///<relative>``: a sealed location inside the home in use."""
    return f"{PREFIX}{HOME}:///{urllib.parse.quote(relative.strip('/'))}"


def sealed_uri(inner: str) -> str:
    """``imgvault+<inner>``; a local path becomes ``imgvault+file:///abs/path``. (Here, not beside the
    repository, so that naming a location, as ``imgvault ui`` does, does not import MLflow.)"""
    if "://" not in inner and not inner.startswith("file:"):
        inner = Path(inner).absolute().as_uri()
    return PREFIX + inner


def local_place(path: str | os.PathLike) -> str:
    """The location of a local artifact file: ``file:///abs/path``, normalised."""
    return "file://" + posixpath.normpath(Path(path).absolute().as_posix())


def home_place(home: Path, path: Path) -> str:
    """The place of the file ``path`` of the home's artifact folder, as its ``imgvault+home:`` repository sees it."""
    relative = Path(path).relative_to(home).as_posix()
    return artifact_place(HOME, "", "/" + urllib.parse.quote(relative))


def looks_sealed(data: bytes) -> bool:
    return len(data) >= OVERHEAD and data[:4] == MAGIC


def write_file_atomically(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = False) -> None:
    """Write ``path`` through a temporary file in the same folder, so that no reader sees half of it.

    ``durable``: fsync before the rename, for a file that replaces data which exists nowhere else (sealing
    in place). New artifacts skip it, as MLflow's own repository does: an fsync per figure cost a tracked
    batch 5 %.
    """
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


@dataclass
class SealReport:
    """What :func:`seal_files` did: plaintext files sealed, files re-sealed under the primary key, files bound to
    their location re-bound to their run, and files that did not open (tampered, moved to another run or
    path, or under a key the keyset no longer holds), left as they are."""

    sealed: int = 0
    resealed: int = 0
    rebound: int = 0
    damaged: list[str] | None = None
    locations: int = 0  # experiments and runs of mlflow.db pointed at imgvault+home:

    def __post_init__(self):
        self.damaged = self.damaged or []

    def add(self, other: "SealReport") -> None:
        self.sealed, self.resealed = self.sealed + other.sealed, self.resealed + other.resealed
        self.rebound, self.locations = self.rebound + other.rebound, self.locations + other.locations
        self.damaged += other.damaged

    @property
    def changed(self) -> int:
        return self.sealed + self.resealed + self.rebound


def reseal(sealer, place: str, stored: bytes, report: SealReport, legacy: tuple[str, ...] = (),
           name: str | None = None) -> bytes | None:  # fmt: skip
    """What the artifact at ``place`` should hold instead of ``stored``: sealed if it is plaintext, re-sealed if
    another key than the primary sealed it or it is bound to one of its ``legacy`` places; None when it is
    fine as it is, or does not open (counted in ``report`` under ``name``, by default its place)."""
    if not looks_sealed(stored):
        report.sealed += 1
        return sealer.seal(KIND, place, stored)
    for bound in (place, *legacy):
        try:
            plaintext = sealer.open(KIND, bound, stored)
        except IntegrityError:
            continue
        if bound != place:
            report.rebound += 1
        elif blob_key_id(stored) != sealer.keyset.primary_id:
            report.resealed += 1
        else:
            return None
        return sealer.seal(KIND, place, plaintext)
    report.damaged.append(name or place)
    return None


def _read_back(sealer, place: str, blob: bytes, stored: bytes, report: SealReport, name: str) -> None:
    """Check that what was written is what was meant: a rotation retires a key only after this."""
    try:
        if stored != blob:
            raise IntegrityError(place)
        sealer.open(KIND, place, stored)
    except IntegrityError:
        report.damaged.append(f"{name} (did not read back)")


def seal_files(sealer, root: Path, home: Path, report: SealReport | None = None,
               legacy: dict[str, list[str]] | None = None,
               advance: Callable[[], None] = lambda: None) -> SealReport:  # fmt: skip
    """Seal every plaintext file under ``root`` (the home's artifact folder) in place, and re-seal those under a
    key other than the primary or bound to their location. ``legacy``: the earlier locations of runs'
    artifact folders (``file:///...``) by run id, as mlflow.db recorded them; ``advance()`` after each file."""
    report = report or SealReport()
    if not root.is_dir():
        return report
    legacy = legacy or {}
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            advance()
            path = Path(folder, name)
            if name.startswith(".") and name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write that was killed half-way: ciphertext, incomplete
                continue
            if path.is_symlink() or not path.is_file():
                continue
            place = home_place(home, path)
            shown = path.relative_to(root).as_posix()
            blob = reseal(sealer, place, path.read_bytes(), report, _legacy_of(path, place, legacy), shown)
            if blob is not None:
                write_file_atomically(path, blob, durable=True)
                _read_back(sealer, place, blob, path.read_bytes(), report, shown)
    return report


def _legacy_of(path: Path, place: str, legacy: dict[str, list[str]]) -> tuple[str, ...]:
    places = legacy_places(local_place(path))
    if place.startswith("run:"):
        run_id, inside = place[len("run:") :].split("/", 1)
        for location in legacy.get(run_id, ()):
            places += [f"{earlier}/{inside}" for earlier in legacy_places(location)]
    return tuple(dict.fromkeys(places))


_LOCATIONS = (("experiments", "artifact_location", "experiment_id"), ("runs", "artifact_uri", "run_uuid"))


def _local_location(location: str | None) -> str | None:
    """The ``file://`` URI of a local location as mlflow.db records it (``file:``, ``imgvault+file:``), else None."""
    if not location:
        return None
    inner = location[len(PREFIX) :] if location.startswith(PREFIX) else location
    parsed = urllib.parse.urlparse(inner)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return "file://" + parsed.path


def earlier_locations(mlflow_db: Path) -> dict[str, list[str]]:
    """The local artifact locations of the runs of ``mlflow_db`` that are not relative to the home, by run id."""
    if not mlflow_db.is_file():
        return {}
    with closing(sqlite3.connect(mlflow_db)) as connection:
        rows = connection.execute("SELECT run_uuid, artifact_uri FROM runs").fetchall()
    found = {}
    for run_id, location in rows:
        local = _local_location(location)
        if local is not None:
            found[run_id] = [local]
    return found


def relocate_tracking(mlflow_db: Path, home: Path) -> int:
    """Point the experiments and runs of ``mlflow_db`` whose artifacts are in the home's artifact folder at
    ``imgvault+home:`` locations, which resolve against the home in use: those under the home's present path,
    and, when ``mlflow_db`` is the home's own, those recorded under the path the home had before it was moved,
    copied or restored.

    MLflow has no API to move an experiment's artifact location; its SQLite schema has kept these two
    columns (``experiments.artifact_location``, ``runs.artifact_uri``) since MLflow 1.
    """
    if not mlflow_db.is_file():
        return 0
    here = posixpath.normpath(Path(home).absolute().as_posix())
    own = mlflow_db.parent.resolve() == Path(home).resolve()
    moved = 0
    with closing(sqlite3.connect(mlflow_db)) as connection, connection:
        for table, column, key in _LOCATIONS:
            rows = connection.execute(f"SELECT {key}, {column} FROM {table}").fetchall()
            for row_key, location in rows:
                local = _local_location(location)
                found = local and _HOME_LOCATION.match(urllib.parse.unquote(local[len("file://") :]))
                if not found:
                    continue
                if not own and posixpath.normpath(found["home"] or "/") != here:
                    continue  # a tracking database elsewhere: only what is in this home is this home's
                connection.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                                   (home_uri(f"{ARTIFACTS}/{found['rest']}"), row_key))  # fmt: skip
                moved += 1
    return moved


def seal_home(sealer, home: Path, tracking_uri: str | None, *, started: Callable[[int], None] = lambda total: None,
              advance: Callable[[], None] = lambda: None) -> SealReport:  # fmt: skip
    """Seal the home's artifact folder in place (re-sealing stale keys, re-binding artifacts bound to their
    location) and, for a SQLite ``tracking_uri``, make the locations of the experiments and runs whose
    artifacts are there relative to the home. Safe to run again. Files are re-sealed before locations move,
    so that a run killed in between is completed by the next. ``started(total)`` once the files are counted,
    ``advance()`` after each, for a progress bar."""
    home = Path(home)
    started(sum(len(files) for _folder, _dirs, files in os.walk(home / ARTIFACTS)))
    mlflow_db = sqlite_file(tracking_uri or "")
    legacy = earlier_locations(mlflow_db) if mlflow_db is not None else {}
    report = seal_files(sealer, home / ARTIFACTS, home, legacy=legacy, advance=advance)
    if mlflow_db is not None:
        report.locations = relocate_tracking(mlflow_db, home)
    return report


class ArtifactsDamaged(IntegrityError):
    """Artifacts that do not open with the store's keys: named, and left as they are."""

    def __init__(self, damaged: list[str], doing: str):
        self.damaged = damaged
        shown = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3:,} more" if len(damaged) > 3 else "")
        super().__init__(f"{len(damaged):,} MLflow artifacts failed their integrity check ({shown}); {doing}")
