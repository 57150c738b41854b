"""Batch runs against a real MLflow sqlite tracking store: runs, params, metric series, artifacts, compare."""

import contextlib
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from servers import free_port

from imgvault.cli import cli
from imgvault.methods.criteria import npcr_critical
from imgvault.store import ConfigError, InvalidParameter, Store
from imgvault.tracker.runs import BatchConfig, run_batch

pytestmark = pytest.mark.slow
PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "moon.png", "coins.png")


def external_references(page):
    """What the page would fetch: src/href/url() that are not data: URIs or in-page anchors.

    A bare ``"http" not in page`` is wrong: base64 PNG payloads contain "http" by chance (about once in a
    hundred reports), which once failed CI."""
    targets = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)|url\(\s*["']?([^"')\s]+)""", page)
    return [t for pair in targets for t in pair if t and not t.startswith(("data:", "#"))]


def test_external_references_ignores_base64_that_happens_to_spell_http():
    page = '<img src="data:image/png;base64,AAhttpBB"><a href="#s1">x</a><style>b{background:url(data:x)}</style>'
    assert external_references(page) == []
    assert external_references('<img src="http://x/y.png">') == ["http://x/y.png"]
    assert external_references("<style>b{background:url('https://x')}</style>") == ["https://x"]
    assert external_references("<link href=//cdn.example/x.css>") == ["//cdn.example/x.css"]


@pytest.fixture
def photos(store, home, migrated_tracking_db, monkeypatch):
    """A store with a collection of real photos and a fresh copy of the migrated MLflow store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    from pathlib import Path

    folder = Path(skimage.data.__file__).parent
    images = [store.put(folder / name, collection="photos") for name in PHOTOS]
    return store, images


def client(home):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{home / 'mlflow.db'}")


SMALL = {"size": 32, "jobs": 1, "figures": 3}


def read_table(mlflow, run_id: str) -> dict:
    with open(mlflow.download_artifacts(run_id, "images.json")) as handle:
        return json.load(handle)


def test_a_batch_logs_a_parent_and_one_child_per_method_and_k(photos, home):
    store, _ = photos
    result = run_batch(store, "photos", BatchConfig(methods=("pca", "kmeans", "gmm", "aes"), ks=(2, 4), **SMALL))
    assert [(r.method, r.k) for r in result.runs] == [("pca", 2), ("pca", 4), ("kmeans", 2), ("kmeans", 4),
                                                      ("gmm", 2), ("gmm", 4), ("aes", None)]  # fmt: skip
    mlflow = client(home)
    experiment = mlflow.get_experiment_by_name("imgvault/photos")
    assert experiment.experiment_id == result.experiment_id
    assert experiment.artifact_location == "imgvault+home:///mlartifacts/imgvault_photos"  # wherever the home is
    parent = mlflow.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["methods"] == "pca,kmeans,gmm,aes" and parent.data.params["k"] == "2,4"
    assert {a.path for a in mlflow.list_artifacts(parent.info.run_id)} == {"comparison.png", "ssim_vs_bpp.png",
                                                                          "security.png", "summary.json"}  # fmt: skip
    children = mlflow.search_runs([result.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 7 and {c.info.status for c in children} == {"FINISHED"}


def test_a_child_run_holds_params_series_summaries_table_figures_and_the_dataset(photos, home):
    store, images = photos
    result = run_batch(store, "photos", BatchConfig(methods=("kmeans",), ks=(4,), **SMALL))
    [child] = result.runs
    mlflow = client(home)
    run = mlflow.get_run(child.run_id)
    assert {k: run.data.params[k] for k in ("method", "k", "size", "color", "fit", "n_images", "random_state")} == {
        "method": "kmeans", "k": "4", "size": "32", "color": "gray", "fit": "image", "n_images": "6",
        "random_state": "0"}  # fmt: skip
    assert "imgvault_version" in run.data.params
    assert run.data.tags["imgvault.collection"] == "photos"
    for metric in ("mse", "psnr", "ssim", "bpp"):
        for stat in ("median", "std", "min", "max"):
            assert f"{metric}_{stat}" in run.data.metrics
    # The run's metrics are its means alone, each one value: the UI leads with them, not with one image's
    # value of a per-image series. Each image's values are rows of images.json.
    assert not [name for name in run.data.metrics if name.startswith("image/")]
    assert all(len(mlflow.get_metric_history(child.run_id, name)) == 1 for name in ("ssim", "psnr", "mse"))
    per_image = read_table(mlflow, child.run_id)
    ssim = per_image["columns"].index("ssim")
    assert run.data.metrics["ssim"] == pytest.approx(np.mean([row[ssim] for row in per_image["data"]]))
    assert {"encode_seconds", "decode_seconds", "fit_seconds"} <= set(run.data.metrics)
    assert "means over the images" in run.data.tags["mlflow.note.content"]
    assert "MEANS" in mlflow.get_experiment(result.experiment_id).tags["mlflow.note.content"]
    parent = mlflow.get_run(result.parent_run_id)
    assert parent.data.metrics == {"configurations": 1, "failed_images": 0}  # no wall of single-bar charts
    assert "Chart view" in parent.data.tags["mlflow.note.content"]
    experiment = mlflow.get_experiment(result.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # opens on its runs
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == "photos" and len(dataset.dataset.digest) == 16
    table = read_table(mlflow, child.run_id)
    assert [row[table["columns"].index("image_id")] for row in table["data"]] == [i.id for i in images]
    encoded_ids = [row[table["columns"].index("encoded_id")] for row in table["data"]]
    figures = [a.path for a in mlflow.list_artifacts(child.run_id, "images") if a.path.endswith(".png")]
    assert len(figures) == 3  # --figures 3
    # Every result is in the store, sealed, and decodes.
    from imgvault.methods import decode_image

    for encoded_id in encoded_ids:
        assert decode_image(store, encoded_id).shape == (32, 32)


def test_an_image_that_fails_is_counted_and_the_batch_finishes_for_the_rest(photos, home, tmp_path):
    store, _images = photos
    flat = tmp_path / "blank.png"
    Image.fromarray(np.full((64, 64), 128, dtype=np.uint8)).save(flat)  # one grey level, whatever the resize
    bad = store.put(flat, collection="photos")
    result = run_batch(store, "photos", BatchConfig(methods=("kmeans", "pca"), ks=(3,), **SMALL))
    kmeans, pca = result.runs
    assert [image_id for image_id, _ in kmeans.failures] == [bad.id]
    assert "only 1 distinct pixel values" in kmeans.failures[0][1]
    assert pca.failures == []
    mlflow = client(home)
    run = mlflow.get_run(kmeans.run_id)
    assert run.data.tags["imgvault.failed_images"] == "1"
    assert run.data.metrics["failed_images"] == 1
    table = read_table(mlflow, kmeans.run_id)
    errors = dict(zip((r[table["columns"].index("image_id")] for r in table["data"]),
                      (r[table["columns"].index("error")] for r in table["data"]), strict=True))  # fmt: skip
    assert "only 1 distinct" in errors[bad.id]
    assert len(list(store.encoded_images())) == 6 + 7


def test_collection_fit_shares_one_model_and_tags_it(photos, home):
    store, _ = photos
    result = run_batch(store, "photos", BatchConfig(methods=("pca",), ks=(4,), fit="collection", **SMALL))
    [child] = result.runs
    model_ids = {e.model_id for e in store.encoded_images()}
    assert len(model_ids) == 1
    assert client(home).get_run(child.run_id).data.tags["imgvault.model_id"] == model_ids.pop()
    assert child.metrics["bpp"] == pytest.approx(4 * 32 / (32 * 32))  # k float32 scores per image


def test_two_jobs_give_the_same_results_as_one(photos, home):
    # With two jobs every configuration's images go through one stream of tasks: each run must still get
    # its own configuration's results, image by image; and the workers draw the parent's figures.
    store, _ = photos
    one = run_batch(store, "photos", BatchConfig(methods=("gmm", "pca"), ks=(3,), **SMALL))
    two = run_batch(store, "photos", BatchConfig(methods=("gmm", "pca"), ks=(3,), **{**SMALL, "jobs": 2}))
    assert [r.label for r in two.runs] == ["gmm k=3", "pca k=3"]
    for first, second in zip(one.runs, two.runs, strict=True):
        for name in ("mse", "ssim", "bpp", "key_ssim"):
            assert first.values[name] == pytest.approx(second.values[name]), (first.label, name)
    mlflow = client(home)
    for name in ("comparison.png", "security.png"):
        drawn = [np.asarray(Image.open(mlflow.download_artifacts(result.parent_run_id, name))) for result in (one, two)]
        assert drawn[0].shape == drawn[1].shape and np.array_equal(*drawn), name


def test_per_image_work_in_this_process_runs_one_openmp_and_one_blas_thread_as_a_worker_does():
    # One thread per core, the default, made scikit-learn's OpenMP threads spin and wait on each other over
    # the small per-image fits: a --jobs 1 batch took 3 to 4 times the CPU time on a shared 2-core machine.
    from sklearn.cluster import KMeans  # noqa: F401  (loads the OpenMP runtime, as a batch does)
    from threadpoolctl import threadpool_info

    from imgvault.tracker.runs.compute import fit_mode

    before = {library["filepath"]: library["num_threads"] for library in threadpool_info()}
    if max(before.values()) == 1:
        pytest.skip("one core: there is no second thread to leave out")
    pixels = np.stack([skimage.data.camera()[::16, ::16] / 255] * 3)
    stream = fit_mode(BatchConfig(**SMALL)).stream(pixels, [("kmeans", 4)])
    next(stream)  # the first image is computed here, and the stream waits for the next request
    assert {library["num_threads"] for library in threadpool_info()} == {1}
    stream.close()
    assert {library["filepath"]: library["num_threads"] for library in threadpool_info()} == before


def test_the_untracked_computation_gives_the_measures_and_figures_a_batch_logs(photos):
    # benchmarks/run_bench.py holds the tracked path to compute_configuration: it must compute the same.
    from imgvault.methods import load_pixels
    from imgvault.tracker.runs.compute import compute_configuration

    store, images = photos
    config = BatchConfig(methods=("kmeans",), ks=(4,), **SMALL)
    [child] = run_batch(store, "photos", config).runs
    pixels = np.stack([load_pixels(store.get(image.id), size=32) for image in images])
    results, _, _ = compute_configuration(pixels, "kmeans", 4, config)
    for name in ("ssim", "entropy", "visual_ssim", "key_ssim"):
        assert [result.measured.metrics[name] for result in results] == pytest.approx(child.values[name]), name
    assert sum(result.figure is not None for result in results) == 3  # --figures 3


def test_a_figure_of_a_gray_image_is_written_as_gray_with_the_very_pixels_drawn():
    from imgvault.methods.render import figure
    from imgvault.tracker.sealing.image_files import THUMBNAIL, image_files

    gray = skimage.data.camera()[::8, ::8]
    color = skimage.data.astronaut()[::8, ::8]
    for original, mode in ((gray, "L"), (color, "RGB")):
        drawn = figure(original, original[::-1], original, title="a caption")
        files = image_files(drawn)
        with Image.open(io.BytesIO(files.png)) as png, Image.open(io.BytesIO(files.thumbnail)) as thumbnail:
            assert (png.format, png.mode) == ("PNG", mode)
            assert np.array_equal(np.asarray(png.convert("RGB")), drawn)
            assert thumbnail.format == "WEBP" and max(thumbnail.size) == THUMBNAIL


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_marks_runs_killed_and_leaves_nothing_half_written(photos, home, jobs):
    store, _ = photos
    calls = 0

    def interrupt_in_second_configuration():
        nonlocal calls
        calls += 1
        if calls == 6 + 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(store, "photos", BatchConfig(methods=("pca", "kmeans"), ks=(2,), **{**SMALL, "jobs": jobs}),
                  advance=interrupt_in_second_configuration)  # fmt: skip
    runs = client(home).search_runs([client(home).get_experiment_by_name("imgvault/photos").experiment_id])
    statuses = {r.info.run_name: r.info.status for r in runs}
    assert statuses["pca k=2"] == "FINISHED"
    assert statuses["kmeans k=2"] == "KILLED"
    assert [s for name, s in statuses.items() if "·" in name] == ["KILLED"]
    # The finished configuration is stored whole, the interrupted one not at all.
    assert sorted(e.method for e in store.encoded_images()) == ["pca"] * 6


def test_an_unreachable_tracking_server_fails_before_any_work(photos, home, monkeypatch):
    store, _ = photos
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"cannot reach the MLflow tracking store http://127\.0\.0\.1:1"):
        run_batch(store, "photos", BatchConfig(**SMALL))
    assert list(store.encoded_images()) == []


# -- command line --------------------------------------------------------------------------------------


def test_run_json_and_compare_report_the_same_numbers(photos, runner):
    store, _ = photos
    store.close()
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "pca,aes", "-k", "2", "--size", "32",
                                 "--jobs", "1", "--figures", "1", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"experiment_id", "parent_run_id", "collection", "runs"}
    assert [(r["method"], r["k"]) for r in out["runs"]] == [("pca", 2), ("aes", None)]
    assert {"mse", "psnr", "ssim", "bpp"} <= set(out["runs"][0]["metrics"])
    assert out["runs"][1]["metrics"]["exact_fraction"] == 1.0 and "psnr" not in out["runs"][1]["metrics"]
    assert out["runs"][1]["not_applicable"]["npcr"].startswith("randomized encryption")
    compared = json.loads(runner.invoke(cli, ["compare", "-c", "photos", "--json"]).stdout)
    by_method = {row["method"]: row for row in compared}
    assert by_method["pca"]["ssim"] == pytest.approx(out["runs"][0]["metrics"]["ssim"])
    assert by_method["pca"]["run_id"] == out["runs"][0]["run_id"]
    lines = runner.invoke(cli, ["compare"]).stdout.splitlines()
    table = lines[: lines.index("")]  # the quality table; the security table follows
    assert table[0].split()[:3] == ["COLLECTION", "METHOD", "K"]
    assert [line.split()[1] for line in table[1:]] == ["aes", "pca"]
    assert table[1].split()[6:10] == ["6", "0", "0.000", "inf"]  # USED, FAILED, MSE, PSNR of aes


def test_run_exits_1_when_an_image_fails_and_says_which(photos, runner):
    store, _images = photos
    store.close()
    # Moon has 75 grey levels at 32x32, Chelsea 146: K-Means cannot find 150 clusters in either.
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "kmeans", "-k", "150", "--size", "32",
                                 "--jobs", "1"])  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 2 and all(
        re.fullmatch(r"Error: kmeans k=150: failed on 1 of 6 images \(\w+\): k=150 is too large: the image\(s\) have"
                     r" only (75|146) distinct pixel values to cluster, so k can be at most \1", line)
        for line in errors
    )  # fmt: skip


def test_a_k_that_no_image_could_take_is_refused_before_any_run_starts(photos, runner, home):
    store, _images = photos
    store.close()
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "kmeans,pca", "-k", "200", "--size", "32"])
    assert result.exit_code == 1
    assert result.stderr == ("Error: pca k=200: k=200 is too large: PCA on the rows of 1 image(s) of 32x32 has 32"
                             " dimensions, so k can be at most 32\n")  # fmt: skip
    assert client(home).search_experiments(filter_string="name = 'imgvault/photos'") == []  # no run, not even kmeans


def test_compare_counts_used_and_failed_images_and_lists_a_wholly_failed_configuration(photos, runner):
    photos[0].close()
    # At 32x32, none of the 6 photos has 230 grey levels for K-Means, and 4 of them have fewer than 200.
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "kmeans", "-k", "200,230", "--size", "32",
                                 "--jobs", "1", "--figures", "0"])  # fmt: skip
    assert result.exit_code == 1
    rows = {row["k"]: row for row in json.loads(runner.invoke(cli, ["compare", "-c", "photos", "--json"]).stdout)}
    wholly, partly = rows[230], rows[200]
    assert (wholly["status"], wholly["used_images"], wholly["failed_images"], wholly["ssim"]) == ("failed", 0, 6, None)
    assert wholly["error"].startswith("k=230 is too large: the image(s) have only")
    assert (partly["status"], partly["used_images"], partly["failed_images"]) == ("finished", 2, 4)
    assert partly["error"].startswith("k=200 is too large: the image(s) have only")
    lines = runner.invoke(cli, ["compare", "-c", "photos"]).stdout.splitlines()
    head = lines[0].split()
    [partly_line] = [line.split() for line in lines[1 : lines.index("")] if line.split()[2] == "200"]
    used = head.index("USED") + 1  # SIZE is two words: "32 gray"
    assert partly_line[used : used + 2] == ["2", "4"]
    assert "kmeans k=230 (image fit, 32 gray): failed on 6 of 6 images: " + wholly["error"] in lines
    assert any(line.startswith("kmeans k=200 (image fit, 32 gray): failed on 4 of 6 images: k=200 is too large")
               for line in lines)  # fmt: skip


def test_a_collection_model_that_cannot_have_its_k_is_refused_before_any_run(photos, runner, home):
    photos[0].close()
    result = runner.invoke(cli, ["run", "-c", "photos", "--fit", "collection", "-k", "8", "--size", "32",
                                 "--jobs", "1", "--figures", "0"])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: pca k=8: k=8 is too large: PCA of 6 whole image(s) (eigen-images) has at most 6 components, so k "
        "can be at most 6"
    ]
    assert client(home).search_experiments(filter_string="name = 'imgvault/photos'") == []


def test_a_batch_says_once_how_many_images_it_upscaled_and_by_how_much(photos, runner, home):
    store, _images = photos
    tiny = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tiny, format="PNG")
    # Only images smaller than the size are upscaled (the size itself is at least 11).
    store.put(tiny.getvalue(), name="tiny.png", collection="photos")
    store.close()
    result = runner.invoke(cli, ["run", "-c", "photos", "-m", "aes", "--size", "32", "--figures", "0", "-j", "1"])
    assert result.exit_code == 0, result.output
    note = ("1 of 7 images are smaller than 32x32 and are upscaled to it (by up to 4.0x, from 8 px): their metrics"
            " describe the upscaled images")  # fmt: skip
    assert result.stderr.splitlines() == [f"Warning: {note}"]
    with Store.open(home) as store:
        store.remove([image.id for image in store.images("photos") if image.width == 8])
    again = runner.invoke(cli, ["run", "-c", "photos", "-m", "aes", "--size", "32", "--figures", "0", "--json"])
    assert again.exit_code == 0 and again.stderr == "", again.output
    parent = json.loads(again.stdout)["parent_run_id"]
    assert "imgvault.upscaled" not in client(home).get_run(parent).data.tags
    first = client(home).search_runs([client(home).get_experiment_by_name("imgvault/photos").experiment_id],
                                     "tags.`imgvault.kind` = 'batch'", order_by=["start_time ASC"])[0]  # fmt: skip
    assert first.data.tags["imgvault.upscaled"] == note


def test_compare_of_a_collection_without_runs_is_an_error(photos, runner):
    photos[0].close()
    result = runner.invoke(cli, ["compare", "-c", "photos"])
    assert (result.exit_code, result.stderr) == (
        1, "Error: no finished runs for collection(s): photos (run: imgvault run -c NAME)\n")  # fmt: skip


def test_ui_serves_the_mlflow_ui_on_loopback(photos, home):
    store, _ = photos
    run_batch(store, "photos", BatchConfig(methods=("kmeans",), ks=(2,), **SMALL))
    store.close()
    port = free_port()
    env = {"IMGVAULT_HOME": str(home), "PATH": "/usr/bin:/bin"}
    # A session of its own, so that the test can always clean up everything the server started.
    server = subprocess.Popen([sys.executable, "-m", "imgvault.cli", "ui", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    html = page.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(server.stderr.read().decode()[-2000:]) from None
                time.sleep(0.1)  # polling: not up yet
        assert "<html" in html.lower()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
            data=json.dumps({"max_results": 10}).encode(), headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            names = [e["name"] for e in json.load(response)["experiments"]]
        assert "imgvault/photos" in names
        # Stopping `imgvault ui` stops MLflow's server processes with it: the port closes.
        server.terminate()
        server.wait(timeout=30)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        # It started quietly: its own two lines, none of MLflow's start-up messages or warnings.
        said = server.stderr.read().decode().splitlines()
        assert said == [
            f"MLflow UI for sqlite:///{home / 'mlflow.db'} at http://127.0.0.1:{port} (Ctrl-C to stop)",
            'If it opens on GenAI pages, choose "Model training" at the top left to see the runs.',
        ], said
    finally:
        import os
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        server.stderr.close()


def test_ui_on_a_busy_port_is_one_error_line_and_claims_nothing(photos, home):
    photos[0].close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "imgvault.cli", "ui", "--port", str(port)], timeout=120,
                              env={"IMGVAULT_HOME": str(home), "PATH": "/usr/bin:/bin"}, capture_output=True,
                              text=True)  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"Error: port {port} on 127.0.0.1 is in use: choose another with --port\n"


# -- security measures and the learning attack ----------------------------------------------------------


@pytest.fixture
def faces(store, home, migrated_tracking_db, monkeypatch, tmp_path):
    """A collection of 40 real faces (scikit-image's LFW subset) and a fresh MLflow store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    from imgvault.methods import to_uint8

    for n, face in enumerate(skimage.data.lfw_subset()[:40]):
        path = tmp_path / f"face-{n:03d}.png"
        Image.fromarray(to_uint8(face)).save(path)
        store.put(path, collection="faces")
    return store


def test_every_child_run_logs_the_security_measures_criteria_and_what_does_not_apply(photos, home):
    store, _ = photos
    result = run_batch(store, "photos", BatchConfig(methods=("kmeans", "aes"), ks=(8,), **SMALL))
    kmeans, aes = result.runs
    mlflow = client(home)
    for name in ("entropy", "corr_h", "corr_v", "corr_d", "chi2", "visual_ssim", "key_ssim", "entropy_pass_rate",
                 "chi2_pass_rate"):  # fmt: skip
        assert name in kmeans.metrics and name in aes.metrics, name
    entropy = read_table(mlflow, kmeans.run_id)
    assert len(entropy["data"]) == 6 and "entropy" in entropy["columns"]
    assert {"npcr", "uaci", "npcr_pass_rate"} <= set(kmeans.metrics)
    # AES draws a fresh nonce: NPCR and UACI are not applicable, stored as missing with the reason.
    assert not {"npcr", "uaci", "npcr_pass_rate"} & set(aes.metrics)
    tags = mlflow.get_run(aes.run_id).data.tags
    assert tags["imgvault.not_applicable.npcr"] == "randomized encryption: IND-CPA, no diffusion test"
    # The criteria are those of the payload in use: 32x32 bytes for AES, 32x32 labels on 8 levels for K-Means.
    logged = mlflow.get_run(aes.run_id).data.metrics
    assert logged["criterion/n"] == 1024 and logged["criterion/levels"] == 256
    assert logged["criterion/npcr_critical"] == pytest.approx(npcr_critical(1024))
    assert mlflow.get_run(kmeans.run_id).data.metrics["criterion/entropy_max"] == 3
    # K-Means' "encrypted image" is a posterised photo; AES's is noise.
    k, a = kmeans.metrics, aes.metrics
    assert k["corr_h"] > 0.6 and k["visual_ssim"] > 0.5 and k["key_ssim"] > 0.3 and k["npcr_pass_rate"] == 0
    assert abs(a["corr_h"]) < 0.1 and abs(a["visual_ssim"]) < 0.05 and abs(a["key_ssim"]) < 0.05
    assert a["entropy_pass_rate"] >= 0.5


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_kmeans_and_gmm_encrypted_images_keep_the_high_correlation_of_a_natural_image(method):
    from imgvault.methods import load_pixels, make_codec
    from imgvault.methods.encoding import measure

    with open(Path(skimage.data.__file__).parent / "camera.png", "rb") as handle:
        pixels = load_pixels(handle.read())
    metrics = measure(make_codec(method, k=8).fit(pixels[None]), pixels, method=method).metrics
    assert all(metrics[c] > 0.85 for c in ("corr_h", "corr_v")), metrics
    assert metrics["visual_ssim"] > 0.7


def test_aes_passes_the_tests_at_its_size_on_a_real_image():
    from imgvault.methods import load_pixels, make_codec
    from imgvault.methods.encoding import measure

    with open(Path(skimage.data.__file__).parent / "camera.png", "rb") as handle:
        pixels = load_pixels(handle.read())
    # AES's key and nonce come from the OS and cannot be seeded, so a test at alpha = 0.05 would fail a
    # perfect cipher one run in twenty; at alpha = 0.001 the bounds are still tight.
    from imgvault.methods.security import evaluate

    codec = make_codec("aes").fit(pixels[None])
    encoded = codec.encode(pixels[None])[0]
    security = evaluate(codec, pixels, encoded, measure(codec, pixels).original, alpha=0.001)
    metrics = security.metrics
    assert metrics["entropy_pass"] == metrics["chi2_pass"] == 1.0
    assert security.criteria["n"] == 100 * 100 and metrics["entropy"] > 7.97
    assert all(abs(metrics[c]) < 0.05 for c in ("corr_h", "corr_v", "corr_d"))


def test_the_learning_attack_gives_a_confidence_interval_and_an_out_of_sample_key_holder(faces):
    result = run_batch(faces, "faces", BatchConfig(methods=("pca", "aes"), ks=(8,), fit="collection", attack=True,
                                                   size=25, jobs=1, figures=0))  # fmt: skip
    pca, aes = (r.metrics for r in result.runs)
    for m in (pca, aes):
        assert m["attack_splits"] == 10 and m["attack_test_images"] == 12
        assert m["attack_gain_ci_low"] < m["attack_gain"] < m["attack_gain_ci_high"]
        assert m["attack_gain"] == pytest.approx(m["attack_ssim"] - m["attack_baseline_ssim"])
    # The key holder's SSIM on held-out images, with PCA fitted on the training part, is below the
    # in-sample SSIM of the collection's own model; the linear attacker matches it.
    assert pca["attack_key_holder_ssim"] < pca["ssim"] - 0.1
    assert abs(pca["attack_gap"]) < 0.05 and pca["attack_psnr_vs_key_holder"] > 25
    # Nothing is learnt from AES: the interval holds no gain worth the name.
    assert aes["attack_gain_ci_high"] < 0.02 and aes["attack_key_holder_ssim"] == 1.0
    # The wrong key is PCA fitted on the other half of the faces: another key, and it still decodes.
    assert pca["key_ssim"] > 0.1 and abs(aes["key_ssim"]) < 0.05


def test_the_attack_on_collection_pca_comes_within_005_ssim_of_the_key_holder_on_natural_tiles():
    from imgvault.methods import load_pixels, make_codec, to_uint8
    from imgvault.methods.attacks.inversion import learning_attack
    from imgvault.tracker.demo import tiles

    pixels = np.stack([load_pixels(data, size=25) for _, data in tiles(60)])

    def encodings(train):
        codec = make_codec("pca", k=8, fit="collection").fit(pixels[train])
        encoded = codec.encode(pixels)
        return list(encoded), list(to_uint8(codec.decode(encoded)))

    result = learning_attack(list(to_uint8(pixels)), encodings)
    assert result["attack_gap_ci_low"] > -0.05 and result["attack_gap_ci_high"] < 0.05, result
    assert result["attack_gain_ci_low"] > 0, result


def test_the_attack_refuses_a_collection_below_its_minimum_size(photos):
    store, _ = photos
    with pytest.raises(InvalidParameter, match=r'needs at least 10 images .*collection "photos" has 6'):
        run_batch(store, "photos", BatchConfig(attack=True, **SMALL))


def test_compare_and_the_html_report_show_the_security_of_each_method(faces, home, runner, tmp_path):
    run_batch(faces, "faces", BatchConfig(methods=("kmeans", "aes"), ks=(4,), attack=True, size=25, jobs=1,
                                          figures=0))  # fmt: skip
    faces.close()
    rows = {row["method"]: row for row in json.loads(runner.invoke(cli, ["compare", "--json"]).stdout)}
    for name in ("entropy", "corr_h", "visual_ssim", "key_ssim", "entropy_pass_rate", "attack_ssim",
                 "attack_key_holder_ssim", "attack_baseline_ssim", "attack_gain", "attack_gain_ci_low"):  # fmt: skip
        assert rows["kmeans"][name] is not None and rows["aes"][name] is not None, name
    assert rows["aes"]["npcr"] is None and "randomized" in rows["aes"]["not_applicable"]["npcr"]
    assert rows["kmeans"]["npcr"] < 1 and rows["kmeans"]["npcr_pass_rate"] == 0
    # The criteria are those at 25x25 = 625 values, not the N -> infinity ideals.
    assert rows["aes"]["criteria"]["entropy_expected"] == pytest.approx(7.671, abs=5e-4)
    assert rows["kmeans"]["criteria"]["levels"] == 4
    table = runner.invoke(cli, ["compare"]).stdout
    assert "Randomness tests at each payload's size N" in table and "7.671±0.028" in table
    assert "n/a: aes (image fit) npcr, uaci: randomized encryption: IND-CPA, no diffusion test" in table
    result = runner.invoke(cli, ["report", "-c", "faces", "-o", str(tmp_path / "faces.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "faces.html").read_text()
    assert page.startswith("<!doctype html>") and "imgvault report: faces" in page
    assert page.count("data:image/png;base64,") == 4  # SSIM and PSNR against bpp, security, attack: all embedded
    assert f"{rows['kmeans']['attack_ssim']:.3f}" in page
    assert "N/A: randomized encryption: IND-CPA, no diffusion test" in page and "7.671 ± 0.028" in page
    assert "Wang et al. 2004" in page
    assert not external_references(page)


def test_compare_s_security_tables_tell_two_settings_of_one_method_apart(photos, runner):
    photos[0].close()
    for size in ("16", "24"):
        result = runner.invoke(cli, ["run", "-c", "photos", "-m", "aes", "--size", size, "--figures", "0", "-j", "1"])
        assert result.exit_code == 0, result.output
    shown = runner.invoke(cli, ["compare", "-c", "photos"]).stdout
    security = shown[shown.index("Security of the encrypted payloads") :].split("\n\n")[0].splitlines()
    assert "SIZE" in security[1]
    assert sorted(line.split()[4] for line in security[2:]) == ["16", "24"]  # "16 gray", "24 gray"
    randomness = shown[shown.index("Randomness tests") :].split("\n\n")[0].splitlines()
    assert "SIZE" in randomness[1] and len([line for line in randomness if line.startswith("photos")]) == 2
