"""The HTML report: its sections, the curves, the failures, and sample images only when asked for.

One small real home for the module: six photos from scikit-image at 32x32 (and K-Means with k = 230, which
none of them has the grey levels for, and k = 200, which four of them have not) and twelve LFW faces at 25x25,
tracked in MLflow.
"""

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from conftest import tracked_store
from leaks import leaks, original_panel, pixel_runs
from PIL import Image
from servers import CHROMIUM, CHROMIUM_ARGS

from imgvault.cli import cli
from imgvault.methods import load_pixels, to_uint8
from imgvault.store import Settings, Store
from imgvault.tracker.reports.compare import compare
from imgvault.tracker.reports.curves import rate_distortion_figure
from imgvault.tracker.reports.page import render_report
from imgvault.tracker.runs import BatchConfig, run_batch

pytestmark = pytest.mark.slow
PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "moon.png", "coins.png")
METHODS = ("pca", "kmeans", "aes")


@pytest.fixture(scope="module")
def home(tmp_path_factory, migrated_tracking_db):
    """A home with collections "photos" and "faces", each run with pca, kmeans and aes over a k sweep."""
    root = tmp_path_factory.mktemp("report")
    home = root / "vault"
    with tracked_store(home, migrated_tracking_db) as store:
        folder = Path(skimage.data.__file__).parent
        for name in PHOTOS:
            store.put(folder / name, collection="photos")
        for n, face in enumerate(skimage.data.lfw_subset()[:12]):
            path = root / f"face-{n:03d}.png"
            Image.fromarray(to_uint8(face)).save(path)
            store.put(path, collection="faces")
        run_batch(store, "photos", BatchConfig(methods=METHODS, ks=(2, 8), size=32, jobs=1, figures=0))
        run_batch(store, "photos", BatchConfig(methods=("kmeans",), ks=(200, 230), size=32, jobs=1, figures=0))
        run_batch(store, "faces", BatchConfig(methods=METHODS, ks=(2, 8), size=25, jobs=1, figures=0))
        yield home


@pytest.fixture(scope="module")
def page(home) -> str:
    return render_report(home, ["photos", "faces"])


def _section(page: str, section_id: str) -> str:
    start = page.index(f'<section id="{section_id}"')
    return page[start : page.index("</section>", start)]


def _embedded(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_the_report_opens_with_its_notice_a_table_of_contents_and_the_summary_across_collections(home, page):
    assert page.index('id="export-notice"') < page.index("<h1>") < page.index('<nav id="contents">')
    assert "This report contains no image pixels" in page
    # Every entry of the table of contents leads to a section of the page, and every section is listed.
    contents = page[page.index('<nav id="contents">') : page.index("</nav>")]
    targets = re.findall(r'href="#([^"]+)"', contents)
    sections = re.findall(r'<section id="([^"]+)"', page)
    assert targets == sections
    assert targets[:3] == ["summary", "rate-distortion", "failures"]
    assert {"collection-photos", "collection-faces", "collection-photos-quality", "collection-faces-tests"} <= set(
        targets
    )
    # The summary comes first and holds both collections side by side, one line per method and k.
    summary = _section(page, "summary")
    assert page.index(summary) < page.index('<section id="collection-photos"')
    assert re.findall(r'<th colspan="4" class="group">(\w+)<br>', summary) == ["photos", "faces"]
    line = re.search(r"<tr><td>kmeans k=8</td>(.*?)</tr>", summary).group(1)
    rows = {(r["collection"], r["method"], r["k"]): r for r in compare(home, ["photos", "faces"])}
    assert f"<td>{rows['photos', 'kmeans', 8]['ssim']:.3f}</td>" in line
    assert f"<td>{rows['faces', 'kmeans', 8]['ssim']:.3f}</td>" in line
    assert line.count("<td>6 of 6</td>") == 1 and line.count("<td>12 of 12</td>") == 1


def test_the_rate_distortion_curves_have_a_panel_per_collection_and_a_line_per_method(home, page):
    section = _section(page, "rate-distortion")
    assert section.count("data:image/png;base64,") == 2  # SSIM and PSNR against bits per pixel
    assert 'alt="SSIM against bits per pixel"' in section and 'alt="PSNR (dB) against bits per pixel"' in section
    rows = compare(home, ["photos", "faces"], with_failed=True)
    figure = rate_distortion_figure(rows, ["photos", "faces"], "ssim", "SSIM")
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == ["photos", "faces"]
    faces = panels[1]
    lines = {line.get_label(): line for line in faces.get_lines()}
    assert set(lines) == set(METHODS)
    # One point per k, in order of bits per pixel: a curve, not bars.
    assert len(lines["kmeans"].get_xdata()) == 2 and list(lines["kmeans"].get_xdata()) == sorted(
        lines["kmeans"].get_xdata()
    )
    assert [t.get_text() for t in faces.texts if t.get_text().startswith("k=")].count("k=8") == 2  # pca, kmeans
    # The labels stay horizontal, and one legend names the methods.
    assert all(label.get_rotation() == 0 for axis in panels for label in axis.get_xticklabels())
    [legend] = figure.legends
    assert sorted(t.get_text() for t in legend.get_texts()) == sorted(METHODS)


def test_failed_configurations_are_listed_with_their_error_and_each_row_counts_its_images(page):
    failures = _section(page, "failures")
    assert re.search(
        r"<li><strong>photos: kmeans k=230</strong> \(no result\): failed on 6 of 6 images: k=230 is too large: "
        r"the image\(s\) have only \d+ distinct pixel values to cluster, so k can be at most \d+</li>",
        failures,
    )
    assert re.search(r"photos: kmeans k=200</strong>: failed on 4 of 6 images: k=200 is too large", failures)
    assert "faces:" not in failures
    quality = _section(page, "collection-photos-quality")
    assert re.search(r'<tr><td>kmeans k=200</td><td>2 of 6</td><td><span class="failed">4</span></td>', quality)
    assert re.search(
        r'<tr><td>kmeans k=230</td><td>0 of 6</td><td><span class="failed">6</span></td>'
        r'<td colspan="4" class="error"><span class="failed">failed</span>: k=230 is too large',
        quality,
    )
    assert "<tr><td>aes</td><td>6 of 6</td><td>0</td>" in quality
    summary = _section(page, "summary")
    assert re.search(r'<tr><td>kmeans k=230</td><td><span class="failed">failed</span></td>', summary)


def test_without_images_the_report_holds_no_pixels_and_no_file_names(home, page, tmp_path):
    (tmp_path / "report.html").write_text(page)
    with Store.open(settings=Settings.resolve(home, environ={})) as store:
        runs = pixel_runs(store, "photos", size=32, color="gray") | pixel_runs(store, "faces", size=25, color="gray")
        names = [image.name for c in ("photos", "faces") for image in store.images(c)]
    assert leaks(tmp_path, names, runs) == []
    # Every embedded picture is a chart drawn by matplotlib; none is a sample panel.
    pictures = _embedded(page)
    assert len(pictures) == 2 + 2  # the rate-distortion pair, a security chart per collection
    for data in pictures:
        with Image.open(io.BytesIO(data)) as shown:
            assert shown.info["Software"].startswith("Matplotlib")
    assert 'class="sample"' not in page and "Sample images" not in page


def test_report_images_embeds_n_panels_per_method_decrypted_from_the_store_and_says_so(home, runner, tmp_path):
    output = tmp_path / "with-samples.html"
    result = runner.invoke(cli, ["--home", str(home), "report", "-c", "photos", "-c", "faces", "--images", "2",
                                 "-o", str(output)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == (
        f"Warning: {output} holds image pixels (2 sample image(s) per method, decrypted from the store): keep it "
        "as you keep the images"
    )
    page = output.read_text()
    notice = page[page.index('id="export-notice"') : page.index("</p>")]
    assert "This report contains image pixels" in notice and "no image pixels" not in page
    assert '<a href="#samples">Sample images</a>' in page
    for collection in ("photos", "faces"):
        samples = _section(page, f"collection-{collection}-samples")
        found = re.findall(r'<figure class="sample" data-method="(\w+)">', samples)
        assert sorted(found) == sorted([m for m in METHODS for _ in range(2)])
    # The panels show the stored images: the original panel of the first photo is its pixels at 32x32.
    first = _section(page, "collection-photos-samples")
    panel = _embedded(first)[0]
    with Store.open(settings=Settings.resolve(home, environ={})) as store:
        image = next(iter(store.images("photos")))
        expected = to_uint8(load_pixels(store.get(image.id), size=32, color="gray"))
    assert f"image {image.id}" in first
    assert np.array_equal(original_panel(panel, 32)[:, :, 0], expected)
    assert not any(name in page for name in PHOTOS)
    assert oct(output.stat().st_mode & 0o777) == "0o600"


def test_printed_on_a_page_nothing_overflows_and_sections_start_on_a_new_page(page, tmp_path):
    import os

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium to run the print test")
    from playwright.sync_api import sync_playwright

    (tmp_path / "report.html").write_text(page)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            shown = browser.new_page(viewport={"width": 700, "height": 1000})  # A4's width between margins
            shown.goto((tmp_path / "report.html").as_uri())
            shown.emulate_media(media="print")
            wider = shown.evaluate(
                """() => [...document.querySelectorAll('table, img, figure, p, ul')]
                     .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                     .map(e => e.tagName + ' ' + (e.closest('section') || {}).id)"""
            )
            breaks = shown.evaluate(
                """() => [...document.querySelectorAll('section.top')].map(e => getComputedStyle(e).breakBefore)"""
            )
            shown.pdf(path=str(tmp_path / "report.pdf"), format="A4")
        finally:
            browser.close()
    assert wider == []
    assert breaks[0] == "auto" and set(breaks[1:]) == {"page"}
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")


def test_report_images_shows_samples_of_methods_whose_knob_is_not_k(tmp_path, migrated_tracking_db, monkeypatch):
    # le and etc take a block size, arnold a number of iterations: their samples are found by that knob.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with Store.init(settings=Settings.resolve(tmp_path / "vault", environ={})) as store:
        shutil.copy(migrated_tracking_db, tmp_path / "vault" / "mlflow.db")
        for name in PHOTOS[:3]:
            store.put(Path(skimage.data.__file__).parent / name, collection="photos")
        run_batch(store, "photos", BatchConfig(methods=("le", "etc", "arnold"), size=32, jobs=1, figures=0))
        page = render_report(tmp_path / "vault", ["photos"], images=2, store=store)
    samples = _section(page, "collection-photos-samples")
    found = re.findall(r'<figure class="sample" data-method="(\w+)">', samples)
    assert sorted(found) == ["arnold", "arnold", "etc", "etc", "le", "le"]
