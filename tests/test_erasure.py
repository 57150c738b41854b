"""Erasure erases: `imgvault rm` takes an image out of the MLflow runs that showed it, not only out of the store."""

import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from conftest import PHOTOS
from leaks import original_panel
from PIL import Image

from imgvault.cli import cli
from imgvault.methods import load_pixels, to_uint8
from imgvault.tracker.runs import BatchConfig, run_batch
from imgvault.tracker.sealing.repository import SealedArtifactRepository, use_store
from imgvault.tracker.tracking import tracking_uri

pytestmark = pytest.mark.slow
SIZE = 32
CONFIG = BatchConfig(methods=("kmeans", "aes"), ks=(4,), size=SIZE, jobs=1, figures=len(PHOTOS))


def child_runs(home: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(home / "mlflow.db")) as connection:
        return connection.execute(
            "SELECT r.run_uuid, r.artifact_uri FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid"
            " WHERE t.key = 'imgvault.kind' AND t.value = 'child'"
        ).fetchall()


def shown(store, home: Path) -> tuple[list[np.ndarray], list[str], list[tuple]]:
    """Every figure's original panel, every image id of every images.json, every per-image metric point."""
    use_store(store)
    panels, ids = [], []
    for _run_id, uri in child_runs(home):
        repo = SealedArtifactRepository(uri, tracking_uri=tracking_uri(home))
        for path in repo.walk():
            data = repo.read_bytes(path)
            if path.endswith(".png"):
                panels.append(original_panel(data, SIZE)[:, :, 0])
            elif path.endswith(".webp"):
                Image.open(io.BytesIO(data)).load()  # a thumbnail that opens: counted by its figure
            elif path.endswith("images.json"):
                table = json.loads(data)
                ids += [row[table["columns"].index("image_id")] for row in table["data"]]
    with closing(sqlite3.connect(home / "mlflow.db")) as connection:
        points = connection.execute("SELECT run_uuid, key, step FROM metrics WHERE key LIKE 'image/%'").fetchall()
    return panels, ids, points


def per_image_series(home: Path) -> None:
    """Per-image metric points (step = image index), as runs of earlier versions of imgvault have them."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri(home))
    for run_id, _uri in child_runs(home):
        for step in range(len(PHOTOS)):
            client.log_metric(run_id, "image/ssim", 0.5 + step / 100, step=step)


def test_rm_erases_the_image_from_every_run_that_showed_it(photos, home, runner):
    run_batch(photos, "photos", CONFIG)
    per_image_series(home)
    images = list(photos.images("photos"))
    removed = images[2]
    pixels = to_uint8(load_pixels(photos.get(removed.id), size=SIZE))
    panels, ids, points = shown(photos, home)
    assert any(np.array_equal(panel, pixels) for panel in panels)  # the check can fail: it is there before
    assert ids.count(removed.id) == 2
    steps_before = len(points)

    result = runner.invoke(cli, ["rm", removed.id])
    assert result.exit_code == 0, result.output
    assert "Removed 1 image, 2 encoded images" in result.stderr
    assert "Erased from MLflow: 4 figure files, 2 rows of images.json and" in result.stderr
    assert "in 2 MLflow runs." in result.stderr

    panels, ids, points = shown(photos, home)
    assert not any(np.array_equal(panel, pixels) for panel in panels)
    assert len(panels) == 2 * (len(PHOTOS) - 1)
    assert removed.id not in ids and len(ids) == 2 * (len(PHOTOS) - 1)
    assert len(points) < steps_before and not any(step == 2 for _run, _key, step in points)
    # The last value MLflow shows of a series is still one of an image that remains.
    with closing(sqlite3.connect(home / "mlflow.db")) as connection:
        latest = connection.execute(
            "SELECT run_uuid, key, step FROM latest_metrics WHERE key LIKE 'image/%'"
        ).fetchall()
    assert latest and all(step != 2 for _run, _key, step in latest)


def test_rm_keep_runs_leaves_them_and_says_what_remains(photos, home, runner):
    run_batch(photos, "photos", CONFIG)
    removed = next(iter(photos.images("photos")))
    result = runner.invoke(cli, ["rm", removed.id, "--keep-runs"])
    assert result.exit_code == 0, result.output
    assert ("Warning: --keep-runs: 4 figure files, 2 rows of images.json and" in result.stderr
            and "still show the removed images." in result.stderr)  # fmt: skip
    _panels, ids, _points = shown(photos, home)
    assert ids.count(removed.id) == 2


def test_rm_of_a_collection_erases_its_images_from_the_runs(photos, home, runner):
    run_batch(photos, "photos", CONFIG)
    result = runner.invoke(cli, ["rm", "-c", "photos", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document["images"]) == len(PHOTOS)
    assert document["mlflow"]["runs"] == 2 and document["mlflow"]["figures"] == 4 * len(PHOTOS)
    panels, ids, points = shown(photos, home)
    assert panels == [] and ids == [] and points == []


def test_rm_with_an_unknown_id_erases_nothing(photos, home, runner):
    run_batch(photos, "photos", CONFIG)
    known = next(iter(photos.images("photos")))
    result = runner.invoke(cli, ["rm", known.id, "01JD3Z8R8C6WQ3M1V0B5E3N9XK"])
    assert result.exit_code == 1 and result.stderr == "Error: image 01JD3Z8R8C6WQ3M1V0B5E3N9XK not found\n"
    _panels, ids, _points = shown(photos, home)
    assert ids.count(known.id) == 2
