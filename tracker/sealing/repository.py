"""A sealing MLflow artifact repository: every artifact is AES-256-GCM ciphertext where it is stored.

MLflow picks an artifact repository by the scheme of an artifact URI. imgvault registers (through the
``mlflow.artifact_repository`` entry points in ``pyproject.toml``) the schemes ``imgvault+file``,
``imgvault+s3``, ``imgvault+gs`` and the others in :data:`INNER_SCHEMES`. Each wraps MLflow's own
repository for the inner location (``imgvault+s3://bucket/prefix`` wraps ``s3://bucket/prefix``):

- writing seals the bytes with the store's keyset before the inner repository sees them;
- reading opens them, in memory; a tampered, truncated or moved artifact, or a wrong key, raises
  :class:`~imgvault.store.IntegrityError`, never returns garbage;
- listing reports the plaintext sizes.

``imgvault+home:///mlartifacts/...`` is a location inside the home in use (:func:`home`): the embedded
default's runs are recorded there, so a home can be moved.

The associated data of an artifact binds the store id and its place
(:func:`~imgvault.tracker.sealing.files.artifact_place`): for an artifact of a run, the run id and the path
inside the run, so an artifact copied to another path, run or store fails to open, while a home or bucket
moved as a whole still opens.

Where the key comes from: in a process that has opened a store (``imgvault run``, the demo), that store's
keyset (:func:`use_store`); elsewhere, such as in ``mlflow server``, the store named by the environment
(``IMGVAULT_HOME``, ``IMGVAULT_DB_URL``, ``IMGVAULT_KEY_FILE`` or ``IMGVAULT_PASSPHRASE``), opened once
and reloaded when it meets a key it does not hold (after a rotation).
"""

import os
import posixpath
import tempfile
import threading
import time
import urllib.parse
import weakref
from pathlib import Path

from mlflow.entities import FileInfo
from mlflow.store.artifact.artifact_repo import ArtifactRepository, StreamUploadMixin
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

from imgvault.basics.errors import IntegrityError
from imgvault.store.crypto import blob_key_id
from imgvault.tracker.sealing.files import (  # noqa: F401 (re-exported)
    HOME,
    KIND,
    OVERHEAD,
    PREFIX,
    artifact_place,
    legacy_places,
    local_place,
    sealed_uri,
    write_file_atomically,
)

# The inner schemes that the entry points in pyproject.toml register as imgvault+<scheme>.
INNER_SCHEMES = ("file", HOME, "s3", "gs", "wasbs", "abfss", "r2", "b2", "hdfs", "viewfs", "ftp", "sftp")
RELOAD_SECONDS = 60.0  # a server re-reads the keyset this often, so that it seals with the current key

_lock = threading.Lock()
_stores: list[weakref.ref] = []  # stores opened in this process whose keysets seal and open artifacts
_env_store = None  # the store named by the environment, for processes that did not open one
_env_settings = None
_env_loaded_at = 0.0


def use_store(store) -> None:
    """Seal artifacts in this process with ``store``'s keyset (it follows the store's rotations); artifacts
    are opened with whichever used store holds the key that sealed them."""
    with _lock:
        _stores[:] = [ref for ref in _stores if ref() is not None and ref() is not store]
        _stores.append(weakref.ref(store))


def _used_sealers() -> list:
    return [store.sealer for store in (ref() for ref in reversed(_stores)) if store is not None]


def _env_sealer(*, reload: bool = False):
    global _env_store, _env_settings, _env_loaded_at
    from imgvault.store.config import Settings

    settings = Settings.resolve()
    with _lock:
        stale = time.monotonic() - _env_loaded_at > RELOAD_SECONDS
        if _env_store is None or reload or stale or settings != _env_settings:
            from imgvault.store.store import Store

            store = Store.open(settings=settings)
            if _env_store is not None:
                _env_store.close()
            _env_store, _env_settings, _env_loaded_at = store, settings, time.monotonic()
        return _env_store.sealer


def home(tracking_uri: str | None = None) -> Path:
    """The home that ``imgvault+home:`` locations resolve against: the folder of the SQLite tracking database
    that records them (the home's ``mlflow.db``), else the store used last in this process, else the
    environment's (``IMGVAULT_HOME``)."""
    from imgvault.store.config import sqlite_file

    database = sqlite_file(tracking_uri or "")
    if database is not None:
        return database.absolute().parent
    with _lock:
        used = [store for store in (ref() for ref in reversed(_stores)) if store is not None]
    if used:
        return used[0].settings.home
    from imgvault.store.config import Settings

    return Settings.resolve().home


def _sealer():
    """The sealer new artifacts are sealed with: the store used last in this process, else the environment's."""
    used = _used_sealers()
    return used[0] if used else _env_sealer()


def is_sealed_uri(uri: str | None) -> bool:
    return bool(uri) and uri.startswith(PREFIX)


def seal(place: str, data: bytes) -> bytes:
    return _sealer().seal(KIND, place, data)


def open_sealed(place: str, blob: bytes, legacy: tuple[str, ...] = ()) -> bytes:
    """The plaintext of the artifact at ``place``, opened with the keyset that holds its key (the environment's
    store is reloaded once if none does: a rotation may have made a new key). An artifact that an earlier
    version bound to one of its ``legacy`` places (its location) opens too, until ``imgvault db upgrade``."""
    try:
        key_id = blob_key_id(blob)
    except IntegrityError:
        raise IntegrityError(f"artifact {place} is not sealed: imgvault did not write it, or it was replaced") from None
    holders = [sealer for sealer in _used_sealers() if key_id in sealer.keyset.keys]
    if holders:
        sealer = holders[0]
    else:
        sealer = _env_sealer()
        if key_id not in sealer.keyset.keys:
            sealer = _env_sealer(reload=True)
    for bound in (place, *legacy):
        try:
            return sealer.open(KIND, bound, blob)
        except IntegrityError:
            pass
    raise IntegrityError(
        f"artifact {place} failed its integrity check: wrong key, or the file was altered, truncated or moved"
    ) from None


class SealedArtifactRepository(ArtifactRepository, StreamUploadMixin):
    """MLflow artifact repository for ``imgvault+<inner URI>``: ciphertext at the inner location."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
        if not artifact_uri.startswith(PREFIX):
            raise ValueError(f"not an imgvault sealed artifact URI: {artifact_uri}")
        # Imported here: MLflow loads this module while its registry module is still being initialised.
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        super().__init__(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        self.inner_uri = artifact_uri[len(PREFIX) :]
        parsed = urllib.parse.urlparse(self.inner_uri)
        self._scheme, self._netloc, self._path = parsed.scheme or "file", parsed.netloc, parsed.path or "/"
        inner_uri = self.inner_uri
        if self._scheme == HOME:
            relative = posixpath.normpath(urllib.parse.unquote(self._path)).lstrip("/")
            if relative == ".." or relative.startswith("../") or parsed.netloc:
                raise ValueError(f"{artifact_uri} is not a location inside the home")
            inner_uri = Path(home(tracking_uri), relative).absolute().as_uri()
        self.inner = get_artifact_repository(inner_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        self._local = self.inner.artifact_dir if isinstance(self.inner, LocalArtifactRepository) else None

    # -- where an artifact is, and what it is bound to -------------------------------------------

    def _relative(self, artifact_path: str | None) -> str:
        path = posixpath.normpath((artifact_path or "").replace(os.sep, "/")).lstrip("/")
        if path == ".":
            return ""
        if path == ".." or path.startswith("../"):
            raise ValueError(f"artifact path {artifact_path!r} leaves the artifact root")
        return path

    def place(self, artifact_path: str) -> str:
        """What the artifact is bound to: its run and path inside the run, or else its location."""
        relative = urllib.parse.quote(self._relative(artifact_path))
        return artifact_place(self._scheme, self._netloc, posixpath.normpath(posixpath.join(self._path, relative)))

    def legacy_places(self, artifact_path: str) -> tuple[str, ...]:
        """The locations earlier versions bound the artifact to (see :func:`open_sealed`)."""
        relative = self._relative(artifact_path)
        places = []
        if self._scheme != HOME:  # no earlier version wrote imgvault+home: locations
            places.append(f"{self._scheme}://{self._netloc}{posixpath.normpath(posixpath.join(self._path, relative))}")
        if self._local is not None:
            places += legacy_places(local_place(Path(self._local, relative)))
        return tuple(dict.fromkeys(places))

    # -- bytes in, bytes out ----------------------------------------------------------------------

    def write_bytes(self, artifact_path: str, data: bytes) -> None:
        """Seal ``data`` and store it as ``artifact_path`` (relative to this repository's URI)."""
        path = self._relative(artifact_path)
        if not path:
            raise ValueError("an artifact needs a file name")
        self.write_raw(path, seal(self.place(path), bytes(data)))

    def write_raw(self, artifact_path: str, blob: bytes) -> None:
        """Store ``blob``, already sealed, as ``artifact_path``."""
        path = self._relative(artifact_path)
        if self._local is not None:
            write_file_atomically(Path(self._local, path), blob)
            return
        head, tail = posixpath.split(path)
        with tempfile.TemporaryDirectory() as folder:  # ciphertext only
            Path(folder, tail).write_bytes(blob)
            self.inner.log_artifact(os.path.join(folder, tail), head or None)

    def walk(self, path: str = ""):
        """The paths of every file under ``path``, recursively."""
        for info in self.inner.list_artifacts(self._relative(path) or None):
            if info.is_dir:
                yield from self.walk(info.path)
            else:
                yield info.path

    def read_raw(self, artifact_path: str) -> bytes:
        """The stored bytes of ``artifact_path``, sealed as they are."""
        path = self._relative(artifact_path)
        if self._local is not None:
            return Path(self._local, path).read_bytes()
        with tempfile.TemporaryDirectory() as folder:  # ciphertext only
            return Path(self.inner.download_artifacts(path, folder)).read_bytes()

    def read_bytes(self, artifact_path: str) -> bytes:
        """The plaintext of ``artifact_path``, opened in memory."""
        path = self._relative(artifact_path)
        return open_sealed(self.place(path), self.read_raw(path), self.legacy_places(path))

    # -- MLflow's ArtifactRepository ----------------------------------------------------------------

    def log_artifact(self, local_file, artifact_path=None):
        name = os.path.basename(local_file)
        self.write_bytes(posixpath.join(self._relative(artifact_path), name), Path(local_file).read_bytes())

    def log_artifacts(self, local_dir, artifact_path=None):
        base = self._relative(artifact_path)
        for root, _dirs, files in os.walk(local_dir):
            relative = os.path.relpath(root, local_dir)
            for name in files:
                target = posixpath.join(base, "" if relative == "." else relative.replace(os.sep, "/"), name)
                self.write_bytes(target, Path(root, name).read_bytes())

    def list_artifacts(self, path=None):
        infos = self.inner.list_artifacts(self._relative(path) or None)
        sizes = [None if info.is_dir or info.file_size is None else max(info.file_size - OVERHEAD, 0) for info in infos]
        return [FileInfo(info.path, info.is_dir, size) for info, size in zip(infos, sizes, strict=True)]

    def _download_file(self, remote_file_path, local_path):
        from mlflow.exceptions import MlflowException
        from mlflow.store.artifact.host_policy import is_tracking_server_process

        if is_tracking_server_process():
            # MLflow's own server handlers download into a temporary folder to send a file: plaintext on
            # disk. imgvault's app serves sealed artifacts from memory instead.
            raise MlflowException(
                f"{remote_file_path} is sealed: serve it with `mlflow server --app-name imgvault` (or `imgvault"
                " ui`), which opens it in memory, not through a plaintext temporary file"
            )
        write_file_atomically(Path(local_path), self.read_bytes(remote_file_path))

    def delete_artifacts(self, artifact_path=None):
        self.inner.delete_artifacts(self._relative(artifact_path) or None)

    def log_artifact_from_stream(self, stream, artifact_file_name, artifact_path=None):
        name = posixpath.basename(artifact_file_name)
        self.write_bytes(posixpath.join(self._relative(artifact_path), name), stream.read())

    async def log_artifact_from_async_stream(self, chunks, artifact_file_name, artifact_path=None):
        import asyncio

        parts = [chunk async for chunk in chunks]
        name = posixpath.basename(artifact_file_name)
        path = posixpath.join(self._relative(artifact_path), name)
        await asyncio.to_thread(self.write_bytes, path, b"".join(parts))  # sealing and storing block


def reseal_repository(sealer, uri: str):
    """Seal the plaintext artifacts under ``uri`` (``imgvault+<inner>``) in place, and re-seal those under a key
    other than ``sealer``'s primary: :func:`imgvault.tracker.sealing.files.seal_files` for any inner scheme."""
    from imgvault.tracker.sealing.files import SealReport, _read_back, reseal

    repo = SealedArtifactRepository(uri)
    report = SealReport()
    for path in repo.walk():
        place, shown = repo.place(path), f"{uri.rstrip('/')}/{path}"
        blob = reseal(sealer, place, repo.read_raw(path), report, repo.legacy_places(path), shown)
        if blob is not None:
            repo.write_raw(path, blob)
            _read_back(sealer, place, blob, repo.read_raw(path), report, shown)
    return report
