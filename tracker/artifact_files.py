"""Sealed artifacts as files: the home's artifact folder sealed in place, and re-sealed after a key rotation.

This module needs no MLflow (``imgvault key rotate`` and ``imgvault db upgrade`` stay light): a sealed
artifact is a sealed blob (:mod:`imgvault.store.crypto`) of kind ``artifact`` whose record id is the
file's full location, ``file:///abs/path`` for a local file, as
:class:`~imgvault.tracker.sealed_artifacts.SealedArtifactRepository` binds it.

Earlier versions of imgvault wrote the embedded default's artifacts in plaintext under
``$IMGVAULT_HOME/mlartifacts`` and recorded ``file://`` locations in ``mlflow.db``. :func:`seal_home`
seals those files where they are and points the experiments and runs at ``imgvault+file://``.
"""

import os
import posixpath
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from imgvault.store.crypto import HEADER, MAGIC, TAG_SIZE, blob_key_id
from imgvault.store.errors import IntegrityError

PREFIX = "imgvault+"  # imgvault+<inner URI>: a sealed artifact location
KIND = "artifact"  # the kind bound into every sealed artifact's associated data
OVERHEAD = HEADER.size + TAG_SIZE  # bytes that sealing adds to an artifact


def sealed_uri(inner: str) -> str:
    """``imgvault+<inner>``; a local path becomes ``imgvault+file:///abs/path``. (Here, not beside the
    repository, so that naming a location, as ``imgvault ui`` does, does not import MLflow.)"""
    if "://" not in inner and not inner.startswith("file:"):
        inner = Path(inner).absolute().as_uri()
    return PREFIX + inner


def local_place(path: str | os.PathLike) -> str:
    """The location a local artifact file is bound to: ``file:///abs/path``, normalised."""
    return "file://" + posixpath.normpath(Path(path).absolute().as_posix())


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
    """What :func:`seal_files` did: plaintext files sealed, files re-sealed under the primary key, and
    files that did not open (tampered, moved, or under a key the keyset no longer holds), left as they are."""

    sealed: int = 0
    resealed: int = 0
    damaged: list[str] | None = None
    locations: int = 0  # experiments and runs of mlflow.db pointed at imgvault+file://

    def __post_init__(self):
        self.damaged = self.damaged or []


def reseal(sealer, place: str, stored: bytes, report: SealReport) -> bytes | None:
    """What the artifact at ``place`` should hold instead of ``stored``: sealed if it is plaintext, re-sealed
    if another key than the primary sealed it; None when it is fine as it is, or does not open (counted in
    ``report``)."""
    if not looks_sealed(stored):
        report.sealed += 1
        return sealer.seal(KIND, place, stored)
    if blob_key_id(stored) == sealer.keyset.primary_id:
        return None
    try:
        plaintext = sealer.open(KIND, place, stored)
    except IntegrityError:
        report.damaged.append(place)
        return None
    report.resealed += 1
    return sealer.seal(KIND, place, plaintext)


def seal_files(sealer, root: Path, report: SealReport | None = None) -> SealReport:
    """Seal every plaintext file under ``root`` in place, and re-seal those under a key other than the primary."""
    report = report or SealReport()
    if not root.is_dir():
        return report
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".") and name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write that was killed half-way: ciphertext, incomplete
                continue
            if path.is_symlink() or not path.is_file():
                continue
            blob = reseal(sealer, local_place(path), path.read_bytes(), report)
            if blob is not None:
                write_file_atomically(path, blob, durable=True)
    return report


def relocate_tracking(mlflow_db: Path, root: Path) -> int:
    """Point the experiments and runs of ``mlflow_db`` whose artifacts are under ``root`` at ``imgvault+file://``.

    MLflow has no API to move an experiment's artifact location; its SQLite schema has kept these two
    columns (``experiments.artifact_location``, ``runs.artifact_uri``) since MLflow 1.
    """
    if not mlflow_db.is_file():
        return 0
    prefixes = {root.absolute().as_uri(), "file:" + root.absolute().as_posix()}
    moved = 0
    with closing(sqlite3.connect(mlflow_db)) as connection, connection:
        for table, column, key in (("experiments", "artifact_location", "experiment_id"), ("runs", "artifact_uri",
                                                                                           "run_uuid")):  # fmt: skip
            rows = connection.execute(f"SELECT {key}, {column} FROM {table}").fetchall()
            for row_key, location in rows:
                if location and any(location == p or location.startswith(p + "/") for p in prefixes):
                    connection.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                                       (PREFIX + location, row_key))  # fmt: skip
                    moved += 1
    return moved


def seal_home(sealer, home: Path, tracking_uri: str | None) -> SealReport:
    """Seal the home's artifact folder in place and, for a SQLite ``tracking_uri``, record the sealed locations
    of the experiments and runs whose artifacts are there. Safe to run again: sealed files are left alone,
    stale keys re-sealed."""
    root = Path(home) / "mlartifacts"
    report = seal_files(sealer, root)
    if tracking_uri and tracking_uri.startswith("sqlite:///"):
        report.locations = relocate_tracking(Path(tracking_uri[len("sqlite:///") :]), root)
    return report
