"""MLflow artifacts sealed at rest: nothing readable outside the store, and every figure still shows."""

import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import PHOTOS
from leaks import leaks, original_panel, pixel_runs
from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from servers import free_port, serving

from imgvault.cli import cli
from imgvault.methods import load_pixels, to_uint8
from imgvault.store import IntegrityError, Settings, Store
from imgvault.store.crypto import blob_key_id
from imgvault.tracker.runs import BatchConfig, run_batch
from imgvault.tracker.sealing.repository import SealedArtifactRepository, sealed_uri, use_store

pytestmark = pytest.mark.slow
SMALL = {"size": 32, "jobs": 1, "figures": 3}
STORE_FILES = ("store.db", "store.db-wal", "store.db-shm", "keyset.json")


def temporary_files(folder: Path) -> list[str]:
    """The files in ``folder``, but for the empty lock file MLflow makes there when it creates its tables."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    return [path.name for path in files if not (path.name.startswith("db_init_lock-") and path.stat().st_size == 0)]


def mlflow_client(home: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{home / 'mlflow.db'}")


def figures_of(client: MlflowClient, run_id: str) -> list[str]:
    return sorted(a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png"))


def step_of(path: str) -> int:
    return int(path.split("+step+")[1].split("+")[0])


def test_a_repository_seals_what_it_writes_and_opens_it_in_memory(store, tmp_path):
    use_store(store)
    repo = SealedArtifactRepository(sealed_uri(str(tmp_path / "artifacts")))
    repo.write_bytes("images/x.png", b"pixels of a private scan")
    stored = (tmp_path / "artifacts" / "images" / "x.png").read_bytes()
    assert b"pixels" not in stored and stored[:4] == b"IVLT"
    assert repo.read_bytes("images/x.png") == b"pixels of a private scan"
    [listed] = repo.list_artifacts("images")
    assert (listed.path, listed.file_size) == ("images/x.png", len(b"pixels of a private scan"))
    with pytest.raises(ValueError, match="leaves the artifact root"):
        repo.write_bytes("../escape.png", b"x")


@pytest.mark.parametrize("damage", ["flip", "truncate", "move", "plaintext", "other store"])
def test_a_damaged_moved_or_foreign_artifact_is_an_integrity_error(store, tmp_path, damage):
    use_store(store)
    repo = SealedArtifactRepository(sealed_uri(str(tmp_path / "artifacts")))
    repo.write_bytes("a.png", b"figure a")
    repo.write_bytes("b.png", b"figure b")
    path = tmp_path / "artifacts" / "a.png"
    blob = path.read_bytes()
    if damage == "flip":
        for index in range(len(blob)):  # every byte, as tests/test_crypto.py does for blobs
            path.write_bytes(blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :])
            with pytest.raises(IntegrityError):
                repo.read_bytes("a.png")
        return
    if damage == "truncate":
        path.write_bytes(blob[:-1])
    elif damage == "move":
        path.write_bytes((tmp_path / "artifacts" / "b.png").read_bytes())
    elif damage == "plaintext":
        path.write_bytes(b"\x89PNG not sealed")
    else:
        with Store.init(settings=Settings.resolve(tmp_path / "other", environ={})) as other:
            use_store(other)
            SealedArtifactRepository(sealed_uri(str(tmp_path / "elsewhere"))).write_bytes("a.png", b"figure a")
            path.write_bytes((tmp_path / "elsewhere" / "a.png").read_bytes())
            use_store(store)
    with pytest.raises(IntegrityError, match=r"a\.png"):
        repo.read_bytes("a.png")


def test_a_batch_leaves_no_image_no_file_name_and_no_pixels_outside_the_store(photos, home):
    run_batch(photos, "photos", BatchConfig(methods=("pca", "kmeans", "aes"), ks=(4,), **SMALL))
    runs = pixel_runs(photos, "photos", size=32, color="gray")
    names = [*PHOTOS, "Jane Roe"]
    assert list((home / "mlartifacts").rglob("*.png")), "the run logged no figure to look at"
    assert leaks(home, names, runs, skip=STORE_FILES) == []
    # The check can fail: the same walk over a plaintext copy of one figure finds it.
    client = mlflow_client(home)
    child = client.search_runs([client.get_experiment_by_name("imgvault/photos").experiment_id],
                               "tags.`imgvault.kind` = 'child'")[0]  # fmt: skip
    shown = Path(client.download_artifacts(child.info.run_id, figures_of(client, child.info.run_id)[0], str(home)))
    assert leaks(home, names, runs, skip=STORE_FILES) == [f"{shown}: opens as an image"]


def test_figures_and_tables_read_back_through_mlflow_show_the_stored_images(photos, home):
    result = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(8,), **SMALL))
    client = mlflow_client(home)
    run_id = result.runs[0].run_id
    with open(client.download_artifacts(run_id, "images.json")) as handle:
        table = json.load(handle)
    assert "name" not in table["columns"]  # images are named by id and step only
    ids = [row[table["columns"].index("image_id")] for row in table["data"]]
    for path in figures_of(client, run_id):
        with open(client.download_artifacts(run_id, path), "rb") as handle:
            panel = original_panel(handle.read(), 32)
        expected = to_uint8(load_pixels(photos.get(ids[step_of(path)]), size=32))
        assert np.array_equal(panel[:, :, 0], expected)


def test_the_ui_serves_sealed_figures_from_memory_and_refuses_a_wrong_key(photos, home, tmp_path):
    result = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
    run_id = result.runs[0].run_id
    client = mlflow_client(home)
    figure = figures_of(client, run_id)[0]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()

    def fetch(port: int) -> tuple[int, bytes]:
        query = urllib.parse.urlencode({"path": figure, "run_uuid": run_id})
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/get-artifact?{query}") as reply:
                assert reply.headers["Cache-Control"] == "no-store"  # plaintext: never kept by a browser
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    port = free_port()
    command = [sys.executable, "-m", "imgvault.cli", "--home", str(home), "ui", "--port", str(port)]
    with serving(command, f"http://127.0.0.1:{port}/health", env):
        status, body = fetch(port)
    assert status == 200
    ids = [image.id for image in photos.images("photos")]
    assert np.array_equal(original_panel(body, 32)[:, :, 0],
                          to_uint8(load_pixels(photos.get(ids[step_of(figure)]), size=32)))  # fmt: skip
    assert temporary_files(tmp_path / "tmp") == []  # no plaintext copy in a temporary folder

    # Another store's key on the same runs (their artifacts copied into its home): an error, never garbage.
    other = tmp_path / "other"
    Store.init(settings=Settings.resolve(other, environ={})).close()
    shutil.copytree(home / "mlartifacts", other / "mlartifacts")
    port = free_port()
    command = [sys.executable, "-m", "imgvault.cli", "--home", str(other), "ui", "--port", str(port)]
    with serving(command, f"http://127.0.0.1:{port}/health", {**env, "MLFLOW_TRACKING_URI": client.tracking_uri}):
        status, body = fetch(port)
    assert status == 500 and json.loads(body)["error_code"] == "DATA_LOSS"
    assert "integrity check" in json.loads(body)["message"]

    # A flipped byte in the sealed file: detected by the client as well.
    path = next((home / "mlartifacts").rglob(Path(figure).name))
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    path.write_bytes(bytes(blob))
    repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
    (tmp_path / "out").mkdir()
    with pytest.raises(IntegrityError, match="integrity check"):
        repo.read_bytes(figure)
    with pytest.raises(Exception, match="failed its integrity check"):  # MLflow gathers its files' errors
        repo.download_artifacts(figure, str(tmp_path / "out"))
    # MLflow's client turns it into its own "failed to download"; nothing is written either way.
    with pytest.raises(Exception, match="Failed to download"):
        client.download_artifacts(run_id, figure, str(tmp_path / "out"))
    assert not list((tmp_path / "out").rglob("*.png"))


def test_a_plain_mlflow_server_refuses_sealed_figures_rather_than_write_them_to_a_temp_file(photos, home, tmp_path):
    result = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
    run_id = result.runs[0].run_id
    figure = figures_of(mlflow_client(home), run_id)[0]
    (tmp_path / "tmp").mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),
        "IMGVAULT_HOME": str(home),
    }
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with serving(command, f"http://127.0.0.1:{port}/health", env):
        query = urllib.parse.urlencode({"path": figure, "run_uuid": run_id})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/get-artifact?{query}")
    assert "--app-name imgvault" in refused.value.read().decode()
    assert temporary_files(tmp_path / "tmp") == []


def test_a_server_with_imgvault_app_stores_only_ciphertext(photos, home, migrated_tracking_db, tmp_path,
                                                            monkeypatch):  # fmt: skip
    port = free_port()
    backend = tmp_path / "server.db"
    shutil.copy(migrated_tracking_db, backend)
    artifacts = tmp_path / "server-artifacts"
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "imgvault", "--backend-store-uri",
               f"sqlite:///{backend}", "--serve-artifacts", "--artifacts-destination", sealed_uri(str(artifacts)),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "IMGVAULT_HOME": str(home),  # the key, from a file
           "TMPDIR": str(tmp_path / "server-tmp")}  # fmt: skip
    (tmp_path / "server-tmp").mkdir()
    with serving(command, f"http://127.0.0.1:{port}/health", env):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        result = run_batch(photos, "photos", BatchConfig(methods=("kmeans", "aes"), ks=(4,), **SMALL))
        assert result.notes == []
        client = MlflowClient(f"http://127.0.0.1:{port}")
        run_id = result.runs[0].run_id
        figures = figures_of(client, run_id)
        assert len(figures) == 3
        with open(client.download_artifacts(run_id, figures[0], str(tmp_path)), "rb") as handle:
            panel = original_panel(handle.read(), 32)
    ids = [image.id for image in photos.images("photos")]
    assert np.array_equal(panel[:, :, 0], to_uint8(load_pixels(photos.get(ids[step_of(figures[0])]), size=32)))
    runs = pixel_runs(photos, "photos", size=32, color="gray")
    assert len(list(artifacts.rglob("images/*.png"))) == 6 and leaks(artifacts, PHOTOS, runs) == []
    assert leaks(tmp_path, PHOTOS, set(), skip=STORE_FILES) == [
        f"{tmp_path / Path(figures[0]).name}: opens as an image"  # only the copy downloaded above
    ]
    assert not (home / "mlartifacts").exists()
    # Served from memory: in a server process the sealed repository refuses MLflow's download into a
    # temporary folder (see the plain-server test), so the download above went through imgvault's app.
    assert temporary_files(tmp_path / "server-tmp") == []


def test_a_server_that_does_not_seal_gets_numbers_but_no_figures_unless_asked(photos, migrated_tracking_db, tmp_path,
                                                                               monkeypatch):  # fmt: skip
    port = free_port()
    backend = tmp_path / "server.db"
    shutil.copy(migrated_tracking_db, backend)
    artifacts = tmp_path / "plain-artifacts"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{backend}",
               "--serve-artifacts", "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    with serving(command, f"http://127.0.0.1:{port}/health"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        quiet = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
        loud = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), plaintext_figures=True, **SMALL))
        client = MlflowClient(f"http://127.0.0.1:{port}")
        assert client.get_run(quiet.runs[0].run_id).data.metrics["ssim"] > 0
        assert figures_of(client, quiet.runs[0].run_id) == []
        assert len(figures_of(client, loud.runs[0].run_id)) == 3
    assert "per-image figures are not logged" in quiet.notes[0] and "--plaintext-figures" in quiet.notes[0]
    assert "plaintext" in loud.notes[0]


def test_db_upgrade_seals_an_old_homes_plaintext_artifacts_in_place(photos, home, runner, tmp_path):
    # What earlier versions wrote: plaintext figures and tables naming the files, at file:// locations.
    client = mlflow_client(home)
    experiment = client.create_experiment("imgvault/photos", artifact_location=(home / "mlartifacts" / "old").as_uri())
    run_id = client.create_run(experiment).info.run_id
    image = next(iter(photos.images("photos")))
    figure = to_uint8(load_pixels(photos.get(image.id), size=32))
    client.log_image(run_id, np.repeat(figure[:, :, None], 3, axis=2), key="original", step=0)
    client.log_table(run_id, {"image_id": [image.id], "name": [image.name]}, "images.json")
    runs = pixel_runs(photos, "photos", size=32, color="gray")
    before = leaks(home, PHOTOS, runs, skip=STORE_FILES)
    assert any("opens as an image" in line for line in before) and any("astronaut.png" in line for line in before)

    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "sealed 3 plaintext files in place" in result.output  # the figure, its thumbnail and the table
    assert "2 experiment and run locations now resolve against the home" in result.output
    assert leaks(home, PHOTOS, runs, skip=STORE_FILES) == []
    # MLflow reads them through the sealing repository now, wherever the home is.
    assert client.get_run(run_id).info.artifact_uri == f"imgvault+home:///mlartifacts/old/{run_id}/artifacts"
    with open(client.download_artifacts(run_id, "images.json")) as handle:
        assert json.load(handle)["data"] == [[image.id, image.name]]
    again = runner.invoke(cli, ["db", "upgrade"])
    assert "all sealed already" in again.output


def test_large_images_reach_the_workers_without_a_memory_mapped_temporary_file(photos, tmp_path, monkeypatch):
    # joblib memory-maps arguments over 1 MB through a file in its temporary folder: plaintext pixels on disk.
    # A folder that cannot be made turns any such attempt into an error.
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(blocker / "joblib"))
    config = BatchConfig(methods=("aes",), size=400, color="rgb", jobs=2, figures=0)  # 3.8 MB per image
    result = run_batch(photos, "photos", config)
    assert result.failures == 0 and result.runs[0].metrics["exact_fraction"] == 1.0


def test_key_rotate_reseals_the_mlflow_artifacts_before_the_old_key_goes(photos, home, runner, tmp_path):
    run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
    team = sealed_uri(str(tmp_path / "team"))  # as a team server's destination would be
    SealedArtifactRepository(team).write_bytes("1/run/artifacts/table.json", b'{"step": [0]}')
    files = [p for p in (home / "mlartifacts").rglob("*") if p.is_file()]
    old = photos.sealer.keyset.primary_id

    result = runner.invoke(cli, ["key", "rotate", "--artifacts", team])
    assert result.exit_code == 0, result.output
    assert f"and {len(files) + 1} MLflow artifacts; retired keys: {old}." in result.output
    with Store.open(settings=Settings.resolve(home)) as reopened:
        new = reopened.sealer.keyset.primary_id
    assert new != old
    assert {blob_key_id(p.read_bytes()) for p in [*files, *(tmp_path / "team").rglob("*.json")]} == {new}
    assert SealedArtifactRepository(team).read_bytes("1/run/artifacts/table.json") == b'{"step": [0]}'
    client = mlflow_client(home)
    child = client.search_runs([client.get_experiment_by_name("imgvault/photos").experiment_id],
                               "tags.`imgvault.kind` = 'child'")[0]  # fmt: skip
    with open(client.download_artifacts(child.info.run_id, "images.json")) as handle:
        assert len(json.load(handle)["data"]) == len(PHOTOS)


def test_only_sealed_locations_are_taken_as_artifact_locations(photos, runner):
    result = runner.invoke(cli, ["key", "rotate", "--artifacts", "s3://bucket/plain"])
    assert result.exit_code == 2 and "is not a sealed artifact location" in result.output


def test_every_inner_scheme_is_registered_with_mlflow():
    from mlflow.store.artifact.artifact_repository_registry import get_registered_artifact_repositories

    from imgvault.tracker.sealing.entry import sealed_repository
    from imgvault.tracker.sealing.repository import HOME, INNER_SCHEMES

    registered = get_registered_artifact_repositories()
    ours = {scheme for scheme, repo in registered.items() if repo is sealed_repository}
    assert ours == {f"imgvault+{scheme}" for scheme in INNER_SCHEMES}
    # Each wraps a repository MLflow has (imgvault+home: a local folder inside the home).
    assert all(scheme in registered for scheme in INNER_SCHEMES if scheme != HOME)


def test_db_upgrade_names_an_artifact_that_does_not_open_and_leaves_it_as_is(store, home, runner, tmp_path):
    use_store(store)
    repo = SealedArtifactRepository(sealed_uri(str(home / "mlartifacts" / "exp")))
    run = "0123456789abcdef0123456789abcdef"
    repo.write_bytes(f"1/{run}/artifacts/a.json", b"{}")
    damaged = home / "mlartifacts" / "exp" / "1" / run / "artifacts" / "a.json"
    blob = bytearray(damaged.read_bytes())
    blob[5] ^= 1  # its key id: a key this store does not hold (one under the current key is not re-opened)
    damaged.write_bytes(bytes(blob))
    (damaged.parent / "b.json").write_bytes(b'{"plain": true}')
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1
    assert f"Error: artifact exp/1/{run}/artifacts/a.json failed its integrity check" in result.stderr
    assert "sealed 1 plaintext files in place" in result.stdout
    assert damaged.read_bytes() == bytes(blob)
    assert repo.read_bytes(f"1/{run}/artifacts/b.json") == b'{"plain": true}'
