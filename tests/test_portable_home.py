"""A home is portable: moved, copied, restored or renamed, its MLflow figures still open, rotate and show.

A sealed artifact of a run is bound to the store, the run and its path inside the run, not to where the
home happens to be; the embedded default's runs keep their artifacts at ``imgvault+home:`` locations,
which resolve against the home in use.
"""

import json
import os
import shutil
import sqlite3
import sys
import urllib.parse
import urllib.request
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from conftest import PHOTOS
from leaks import original_panel
from mlflow import MlflowClient
from servers import free_port, serving
from test_sealed_artifacts import SMALL, figures_of, step_of

from imgvault.cli import cli
from imgvault.methods import load_pixels, to_uint8
from imgvault.store import Settings, Store
from imgvault.store.crypto import blob_key_id
from imgvault.tracker.runs import BatchConfig, run_batch
from imgvault.tracker.sealing.repository import use_store
from imgvault.tracker.tracking import tracking_uri

pytestmark = pytest.mark.slow
ODD = "moved home %41 #1 é"  # a space, a percent sign that decodes to a letter, a hash, non-ASCII


def artifact_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "mlartifacts").rglob("*") if p.is_file())


def locations(home: Path) -> list[str]:
    with closing(sqlite3.connect(home / "mlflow.db")) as connection:
        rows = connection.execute("SELECT artifact_location FROM experiments UNION ALL SELECT artifact_uri FROM runs")
        return [location for (location,) in rows if location and "mlartifacts" in location]


def images_table(home: Path, run_id: str, tmp_path: Path) -> list:
    client = MlflowClient(tracking_uri(home))
    out = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}"
    out.mkdir()
    with open(client.download_artifacts(run_id, "images.json", str(out))) as handle:
        return json.load(handle)["data"]


def legacy_home(photos, home: Path) -> tuple[str, int]:
    """A home as earlier versions left it: runs at absolute ``imgvault+file://`` locations, each artifact bound
    to that location (percent-encoded, as the repository computed it from the URI)."""
    result = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
    root = home / "mlartifacts"
    with closing(sqlite3.connect(home / "mlflow.db")) as connection, connection:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
            connection.execute(f"UPDATE {table} SET {column} = replace({column}, 'imgvault+home:///mlartifacts', ?)"
                               f" WHERE {column} LIKE 'imgvault+home:%'", ("imgvault+" + root.as_uri(),))  # fmt: skip
            connection.execute(f"UPDATE {table} SET {column} = replace({column}, 'imgvault+home:/mlartifacts', ?)"
                               f" WHERE {column} LIKE 'imgvault+home:%'", ("imgvault+" + root.as_uri(),))  # fmt: skip
    files = artifact_files(home)
    for path in files:
        plain = photos.sealer.open("artifact", _run_place(path), path.read_bytes())
        encoded = "file://" + urllib.parse.quote(str(path.parent)) + "/" + path.name
        path.write_bytes(photos.sealer.seal("artifact", encoded, plain))
    return result.runs[0].run_id, len(files)


def _run_place(path: Path) -> str:
    parts = path.parts
    at = parts.index("artifacts", parts.index("mlartifacts"))
    return f"run:{parts[at - 1]}/{'/'.join(parts[at + 1 :])}"


def test_a_moved_home_reads_rotates_and_shows_every_figure(photos, home, runner, tmp_path, monkeypatch):
    result = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
    run_id = result.runs[0].run_id
    assert locations(home) and all(location.startswith("imgvault+home:") for location in locations(home))
    photos.close()
    moved = tmp_path / ODD
    shutil.move(home, moved)
    monkeypatch.setenv("IMGVAULT_HOME", str(moved))
    with Store.open(settings=Settings.resolve(moved)) as store:
        use_store(store)
        assert len(images_table(moved, run_id, tmp_path)) == len(PHOTOS)
        old = store.sealer.keyset.primary_id

    rotated = runner.invoke(cli, ["key", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    files = artifact_files(moved)
    assert f"and {len(files)} MLflow artifacts; retired keys: {old}." in rotated.output
    with Store.open(settings=Settings.resolve(moved)) as store:
        use_store(store)
        assert {blob_key_id(p.read_bytes()) for p in files} == {store.sealer.keyset.primary_id}
        assert len(images_table(moved, run_id, tmp_path)) == len(PHOTOS)
        ids = [image.id for image in store.images("photos")]
        figure = figures_of(MlflowClient(tracking_uri(moved)), run_id)[0]
        expected = to_uint8(load_pixels(store.get(ids[step_of(figure)]), size=32))

    # Reached through a symlink, the UI shows the figure.
    link = tmp_path / "link to home"
    link.symlink_to(moved)
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "imgvault.cli", "--home", str(link), "ui", "--port", str(port)]
    query = urllib.parse.urlencode({"path": figure, "run_uuid": run_id})
    url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/get-artifact?{query}"
    with serving(command, f"http://127.0.0.1:{port}/health", env), urllib.request.urlopen(url) as reply:
        body = reply.read()
    assert np.array_equal(original_panel(body, 32)[:, :, 0], expected)


def test_db_upgrade_makes_an_older_moved_home_portable_and_counts_what_it_changed(photos, home, runner, tmp_path,
                                                                                  monkeypatch):  # fmt: skip
    (tmp_path / "old place").mkdir()
    old_home = tmp_path / "old place" / "vault"
    photos.close()
    shutil.move(home, old_home)
    monkeypatch.setenv("IMGVAULT_HOME", str(old_home))
    with Store.open(settings=Settings.resolve(old_home)) as store:
        use_store(store)
        run_id, count = legacy_home(store, old_home)
    assert all(location.startswith("imgvault+file:") for location in locations(old_home))
    moved = tmp_path / ODD
    shutil.move(old_home, moved)
    monkeypatch.setenv("IMGVAULT_HOME", str(moved))

    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"re-bound {count:,} to their run" in result.output
    assert f"{len(locations(moved)):,} experiment and run locations now resolve against the home" in result.output
    assert all(location.startswith("imgvault+home:") for location in locations(moved))
    with Store.open(settings=Settings.resolve(moved)) as store:
        use_store(store)
        assert len(images_table(moved, run_id, tmp_path)) == len(PHOTOS)
    again = runner.invoke(cli, ["db", "upgrade"])
    assert again.exit_code == 0 and "all sealed already" in again.output


def test_a_rotation_that_cannot_open_an_artifact_retires_no_key_and_says_which(photos, home, runner, tmp_path):
    result = run_batch(photos, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
    files = artifact_files(home)
    damaged = files[len(files) // 2]
    blob = bytearray(damaged.read_bytes())
    blob[-1] ^= 1
    damaged.write_bytes(bytes(blob))
    keys_before = json.loads((home / "keyset.json").read_text())["keys"]

    rotated = runner.invoke(cli, ["key", "rotate"])
    assert rotated.exit_code == 1
    assert f"Error: artifact {damaged.relative_to(home / 'mlartifacts')}" in rotated.stderr
    assert "no key was retired" in rotated.stderr
    assert "Traceback" not in rotated.output
    kept = json.loads((home / "keyset.json").read_text())["keys"]
    assert {k["key_id"] for k in keys_before} < {k["key_id"] for k in kept}  # the old key is still there
    with Store.open(settings=Settings.resolve(home)) as store:
        use_store(store)
        assert len(images_table(home, result.runs[0].run_id, tmp_path)) == len(PHOTOS)
        assert all(store.get(image.id) for image in store.images("photos"))

    damaged.unlink()  # the damage removed, the next rotation goes through
    again = runner.invoke(cli, ["key", "rotate"])
    assert again.exit_code == 0, again.output
    assert len(json.loads((home / "keyset.json").read_text())["keys"]) == 1


def test_sealing_a_home_says_how_many_files_it_walks_and_how_far_it_is(store, home):
    from imgvault.tracker.sealing.files import seal_home

    run = "0123456789abcdef0123456789abcdef"
    for name in ("a.json", "b.json", "c.png"):
        path = home / "mlartifacts" / "exp" / run / "artifacts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"plain")  # as earlier versions wrote them
    totals, steps = [], []
    report = seal_home(store.sealer, home, None, started=totals.append, advance=lambda: steps.append(1))
    assert totals == [3] and len(steps) == 3 and report.sealed == 3
