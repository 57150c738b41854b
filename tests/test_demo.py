"""`imgvault demo --quick` from an empty folder, and its runs looked at in the MLflow UI in a real browser."""

import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from leaks import leaks, original_panel, pixel_runs
from mlflow import MlflowClient
from PIL import Image
from servers import CHROMIUM, CHROMIUM_ARGS, free_port, serving

from imgvault.cli import cli
from imgvault.methods import load_pixels, to_uint8
from imgvault.store import Settings, Store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = {"demo-photos": 6, "demo-tiles": 12, "demo-faces": 20, "demo-digits": 100, "demo-faces-labelled": 20}
ATTACKED = ("demo-faces", "demo-digits", "demo-faces-labelled")  # one model for all, k = 8, attacked
# Every method: the learnt codecs, AES and the literature's ciphers; the faces (attacked) at k = 8 only.
SWEPT = ("pca", "kmeans", "gmm", "le", "etc", "arnold")
KEYED = ["aes", "pe", "logistic"]
RUNS = {"demo-photos": [f"{m} k={k}" for m in SWEPT for k in (4, 8)] + KEYED,
        "demo-tiles": [f"{m} k={k}" for m in SWEPT for k in (4, 8)] + KEYED,
        "demo-faces": [f"{m} k=8" for m in SWEPT] + KEYED,
        # the labelled collections: four methods only in the quick demo
        **{name: ["pca k=8", "le k=8", "arnold k=8", "aes"] for name in ATTACKED[1:]}}  # fmt: skip
CLEAN = {name: None for name in ("IMGVAULT_HOME", "IMGVAULT_DB_URL", "IMGVAULT_KEY_FILE", "IMGVAULT_PASSPHRASE",
                                 "MLFLOW_TRACKING_URI")}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory, migrated_tracking_db):
    """A home where `imgvault demo --quick` ran once, from nothing; and what it printed."""
    home = tmp_path_factory.mktemp("demo") / "imgvault-data"
    home.mkdir()
    shutil.copy(migrated_tracking_db, home / "mlflow.db")  # MLflow's own migrations take seconds; not ours
    result = CliRunner(env=CLEAN).invoke(cli, ["--home", str(home), "demo", "--quick", "-j", "2"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return home, result


@pytest.fixture(autouse=True)
def demo_key(request, monkeypatch):
    """MLflow clients in this process open the demo's sealed artifacts with its store's key, found through
    IMGVAULT_HOME as every imgvault process finds it."""
    if "demo" in request.fixturenames:
        home, _ = request.getfixturevalue("demo")
        monkeypatch.setenv("IMGVAULT_HOME", str(home))


def _children(home: Path) -> dict[str, list]:
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    out = {}
    for name in COLLECTIONS:
        experiment = client.get_experiment_by_name(f"imgvault/{name}")
        out[name] = client.search_runs([experiment.experiment_id], "tags.`imgvault.kind` = 'child'")
    return out


def test_the_demo_stores_collections_runs_every_method_and_ends_with_the_report_ui_and_serve_commands(demo):
    home, result = demo
    with Store.open(settings=Settings.resolve(home, environ={})) as store:
        assert {c.name: c.images for c in store.collections()} == COLLECTIONS
        assert {image.metadata["source"] for image in store.images("demo-faces")} == {"imgvault demo"}
        assert {image.label for image in store.images("demo-faces")} == {None}
        # The labelled collections: as many images of each label
        assert store.label_counts("demo-digits") == {str(digit): 10 for digit in range(10)}
        assert store.label_counts("demo-faces-labelled") == {"face": 10, "non-face": 10}
        assert {(image.width, image.height) for image in store.images("demo-digits")} == {(32, 32)}
    for name, runs in _children(home).items():
        assert sorted(run.info.run_name for run in runs) == sorted(RUNS[name]), name
        assert {run.info.status for run in runs} == {"FINISHED"}
    faces = {run.info.run_name: run.data.metrics for run in _children(home)["demo-faces"]}
    # the faces collection is large enough for the learning attack, and the ciphers meet the matrix's attacks
    assert "attack_ssim" in faces["pca k=8"] and "attack_ssim" in faces["le k=8"]
    assert any(name.startswith("attack/inversion_blocks/") for name in faces["le k=8"])
    out = result.stdout
    assert "demo-photos: 6 images (6 added)" in out
    # quality, security and randomness-test tables (the attack's lists the faces only)
    # (columns as wide as the longest collection name)
    assert "Security of the encrypted payloads" in out and len(re.findall(r"^demo-tiles +kmeans ", out, re.M)) == 6
    assert re.search(r"^demo-faces +arnold k=8 ", out, re.M)  # the threat matrix holds the ciphers
    report = (home / "demo-report.html").read_text()
    assert all(f'<section id="collection-{name}" class="top">' in report for name in COLLECTIONS)
    # SSIM and PSNR against bpp (a panel per collection), security per collection, the attack on the faces
    # and the privacy-utility frontier of each labelled collection
    assert len(re.findall(r'src="data:image/png;base64,', report)) == 2 + 5 + 3 + 2
    assert report.count("<h3>Privacy-utility frontier</h3>") == 2
    # The last three lines: the report's path, then the MLflow UI's and the gallery's commands, to paste.
    assert out.rstrip().splitlines()[-3:] == [f"  {home / 'demo-report.html'}", f"  imgvault --home {home} ui",
                                              f"  imgvault --home {home} serve"]  # fmt: skip


def test_every_child_run_has_labelled_figures_of_its_images(demo):
    home, _ = demo
    [run] = [r for r in _children(home)["demo-faces"] if r.info.run_name == "kmeans k=8"]
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    pngs = [a.path for a in client.list_artifacts(run.info.run_id, "images") if a.path.endswith(".png")]
    assert len(pngs) == 10  # --figures 10 for the faces
    with Image.open(client.download_artifacts(run.info.run_id, pngs[0])) as shown:
        # Four panels of 24x24 pixels enlarged 6 times, with a label row above and a caption below.
        assert shown.width == 4 * 144 + 3 * 6 and shown.height > 144 + 18 + 16


def test_the_mlflow_ui_shows_the_method_runs_and_a_logged_figure_in_a_real_browser(demo, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium) to run the browser test")
    from playwright.sync_api import expect, sync_playwright

    home, _ = demo
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "imgvault.cli", "--home", str(home), "ui", "--port", str(port)]
    with serving(command, f"http://127.0.0.1:{port}/health", env), sync_playwright() as playwright:
        # Flags for a closed network: no background fetches that would fail over and over.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            # The runs table renders after its data arrives; a busy 2-core machine needs more than 5 s.
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            page.goto(f"http://127.0.0.1:{port}/")
            # MLflow 3 opens on its GenAI pages; a person picks "Model training" to see runs.
            page.get_by_text("Model training", exact=True).click()
            page.get_by_role("link", name="Experiments").first.click()
            page.get_by_role("link", name="imgvault/demo-faces", exact=True).click()
            parent = page.locator("[role=row]", has_text="demo-faces · collection fit").first
            expect(parent).to_be_visible()
            parent.locator("button[data-component-id*=runnamecellrenderer]").click()  # unfold the child runs
            for name in RUNS["demo-faces"]:
                expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
            page.get_by_role("link", name="kmeans k=8", exact=True).click()
            page.get_by_role("tab", name="Artifacts").click()
            page.get_by_text("images", exact=True).click()
            page.get_by_text("original-encrypted-decrypted-error+step+0+").filter(has_text=".png").first.click()
            figure = page.locator("img[alt^='images/original-encrypted-decrypted-error+step+0+']")
            expect(figure).to_be_visible()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.element_handle())
            width, height = figure.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            # The bytes the browser shows, as it fetched them from the UI (decrypted by the server, in memory).
            shown_bytes = bytes(figure.evaluate(
                "async img => Array.from(new Uint8Array(await (await fetch(img.src)).arrayBuffer()))"))  # fmt: skip
            page.screenshot(path=tmp_path / "mlflow-ui-figure.png")
        finally:
            browser.close()
    # The browser decoded the very figure that was logged.
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    [run] = [r for r in _children(home)["demo-faces"] if r.info.run_name == "kmeans k=8"]
    [logged] = [a.path for a in client.list_artifacts(run.info.run_id, "images") if "+step+0+" in a.path
                and a.path.endswith(".png")]  # fmt: skip
    with Image.open(client.download_artifacts(run.info.run_id, logged, str(tmp_path))) as shown:
        assert (width, height) == shown.size
    # Its "original" panel is the stored image of step 0, as every method sees it (25x25 gray).
    with open(client.download_artifacts(run.info.run_id, "images.json", str(tmp_path))) as handle:
        table = json.load(handle)
    first = table["data"][0][table["columns"].index("image_id")]
    with Store.open(settings=Settings.resolve(home, environ={})) as store:
        expected = to_uint8(load_pixels(store.get(first), size=24))
    assert np.array_equal(original_panel(shown_bytes, 24)[:, :, 0], expected)
    assert (tmp_path / "mlflow-ui-figure.png").stat().st_size > 10_000


def test_the_demo_leaves_no_image_no_file_name_and_no_pixels_outside_the_store(demo):
    home, _ = demo
    settings = Settings.resolve(home, environ={})
    runs, names = set(), []
    with Store.open(settings=settings) as store:
        for collection, size, color in (
            ("demo-photos", 48, "rgb"),
            ("demo-tiles", 48, "gray"),
            ("demo-faces", 24, "gray"),
            ("demo-digits", 16, "gray"),
            ("demo-faces-labelled", 24, "gray"),
        ):  # what --quick runs
            runs |= pixel_runs(store, collection, size=size, color=color)
            names += [image.name for image in store.images(collection)]
    assert len(names) == sum(COLLECTIONS.values()) and len(runs) > 10_000
    assert len(list((home / "mlartifacts").rglob("*.png"))) > 100
    # Only the store's database and key file hold what the images hold (sealed); MLflow's database and
    # artifacts, and the report, hold no image, no file name and no run of pixels.
    assert leaks(home, names, runs, skip=("store.db", "store.db-wal", "store.db-shm", "keyset.json")) == []
    report = (home / "demo-report.html").read_text()
    assert "This report contains no image pixels" in report


def test_a_second_demo_reuses_the_collections_and_adds_new_runs(demo, monkeypatch):
    import dataclasses

    import imgvault.tracker.demo as demo_module

    home, _ = demo
    quick = demo_module.collections

    def cheaper(quick_demo: bool):
        # What this test is about is the reuse: the same collections, images and runs (methods and k) as the
        # first demo, without the learning attack and the figures, which the first demo's tests look at.
        return [dataclasses.replace(one, config=dataclasses.replace(one.config, attack=False, figures=0))
                for one in quick(quick_demo)]  # fmt: skip

    monkeypatch.setattr(demo_module, "collections", cheaper)
    result = CliRunner(env=CLEAN).invoke(cli, ["--home", str(home), "demo", "--quick", "-j", "2"])
    assert result.exit_code == 0, result.output
    assert "demo-faces: 20 images (0 added, 20 already stored)" in result.stdout
    with Store.open(settings=Settings.resolve(home, environ={})) as store:
        assert {c.name: c.images for c in store.collections()} == COLLECTIONS
    twice = {name: 2 * len(runs) for name, runs in RUNS.items()}
    assert {name: len(runs) for name, runs in _children(home).items()} == twice


def test_the_demo_faces_are_the_lfw_subsets_100_faces_not_its_non_faces():
    import skimage.data

    from imgvault.tracker.demo import faces

    found = faces(200)
    assert len(found) == 100
    last = np.asarray(Image.open(io.BytesIO(found[-1][1])))
    assert np.array_equal(last, to_uint8(skimage.data.lfw_subset()[99]))


def test_the_labelled_demo_collections_are_digits_by_class_and_lfw_faces_and_non_faces():
    import skimage.data
    from sklearn.datasets import load_digits

    from imgvault.tracker.demo import digits, labelled_faces

    found = digits(50)
    assert [label for _, _, label in found].count("3") == 5 and len(found) == 50
    name, data, label = found[0]
    assert (name, label) == ("digit-0-0000.png", "0")
    with Image.open(io.BytesIO(data)) as first:
        assert (first.size, first.mode) == ((32, 32), "L")
        # upscaled: the 8x8 digit, shrunk back, is close to scikit-learn's (0-16 made 0-255)
        small = np.asarray(first.resize((8, 8), Image.Resampling.BOX), dtype=float)
    assert np.abs(small - load_digits().images[0] * 255 / 16).mean() < 20
    both = labelled_faces(200)
    assert [label for _, _, label in both] == ["face"] * 100 + ["non-face"] * 100
    last = np.asarray(Image.open(io.BytesIO(both[-1][1])))
    assert np.array_equal(last, to_uint8(skimage.data.lfw_subset()[199]))


def test_the_pages_demo_block_has_the_lines_the_demo_prints_numbers_aside(demo):
    """The tour of the command line (docs/cli.md) shows a quick demo: this one prints the same lines (numbers
    aside: the attack's splits are random), and docs/readme_examples.py abbreviates both the same way."""
    import difflib
    import importlib.util

    home, result = demo
    spec = importlib.util.spec_from_file_location("readme_examples", ROOT / "docs" / "readme_examples.py")
    examples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(examples)
    shown_on = {page: b for page, b in examples.console_blocks(examples.pages()) if examples.key_of(b) == examples.DEMO}
    assert "docs/cli.md" in shown_on

    def shape(text: str) -> list[str]:
        text = examples.normalise(text.replace(str(home), "/home/me/imgvault-data"))
        text = re.sub(r"[-+]?\d[\d,.]*(±[\d.]+)?", "N", text)
        text = re.sub(r"N(,N)+", "N", text)
        # The attack's model is chosen per split, from the data: which ones differs with fewer faces.
        return [re.sub(r"( \w+ N/N)+$", " MODELS", line) for line in text.splitlines() if line != "..."]

    quick = examples.abbreviate_demo(f"$ imgvault --home {home} demo\n{result.output}")
    for page, shown in shown_on.items():
        assert shape(quick)[1:] == shape(shown)[1:], "\n".join(
            difflib.unified_diff(shape(shown), shape(quick), page, "now", lineterm="")
        )
