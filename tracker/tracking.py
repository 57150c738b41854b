"""Where runs are tracked: an MLflow tracking store, reached before any work starts.

``MLFLOW_TRACKING_URI`` if set (a server works too), else ``sqlite:///$IMGVAULT_HOME/mlflow.db`` with
artifacts sealed under ``$IMGVAULT_HOME/mlartifacts`` (``imgvault+home:///mlartifacts/...``, relative to the
home, see :mod:`imgvault.tracker.sealing.repository`).
"""

import logging
import os
from pathlib import Path

from imgvault.basics.errors import ConfigError
from imgvault.store.config import sqlite_file, sqlite_url
from imgvault.store.engine import first_line


def tracking_uri(home: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or sqlite_url(Path(home) / "mlflow.db")


def artifact_root(home: Path) -> Path:
    """The folder of the embedded default's artifacts (each experiment has a folder in it)."""
    return Path(home) / "mlartifacts"


def artifact_location(home: Path, experiment: str) -> str | None:
    """Where a new experiment keeps artifacts: for the local store, a folder of its own under home, sealed and
    relative to the home (``imgvault+home:``); the server's choice when ``MLFLOW_TRACKING_URI`` names one."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    from imgvault.tracker.sealing.files import ARTIFACTS, home_uri

    folder = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in experiment)
    return home_uri(f"{ARTIFACTS}/{folder}")


def open_client(home: Path, store=None):
    """An ``MlflowClient`` on the tracking store, checked to answer; a :class:`ConfigError` if it does not.

    With ``store``, sealed artifacts are sealed and opened with that store's keyset in this process.
    """
    # Fail in seconds rather than after MLflow's default minutes of retries against a dead server.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    from mlflow import MlflowClient

    if store is not None:
        from imgvault.tracker.sealing.repository import use_store

        use_store(store)

    # After the import: MLflow sets up its own logging then, at INFO.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)

    uri = tracking_uri(home)
    database = sqlite_file(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as exc:  # MLflow raises many kinds: connection, HTTP, database, bad URI
        raise ConfigError(f"cannot reach the MLflow tracking store {uri}: {first_line(exc)}") from None
    if database is not None and database.is_file() and os.name == "posix":
        database.chmod(0o600)  # collection names, metrics: MLflow makes it readable by everyone
    return client


def experiment_id(client, name: str, home: Path) -> str:
    """The id of experiment ``name``, created (with our artifact location) if new."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise ConfigError(f'MLflow experiment "{name}" is deleted; restore it in the MLflow UI or choose another')
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(home, name))
