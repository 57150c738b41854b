"""`imgvault serve`: a real server in a subprocess on loopback, driven with httpx (and a real browser)."""

import io
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import sample_images
from leaks import leaks
from PIL import Image
from servers import CHROMIUM, CHROMIUM_ARGS, free_port, serving

from imgvault.cli import cli
from imgvault.store import Settings, Store
from imgvault.store.tokens import create_token, revoke_token

pytestmark = pytest.mark.slow

LOADED = "img => img.complete && img.naturalWidth > 0"
PHOTOS = sample_images()
CLEAN = ("IMGVAULT_HOME", "IMGVAULT_DB_URL", "IMGVAULT_KEY_FILE", "IMGVAULT_PASSPHRASE", "MLFLOW_TRACKING_URI")


def noise_png(width: int, height: int, seed: int) -> bytes:
    """A PNG that does not compress: its size is about 3 bytes a pixel."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


class Server:
    def __init__(self, url: str, home: Path, tmp: Path, user_home: Path, pid: int, tokens: dict[str, str]):
        self.url, self.home, self.tmp, self.user_home, self.pid, self.tokens = url, home, tmp, user_home, pid, tokens

    def client(self, token: str | None = "writer") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)

    def open_files_in_tmp(self) -> list[str]:
        """Files the server process holds open in its temporary folder (deleted ones too)."""
        found = []
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(self.tmp)):
                found.append(target)
        return found


@pytest.fixture(scope="module")
def server(tmp_path_factory, migrated_tracking_db):
    """A store with the sample photos in "photos" and 7 tiles in "tiles", its tokens, and `imgvault serve` on it.

    The server runs with a home and a temporary folder of its own, to look into afterwards.
    """
    root = tmp_path_factory.mktemp("serve")
    home, tmp, user_home = root / "vault", root / "tmp", root / "home"
    tmp.mkdir()
    user_home.mkdir()
    with Store.init(settings=Settings.resolve(home, environ={})) as store:
        for name, data in PHOTOS.items():
            store.put(data, collection="photos", name=name)
        for n in range(7):
            store.put(noise_png(24, 24, n), collection="tiles", name=f"tile-{n}.png")
        tokens = {name: create_token(store, name, read_only=name == "reader")[1] for name in ("writer", "reader")}
        tokens["revoked"] = create_token(store, "revoked")[1]
        revoke_token(store, "revoked")
    shutil.copy(migrated_tracking_db, home / "mlflow.db")  # MLflow's own migrations take seconds; not ours
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(user_home), "TMPDIR": str(tmp), "IMGVAULT_HOME": str(home)}
    command = [sys.executable, "-m", "imgvault.cli", "serve", "--port", str(port)]
    with serving(command, f"http://127.0.0.1:{port}/login", env) as process:
        yield Server(f"http://127.0.0.1:{port}", home, tmp, user_home, process.pid, tokens)


def open_store(server: Server) -> Store:
    return Store.open(settings=Settings.resolve(server.home, environ={}))


def is_problem(response: httpx.Response, status: int) -> bool:
    body = response.json()
    return (
        response.status_code == status
        and response.headers["content-type"] == "application/problem+json"
        and body["status"] == status
        and body["title"]
        and "Traceback" not in response.text
    )


# -- the API -------------------------------------------------------------------------------------------


def test_a_request_without_a_valid_token_is_refused_with_401(server):
    with open_store(server) as store:
        image_id = next(store.images("photos")).id
    # The content path is answered by a fast path in front of the application: it must refuse the same way.
    for path in ("/collections", f"/images/{image_id}/content"):
        for headers in ({}, {"Authorization": "Bearer ivt_not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                        {"Authorization": f"Bearer {server.tokens['revoked']}"},
                        {"Authorization": "Bearer"}):  # fmt: skip
            with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers) as client:
                response = client.get(path)
                assert is_problem(response, 401), (path, headers, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer")
    with server.client() as client:
        assert client.get("/collections").status_code == 200


def test_a_token_revoked_while_the_server_runs_is_refused_at_its_next_request(server):
    with Store.open(settings=Settings.resolve(server.home, environ={})) as store:
        _, token = create_token(store, "short-lived")
        content = f"/images/{next(store.images('photos')).id}/content"
    with httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(3):  # the server keeps valid tokens' records until the database changes
            assert client.get("/collections").status_code == 200
            assert client.get(content).status_code == 200
        result = CliRunner(env=dict.fromkeys(CLEAN)).invoke(cli, ["--home", str(server.home), "token", "revoke",
                                                                  "short-lived"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert is_problem(client.get(content), 401)
        assert is_problem(client.get("/collections"), 401)


def test_a_read_only_token_reads_but_every_write_is_forbidden(server):
    with server.client("reader") as client:
        [image] = client.get("/collections/tiles/images", params={"page_size": 1}).json()["images"]
        assert client.get(f"/images/{image['id']}/content").status_code == 200
        assert is_problem(client.delete(f"/images/{image['id']}"), 403)
        assert is_problem(client.post(f"/images/{image['id']}/encoded", json={"method": "aes"}), 403)
        upload = client.post("/collections/tiles/images", files=[("files", ("t.png", noise_png(8, 8, 99)))])
        assert is_problem(upload, 403)
    with server.client() as client:
        assert client.get(f"/images/{image['id']}").status_code == 200  # still there
        assert client.get("/collections").json()["collections"][1]["images"] >= 7


def test_paging_through_a_collection_gives_every_image_once_in_the_order_they_were_put(server):
    with open_store(server) as store:
        expected = [image.to_dict() for image in store.images("photos")]
    pages, token = [], None
    with server.client() as client:
        while True:
            body = client.get("/collections/photos/images", params={"page_size": 5, "page_token": token}).json()
            pages.append(body["images"])
            token = body["next_page_token"]
            if token is None:
                break
        assert is_problem(client.get("/collections/photos/images", params={"page_size": 10_000}), 422)
        assert is_problem(client.get("/collections/photos/images", params={"page_token": "bm90LWEtdG9rZW4"}), 422)
        assert is_problem(client.get("/collections/no-such/images"), 404)
    assert len(pages) == -(-len(PHOTOS) // 5) and all(len(page) == 5 for page in pages[:-1])
    assert [image for page in pages for image in page] == expected  # the fields of `ls --json`


def test_content_is_the_exact_bytes_that_were_put_with_their_content_type(server):
    types = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "TIFF": "image/tiff", "BMP": "image/bmp",
             "WEBP": "image/webp"}  # fmt: skip
    with server.client() as client:
        listing = client.get("/collections/photos/images", params={"page_size": 100})
        images = listing.json()["images"]
        assert {image["name"] for image in images} == set(PHOTOS)
        for image in images:
            response = client.get(f"/images/{image['id']}/content")
            assert response.content == PHOTOS[image["name"]], image["name"]
            assert response.headers["content-type"] == types[image["format"]]
            assert response.headers["cache-control"] == "no-store"
            for name in ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"):
                assert response.headers[name] == listing.headers[name], name
            thumbnail = client.get(f"/images/{image['id']}/thumbnail", params={"size": 64})
            with Image.open(io.BytesIO(thumbnail.content)) as shown:
                assert shown.format == "PNG" and max(shown.size) <= 64, image["name"]


def test_malformed_ids_are_422_and_unknown_ids_404_as_problem_details(server):
    with server.client() as client:
        for path in ("/images/not-an-id", "/images/../../etc/passwd/content", "/encoded/xyz/reconstruction"):
            response = client.get(path)
            assert response.status_code in (404, 422) and response.headers["content-type"] == "application/problem+json"
        assert is_problem(client.get("/images/not-an-id"), 422)
        assert is_problem(client.get("/images/01ARZ3NDEKTSV4RRFFQ69G5FAV/content"), 404)
        assert is_problem(client.delete("/images/01ARZ3NDEKTSV4RRFFQ69G5FAV"), 404)
        assert is_problem(client.get("/encoded/01ARZ3NDEKTSV4RRFFQ69G5FAV/reconstruction"), 404)
        assert client.get("/openapi.json").json()["info"]["title"] == "imgvault"


def test_an_upload_stores_the_good_files_and_reports_each_bad_one(server):
    good = {"flower.bmp": PHOTOS["flower.bmp"], "noise.png": noise_png(40, 30, 1)}
    files = [("files", (name, data)) for name, data in good.items()]
    files += [("files", ("empty.png", b"")), ("files", ("text.png", b"not an image at all"))]
    with server.client() as client:
        response = client.post("/collections/uploaded/images", files=files)
        assert response.status_code == 207, response.text
        body = response.json()
        assert (body["stored"], body["failed"]) == (2, 2)
        results = {r["file"]: r for r in body["results"]}
        assert results["empty.png"]["error"] == "empty.png: empty file (0 bytes)"
        assert "text.png" in results["text.png"]["error"]
        for name, data in good.items():
            assert client.get(f"/images/{results[name]['image']['id']}/content").content == data
        refused = client.post("/collections/uploaded/images", files=[("files", ("text.png", b"nope"))])
        assert is_problem(refused, 422) and refused.json()["failed"] == 1
        assert is_problem(client.post("/collections/uploaded/images", content=b"x"), 415)


def test_an_upload_with_a_label_field_labels_every_file_and_a_bad_label_stores_nothing(server):
    files = [("files", ("a.png", noise_png(16, 16, 5))), ("files", ("b.png", noise_png(16, 16, 6)))]
    with server.client() as client:
        response = client.post("/collections/labelled/images", files=files, data={"label": "noise"})
        assert response.status_code == 201, response.text
        assert [r["image"]["metadata"] for r in response.json()["results"]] == [{"label": "noise"}] * 2
        for bad, message in [("", "a label cannot be empty"), ("a\x1bb", "a label cannot contain control characters")]:
            refused = client.post("/collections/refused/images", files=files, data={"label": bad})
            assert is_problem(refused, 422) and message in refused.text
        assert is_problem(client.get("/collections/refused/images"), 404)
    with Store.open(settings=Settings.resolve(server.home, environ={})) as store:
        assert store.label_counts("labelled") == {"noise": 2}


def test_an_upload_beyond_the_size_limit_is_refused_before_it_is_read(server):
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as connection:
        connection.sendall(
            f"POST /api/v1/collections/big/images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.tokens['writer']}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {300 * 1024 * 1024}\r\n\r\n".encode()
        )
        reply = connection.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413 "), reply[:200]


def test_an_upload_is_held_in_memory_never_in_a_temporary_file(server):
    """python-multipart, as Starlette uses it, spools a part past 1 MiB to a file in TMPDIR: not here."""
    big = noise_png(1000, 800, 7)  # 2.4 MB
    assert len(big) > 2 * 1024 * 1024
    boundary = "imgvault-test-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()  # fmt: skip
    tail = f"\r\n--{boundary}--\r\n".encode()
    seen_open: list[str] = []

    def body():
        yield head + big[: 2 * 1024 * 1024]  # past the spooling threshold, and the rest held back
        for _ in range(20):  # while the server holds the first part of the file
            time.sleep(0.05)  # a slow client on purpose: the rest of the upload held back for a second
            seen_open.extend(server.open_files_in_tmp())
        yield big[2 * 1024 * 1024 :] + tail

    with server.client() as client:
        headers = {"content-type": f"multipart/form-data; boundary={boundary}",
                   "content-length": str(len(head + big + tail))}  # fmt: skip
        response = client.post("/collections/big/images", content=body(), headers=headers)
        assert response.status_code == 201, response.text
        image_id = response.json()["results"][0]["image"]["id"]
        assert client.get(f"/images/{image_id}/content").content == big
    assert seen_open == []
    assert list(server.tmp.iterdir()) == []


def test_delete_removes_the_image_and_its_encoded_images(server):
    with server.client() as client:
        stored = client.post("/collections/doomed/images", files=[("files", ("d.png", noise_png(16, 16, 3)))])
        image_id = stored.json()["results"][0]["image"]["id"]
        encoded = client.post(f"/images/{image_id}/encoded", json={"method": "aes", "size": 16})
        assert encoded.status_code == 201
        assert client.delete(f"/images/{image_id}").status_code == 204
        assert is_problem(client.get(f"/images/{image_id}"), 404)
        assert is_problem(client.get(f"/encoded/{encoded.json()['id']}/reconstruction"), 404)


def test_encoding_on_demand_stores_it_and_its_reconstruction_decodes(server):
    with server.client() as client:
        [image] = client.get("/collections/tiles/images", params={"page_size": 1}).json()["images"]
        response = client.post(f"/images/{image['id']}/encoded", json={"method": "aes", "size": 24, "colour": "rgb"})
        assert response.status_code == 201, response.text
        encoded = response.json()
        assert encoded["metrics"]["mse"] == 0.0 and encoded["params"]["color"] == "rgb"
        kmeans = client.post(f"/images/{image['id']}/encoded", json={"method": "kmeans", "k": 4, "size": 16})
        assert kmeans.status_code == 201
        listed = client.get(f"/images/{image['id']}/encoded").json()["encoded_images"]
        assert {e["id"] for e in listed} >= {encoded["id"], kmeans.json()["id"]}
        png = client.get(f"/encoded/{encoded['id']}/reconstruction")
        assert png.headers["content-type"] == "image/png"
        original = client.get(f"/images/{image['id']}/content").content
        with Image.open(io.BytesIO(png.content)) as shown, Image.open(io.BytesIO(original)) as put:
            assert np.array_equal(np.asarray(shown), np.asarray(put.convert("RGB")))  # aes is lossless, 24x24 as put
        assert is_problem(client.post(f"/images/{image['id']}/encoded", json={"method": "rot13"}), 422)
        assert is_problem(client.post(f"/images/{image['id']}/encoded", json={"method": "pca", "size": 5000}), 422)
        runs = client.get("/collections/tiles/runs")
        assert runs.status_code == 200 and runs.json() == {"runs": []}  # no `imgvault run` on it yet
        assert is_problem(client.get("/collections/no-such/runs"), 404)


# -- the gallery -------------------------------------------------------------------------------------------


def test_every_gallery_form_needs_its_csrf_token(server):
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get("/").status_code == 303  # to the sign-in page
        page = browser.get("/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        assert is_html_status(browser.post("/login", data={"token": server.tokens["writer"]}), 403)
        signed_in = browser.post("/login", data={"token": server.tokens["writer"], "csrf_token": csrf})
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        home = browser.get("/")
        assert home.status_code == 200 and "photos" in home.text
        session_csrf = home.text.split('name="csrf_token" value="')[1].split('"')[0]
        files = [("files", ("t.png", noise_png(8, 8, 5)))]
        # The upload's token is in the form's address: checked before its body is read.
        assert is_html_status(browser.post("/collections/tiles/upload", files=files), 403)
        assert is_html_status(browser.post("/collections/tiles/upload?csrf_token=x", files=files), 403)
        refused = browser.post("/collections/tiles/upload", files=files, data={"csrf_token": session_csrf})
        assert is_html_status(refused, 403)
        stored = browser.post("/collections/tiles/upload", files=files, params={"csrf_token": session_csrf})
        assert stored.status_code == 200 and "stored" in stored.text
        assert is_html_status(browser.post("/logout"), 415)
        assert is_html_status(browser.post("/logout", data={"csrf_token": ""}), 403)
        assert browser.post("/logout", data={"csrf_token": session_csrf}).status_code == 303
        assert browser.get("/").status_code == 303


def is_html_status(response: httpx.Response, status: int) -> bool:
    return response.status_code == status and response.headers["content-type"].startswith("text/html")


def test_the_gallery_in_a_real_browser_signs_in_shows_thumbnails_uploads_and_shows_encoded_images(server, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium) to run the browser test")
    from playwright.sync_api import expect, sync_playwright

    upload = tmp_path / "upload" / "rocket-upload.jpg"
    upload.parent.mkdir()
    upload.write_bytes(PHOTOS["rocket.jpg"])
    profile_dir = tmp_path / "profile"  # the browser's profile, with its disk cache
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile_dir, executable_path=CHROMIUM, viewport={"width": 1300, "height": 900},
            args=CHROMIUM_ARGS,
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            page.goto(f"{server.url}/")
            page.get_by_label("Token").fill(server.tokens["writer"])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="photos", exact=True).click()
            thumbnails = page.locator(".grid img")
            expect(thumbnails).to_have_count(len(PHOTOS))
            for n in range(len(PHOTOS)):
                page.wait_for_function(LOADED, arg=thumbnails.nth(n).element_handle())
            page.get_by_label("Upload images").set_input_files(upload)
            page.get_by_role("button", name="Upload", exact=True).click()
            page.get_by_role("link", name="rocket-upload.jpg").click()
            expect(page.get_by_role("heading", name="rocket-upload.jpg")).to_be_visible()
            page.get_by_text("Encode with a method").click()  # the form is folded under the image
            page.get_by_label("Method").select_option("kmeans")
            page.get_by_label("Size").fill("32")
            page.get_by_role("button", name="Encode", exact=True).click()
            panels = page.locator(".encoding img")
            expect(panels).to_have_count(4)
            for n in range(4):
                page.wait_for_function(LOADED + " && img.naturalWidth == 32", arg=panels.nth(n).element_handle())
            expect(page.locator(".encoding")).to_contain_text("ssim")
            page.screenshot(path=tmp_path / "gallery-image.png")
            profile = [p for p in profile_dir.rglob("*") if p.is_file()]
        finally:
            browser.close()
    with open_store(server) as store:
        [uploaded] = [i for i in store.images("photos") if i.name == "rocket-upload.jpg"]
        assert store.get(uploaded.id) == PHOTOS["rocket.jpg"]
        names = [image.name for c in ("photos", "tiles") for image in store.images(c)]
    # No plaintext left by the server (its home, its temporary folder, the store's home) or cached by the
    # browser (its profile, looked at before the browser removed it: Cache-Control: no-store).
    assert profile, "the browser's profile was not where it was looked for"
    assert [p for p in server.tmp.rglob("*") if p.is_file()] == []
    if any(p.is_file() for p in server.user_home.rglob("*")):  # MLflow's telemetry settings, once runs were read
        assert leaks(server.user_home, names, set()) == []
    assert leaks(server.home, names, set(), skip=("store.db", "store.db-wal", "store.db-shm", "keyset.json")) == []
    originals = [data[n : n + 64] for data in PHOTOS.values() for n in range(0, len(data) - 64, 4096)]
    cached = [str(path) for path in profile if path.exists() and any(chunk in path.read_bytes() for chunk in originals)]
    assert cached == []
