"""Writing a run's artifacts from memory, sealed where they are stored, with no plaintext temporary file.

MLflow's own ``log_image``, ``log_figure`` and ``log_table`` first save the artifact to a temporary file in
plaintext. imgvault writes the same artifacts, under the same names (so that the MLflow UI shows them as
its own: the image step slider, thumbnails, tables), from bytes in memory:

- to a sealed repository (``imgvault+...``): sealed here, then stored;
- to a tracking server's proxied artifacts (``mlflow-artifacts:``): sent by HTTP from memory; the server
  seals them if it runs ``--app-name imgvault`` with an ``imgvault+...`` destination
  (:func:`artifact_sealing` asks it);
- anywhere else (plaintext artifact stores, only when the user asked for it): MLflow's repository.
"""

import json
import math
import os
import posixpath
import re
import tempfile
import threading
import time
import uuid

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

from imgvault.tracker.sealing.image_files import ImageFiles
from imgvault.tracker.sealing.repository import SealedArtifactRepository, is_sealed_uri

SEALING_ENDPOINT = "/imgvault/api/v1/sealing"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # MLflow's tag that lists a run's tables for the UI


def artifact_sealing(client, experiment_id: str, tracking_uri: str) -> tuple[bool, str]:
    """Whether the experiment's artifacts are sealed where they are stored, and where that is."""
    location = client.get_experiment(experiment_id).artifact_location or ""
    if is_sealed_uri(location):
        return True, location
    if location.startswith("mlflow-artifacts:") and tracking_uri.startswith(("http://", "https://")):
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        try:
            response = http_request(get_default_host_creds(tracking_uri), SEALING_ENDPOINT, "GET", max_retries=0)
            answer = response.json() if response.status_code == 200 else {}
        except Exception:  # an MLflow server without imgvault's app: it cannot say, so it does not seal
            answer = {}
        if answer.get("sealed") is True:
            return True, f"{tracking_uri} (artifacts sealed by the server)"
        reason = "the server does not seal them (it needs --app-name imgvault and an imgvault+ destination)"
        return False, f"{tracking_uri} ({reason})"
    return False, location


class ArtifactWriter:
    """Writes artifacts of runs from bytes in memory (see the module's docstring)."""

    def __init__(self, client, tracking_uri: str):
        self.client = client
        self.tracking_uri = tracking_uri
        self._repos = {}
        self._tables: dict[str, list] = {}
        self._lock = threading.Lock()

    def _repo(self, run_id: str):
        with self._lock:
            if run_id not in self._repos:
                uri = self.client.get_run(run_id).info.artifact_uri
                self._repos[run_id] = get_artifact_repository(uri, tracking_uri=self.tracking_uri)
            return self._repos[run_id]

    def write(self, run_id: str, path: str, data: bytes) -> None:
        repo = self._repo(run_id)
        if isinstance(repo, SealedArtifactRepository):
            repo.write_bytes(path, data)
        elif isinstance(repo, HttpArtifactRepository):
            from mlflow.utils.mime_type_utils import _guess_mime_type
            from mlflow.utils.rest_utils import augmented_raise_for_status, http_request

            # As HttpArtifactRepository.log_artifact sends a file (its host credentials hold the run's
            # artifact URL), but from memory.
            headers = {"Content-Type": _guess_mime_type(path)}
            reply = http_request(repo._host_creds, posixpath.join("/", path), "PUT", data=data, extra_headers=headers)
            augmented_raise_for_status(reply)
        else:
            head, tail = posixpath.split(path)
            with tempfile.TemporaryDirectory() as folder:
                with open(os.path.join(folder, tail), "wb") as handle:
                    handle.write(data)
                repo.log_artifact(os.path.join(folder, tail), head or None)

    def image(self, run_id: str, files: ImageFiles, *, key: str, step: int) -> None:
        """A step of the image series ``key`` (its PNG and thumbnail, :func:`image_files`), named as
        ``MlflowClient.log_image`` names it."""
        if not re.fullmatch(r"[a-zA-Z0-9_\-./ ]+", key):
            raise ValueError(f"invalid image key {key!r}")
        stem = f"images/{key.replace('/', '~')}+step+{step}+timestamp+{int(time.time() * 1000)}+{uuid.uuid4()}"
        self.write(run_id, f"{stem}.png", files.png)
        self.write(run_id, f"{stem}+compressed.webp", files.thumbnail)

    def table(self, run_id: str, columns: dict[str, list], path: str) -> None:
        """A table as MLflow's ``log_table`` writes one (JSON, "split" orientation), listed for the UI."""
        names = list(columns)
        rows = [[_plain(value) for value in row] for row in zip(*(columns[name] for name in names), strict=True)]
        document = {"columns": names, "data": rows}
        self.write(run_id, path, json.dumps(document, allow_nan=False).encode())
        tables = self._tables.setdefault(run_id, [])
        tables.append({"path": path, "type": "table"})
        self.client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps(tables))


def _plain(value):
    """A JSON value: numpy scalars as Python numbers, and NaN or infinity as null (as pandas writes them)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
