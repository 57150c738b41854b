"""The gallery's compare page, in a real browser: every built-in method's runs, one image through each, no script."""

import os
import sys

import pytest
import skimage.data
from conftest import PHOTOS, SKIMAGE_DATA, tracked_store
from servers import CHROMIUM, CHROMIUM_ARGS, free_port, serving

from imgvault.methods.registry import METHOD_NAMES
from imgvault.store.tokens import create_token
from imgvault.tracker.runs import BatchConfig, run_batch

pytestmark = pytest.mark.slow
LOADED = "img => img.complete && img.naturalWidth > 0"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, migrated_tracking_db):
    """`imgvault serve` on a home whose collection "photos" was run with every built-in method at 32x32, and a
    collection "faces" of 25-pixel faces; yields (url, token)."""
    root = tmp_path_factory.mktemp("compare")
    home = root / "vault"
    with tracked_store(home, migrated_tracking_db) as store:
        for name in PHOTOS:
            store.put(SKIMAGE_DATA / name, collection="photos")
        from imgvault.methods import to_uint8

        face = to_uint8(skimage.data.lfw_subset()[0])
        from PIL import Image

        Image.fromarray(face).save(root / "face.png")
        store.put(root / "face.png", collection="faces")
        run_batch(store, "photos", BatchConfig(methods=METHOD_NAMES, size=32, jobs=1, figures=0))
        _name, token = create_token(store, "viewer", read_only=True)
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "IMGVAULT_HOME": str(home)}
    with serving([sys.executable, "-m", "imgvault.cli", "serve", "--port", str(port)],
                 f"http://127.0.0.1:{port}/login", env):  # fmt: skip
        yield f"http://127.0.0.1:{port}", token


def test_the_compare_page_shows_every_method_and_one_image_through_each(gallery, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium) to run the browser test")
    from playwright.sync_api import expect, sync_playwright

    url, token = gallery
    media_headers = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )  # fmt: skip
        try:
            context = browser.new_context(java_script_enabled=False, viewport={"width": 1300, "height": 900})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("response", lambda r: media_headers.append(r.headers) if "/media/" in r.url else None)
            page.goto(f"{url}/")
            page.get_by_label("Token").fill(token)
            page.get_by_role("button", name="Sign in").click()
            response = page.goto(f"{url}/collections/photos/compare")
            assert response.status == 200
            html = page.content()
            assert "<script" not in html.lower()
            rows = page.locator("table.comparison tr")
            expect(rows).to_have_count(len(METHOD_NAMES) + 1)
            assert sorted(rows.nth(n).locator("td").first.inner_text() for n in range(1, len(METHOD_NAMES) + 1)) == \
                sorted(METHOD_NAMES)  # fmt: skip
            cells = page.locator("table.grid-compare img")
            expect(cells).to_have_count(2 * len(METHOD_NAMES))
            for n in range(2 * len(METHOD_NAMES)):
                cell = cells.nth(n)
                cell.scroll_into_view_if_needed()
                page.wait_for_function(LOADED, arg=cell.element_handle())
            assert page.locator("table.grid-compare").inner_text().count("inf") >= 6  # the lossless ones
            report = page.frame_locator("iframe")
            expect(report.locator("h1").first).to_contain_text("photos")
            page.screenshot(path=tmp_path / "compare.png", full_page=True)
            # The image page leads with a compact grid and the headline numbers, details folded.
            page.get_by_role("link", name="kmeans k=8 · 32 gray").click()
            sections = page.locator("section.encoding")
            expect(sections).to_have_count(len(METHOD_NAMES))
            expect(sections.first.locator(".headline")).to_contain_text("ssim")
            bottom = sections.last.bounding_box()
            assert bottom["y"] + bottom["height"] < 2500, bottom  # nine encodings within a few screens
            assert not sections.first.locator("details table").is_visible()
            # A 25-pixel face is shown at a size a person can see.
            page.goto(f"{url}/collections/faces/compare")
            original = page.locator("img.legible")
            page.wait_for_function(LOADED, arg=original.element_handle())
            assert original.bounding_box()["width"] >= 200
        finally:
            browser.close()
    assert media_headers and all(headers.get("cache-control") == "no-store" for headers in media_headers)
