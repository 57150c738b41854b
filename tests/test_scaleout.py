"""Scale-out with real engines: batch runs on a Dask cluster, runs tracked on a real MLflow server."""

import os
import shutil
import sys
from pathlib import Path

import pytest
import skimage.data
from mlflow import MlflowClient
from PIL import Image
from servers import free_port, serving

from imgvault.cli import cli
from imgvault.tracker.reports.compare import compare
from imgvault.tracker.runs import BatchConfig, run_batch

pytestmark = pytest.mark.slow

PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "moon.png", "coins.png")


@pytest.fixture
def photos(store, home, migrated_tracking_db, monkeypatch):
    """A store with six real photos, and a fresh copy of the migrated local MLflow store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    folder = Path(skimage.data.__file__).parent
    for name in PHOTOS:
        store.put(folder / name, collection="photos")
    return store


@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster on loopback: a scheduler and two worker processes."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:  # fmt: skip
        yield cluster


def _encoded_on(cluster) -> int:
    """How many per-image encode tasks the cluster has run so far (joblib batches the calls into tasks)."""
    return sum(prefix.state_counts["memory"] + prefix.state_counts["released"] + prefix.state_counts["forgotten"]
               for name, prefix in cluster.scheduler.task_prefixes.items() if "_encode_one" in name)  # fmt: skip


def _per_image(result) -> dict:
    return {(run.method, run.k): run.values for run in result.runs}


def test_a_batch_on_a_dask_cluster_gives_the_same_results_as_a_local_run(photos, cluster):
    config = {"methods": ("pca", "kmeans", "gmm"), "ks": (4,), "size": 40, "figures": 2}
    local = run_batch(photos, "photos", BatchConfig(jobs=1, **config))
    before = _encoded_on(cluster)
    remote = run_batch(photos, "photos", BatchConfig(scheduler=cluster.scheduler_address, **config))
    # The per-image work ran as tasks on the cluster...
    assert _encoded_on(cluster) > before
    # ...and gave the same numbers, image by image, except for the timings.
    for key, values in _per_image(local).items():
        other = _per_image(remote)[key]
        for metric in ("mse", "psnr", "ssim", "bpp", "entropy", "corr_h", "npcr", "visual_ssim", "key_ssim"):
            # Measures that do not apply to a method (PCA has no entropy or NPCR) are missing from both.
            assert (metric in other) == (metric in values), (key, metric)
            if metric in values:
                assert other[metric] == pytest.approx(values[metric], rel=1e-12), (key, metric)
    assert remote.failures == local.failures == 0
    params = MlflowClient(f"sqlite:///{photos.settings.home / 'mlflow.db'}").get_run(remote.parent_run_id).data.params
    assert params["scheduler"] == cluster.scheduler_address


def test_run_takes_the_scheduler_from_the_environment(photos, cluster, runner, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    before = _encoded_on(cluster)
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "kmeans", "-k", "2", "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr  # loopback: nothing crosses a network
    assert _encoded_on(cluster) > before


@pytest.fixture
def short_connect_timeout(monkeypatch):
    """The scheduler is given up after 2 s instead of imgvault's 10: these tests are about what happens once it is
    given up (the error line, no run started), not about how long it is waited for."""
    distributed = pytest.importorskip("distributed")
    real = distributed.Client

    def client(*args, timeout=None, **kwargs):
        assert timeout == "10s"  # imgvault's own, replaced here
        return real(*args, timeout="2s", **kwargs)

    monkeypatch.setattr(distributed, "Client", client)


def test_an_unreachable_scheduler_fails_before_any_run_starts(photos, runner, short_connect_timeout):
    result = runner.invoke(cli, ["run", "-c", "photos", "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: cannot reach the Dask scheduler tcp://127.0.0.1:9")
    client = MlflowClient(f"sqlite:///{photos.settings.home / 'mlflow.db'}")
    assert client.get_experiment_by_name("imgvault/photos") is None or not client.search_runs(
        [client.get_experiment_by_name("imgvault/photos").experiment_id]
    )


def test_a_plain_tcp_scheduler_on_a_network_is_warned_about(photos, runner, short_connect_timeout):
    result = runner.invoke(cli, ["run", "-c", "photos", "--scheduler", "tcp://192.0.2.1:8786"])
    assert result.stderr.startswith("Warning: tcp://192.0.2.1:8786 is not encrypted")
    assert result.exit_code == 1  # 192.0.2.0/24 is reserved for documentation: nothing answers


def test_runs_and_artifacts_go_to_a_real_mlflow_server(photos, migrated_tracking_db, tmp_path, monkeypatch):
    port = free_port()
    backend = tmp_path / "server.db"
    shutil.copy(migrated_tracking_db, backend)
    artifacts = tmp_path / "server-artifacts"
    # imgvault's app with a sealed destination, holding the store's key (tests/test_sealed_artifacts.py has more).
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "imgvault", "--backend-store-uri",
               f"sqlite:///{backend}", "--serve-artifacts", "--artifacts-destination", "imgvault+" + artifacts.as_uri(),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    env = {**os.environ, "IMGVAULT_HOME": str(photos.settings.home)}
    with serving(command, f"http://127.0.0.1:{port}/health", env):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        result = run_batch(photos, "photos", BatchConfig(methods=("kmeans", "aes"), ks=(4,), size=32, figures=2))
        rows = compare(photos.settings.home, ["photos"])
        assert {(r["method"], r["k"]) for r in rows} == {("kmeans", 4), ("aes", None)}
        client = MlflowClient(f"http://127.0.0.1:{port}")
        run = client.get_run(result.runs[0].run_id)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server, not a local path
        [figure] = [a.path for a in client.list_artifacts(run.info.run_id, "images") if "+step+0+" in a.path
                    and a.path.endswith(".png")]  # fmt: skip
        with Image.open(client.download_artifacts(run.info.run_id, figure, str(tmp_path))) as shown:
            assert shown.width > 4 * 32
    # Everything landed on the server's side: its database and its artifact store, nothing in the home.
    assert MlflowClient(f"sqlite:///{backend}").get_run(result.parent_run_id).info.status == "FINISHED"
    assert list(artifacts.rglob("images.json")) and list(artifacts.rglob("comparison.png"))
    assert not (photos.settings.home / "mlartifacts").exists()
