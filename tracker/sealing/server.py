"""``mlflow server --app-name imgvault``: MLflow's tracking server and UI, serving sealed artifacts from memory.

MLflow's own download handlers copy an artifact that is not a plain local file into a temporary folder
before sending it; for a sealed artifact that copy would be plaintext on disk. This app is MLflow's own
FastAPI app (with its security middleware) with four routes placed in front of MLflow's:

- ``GET /get-artifact`` and ``GET /ajax-api/2.0/mlflow/get-artifact`` (what the UI uses for a run's files,
  figures and thumbnails), and
- ``GET /api/2.0/mlflow-artifacts/artifacts/<path>`` and its ``/ajax-api/`` twin (proxied artifacts);

when the artifact is in a sealed repository they open it in memory and send the plaintext; otherwise they
hand the request to MLflow unchanged. Uploads need nothing here: a sealed repository takes MLflow's
streaming uploads (``StreamUploadMixin``) and seals them in memory.

``GET /imgvault/api/v1/sealing`` tells clients whether this server seals its proxied artifacts, so that
``imgvault run`` logs per-image figures only to a server that does.

The key: the store named by the environment (``IMGVAULT_HOME``, ``IMGVAULT_DB_URL``, ``IMGVAULT_KEY_FILE``
or ``IMGVAULT_PASSPHRASE``), checked when the server starts when the artifacts destination is sealed.
"""

import logging
import os
import posixpath

from mlflow.exceptions import MlflowException
from mlflow.server import handlers
from mlflow.server.constants import ARTIFACTS_DESTINATION_ENV_VAR as DESTINATION
from mlflow.server.constants import SERVE_ARTIFACTS_ENV_VAR as SERVE_ARTIFACTS
from mlflow.server.fastapi_app import app
from mlflow.utils.mime_type_utils import _guess_mime_type
from mlflow.utils.uri import validate_path_is_safe
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from imgvault.basics.errors import ImgVaultError, IntegrityError
from imgvault.tracker.sealing.repository import SealedArtifactRepository, _env_sealer, is_sealed_uri
from imgvault.tracker.sealing.writer import SEALING_ENDPOINT

__all__ = ["app"]


def _destination_sealed() -> bool:
    return os.environ.get(SERVE_ARTIFACTS) == "true" and is_sealed_uri(os.environ.get(DESTINATION))


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _attachment(path: str, data: bytes) -> Response:
    # As MLflow sends artifacts: always as an attachment, never sniffed (a page of ours must not run them).
    # Never kept by a browser or a proxy: it is plaintext of a sealed artifact (a figure shows the image).
    return Response(data, media_type=_guess_mime_type(path), headers={
        "Content-Disposition": handlers._content_disposition_attachment(posixpath.basename(path)),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    })  # fmt: skip


class _Sealed:
    """An ASGI route: the sealed artifact from memory, or MLflow's own handler for any other."""

    def __init__(self, locate, fallback):
        self.locate = locate  # request -> (repository, path)
        self.fallback = fallback

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive)
        try:
            repo, path = await run_in_threadpool(self.locate, request)
        except MlflowException as exc:
            response = _error(exc.get_http_status_code(), exc.error_code, exc.message)
        except (KeyError, ValueError) as exc:
            response = _error(400, "INVALID_PARAMETER_VALUE", f"bad artifact request: {exc}")
        else:
            if not isinstance(repo, SealedArtifactRepository):
                await self.fallback(scope, receive, send)
                return
            try:
                response = _attachment(path, await run_in_threadpool(repo.read_bytes, path))
            except FileNotFoundError:
                response = _error(404, "RESOURCE_DOES_NOT_EXIST", f"artifact {path} does not exist")
            except IsADirectoryError:
                response = _error(400, "INVALID_PARAMETER_VALUE", f"artifact path {path} is a directory")
            except IntegrityError as exc:
                response = _error(500, "DATA_LOSS", str(exc))
            except ImgVaultError as exc:
                response = _error(500, "INTERNAL_ERROR", f"cannot open sealed artifacts: {exc}")
        await response(scope, receive, send)


def _run_artifact(request: Request):
    run_id = request.query_params.get("run_id") or request.query_params.get("run_uuid")
    path = validate_path_is_safe(request.query_params["path"])
    run = handlers._get_tracking_store().get_run(run_id)
    if handlers._is_servable_proxied_run_artifact_root(run.info.artifact_uri):
        destination = handlers._get_proxied_run_artifact_destination_path(
            proxied_artifact_root=run.info.artifact_uri, relative_path=path
        )
        return handlers._get_artifact_repo_mlflow_artifacts(), handlers._get_workspace_scoped_repo_path_if_enabled(
            destination
        )
    return handlers._get_artifact_repo(run), path


def _proxied_artifact(request: Request):
    if os.environ.get(SERVE_ARTIFACTS) != "true" or DESTINATION not in os.environ:
        return None, ""
    path = validate_path_is_safe(request.path_params["artifact_path"])
    return handlers._get_artifact_repo_mlflow_artifacts(), handlers._get_workspace_scoped_repo_path_if_enabled(path)


async def _sealing(_request: Request) -> JSONResponse:
    return JSONResponse({"sealed": _destination_sealed()})


def _install(fastapi_app) -> None:
    from mlflow.server.artifact_router import artifact_router  # MLflow's proxied uploads and downloads

    prefix = os.environ.get(handlers.STATIC_PREFIX_ENV_VAR, "").rstrip("/")
    flask = next(route.app for route in fastapi_app.router.routes if isinstance(route, Mount) and route.path == "")
    proxied = "mlflow-artifacts/artifacts/{artifact_path:path}"
    ours = [
        Route(f"{prefix}/get-artifact", _Sealed(_run_artifact, flask), methods=["GET"]),
        Route(f"{prefix}/ajax-api/2.0/mlflow/get-artifact", _Sealed(_run_artifact, flask), methods=["GET"]),
        Route(f"{prefix}{SEALING_ENDPOINT}", _sealing, methods=["GET"]),
        # MLflow includes its artifact router without the static prefix.
        Route(f"/api/2.0/{proxied}", _Sealed(_proxied_artifact, artifact_router), methods=["GET"]),
        Route(f"/ajax-api/2.0/{proxied}", _Sealed(_proxied_artifact, artifact_router), methods=["GET"]),
    ]
    fastapi_app.router.routes[:0] = ours


def _check_key() -> None:
    """A sealed destination needs the store's key: a wrong one stops the server at its start. A store not
    created yet (a new deployment, before ``imgvault init``) is only a warning: the key is read when needed."""
    from imgvault.store.config import Settings
    from imgvault.store.store import Store

    if Store.exists(Settings.resolve()):
        _env_sealer()
    else:
        logging.getLogger("imgvault").warning("no imgvault store yet: artifacts cannot be sealed until `imgvault init`")


_install(app)
if _destination_sealed():
    _check_key()
