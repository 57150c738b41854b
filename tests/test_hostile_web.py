"""`imgvault serve` under a hostile user: what a request may name, and what it may cost the server."""

import http.client
import io
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import sample_images
from PIL import Image
from servers import free_port, serving

from imgvault.store import Settings, Store
from imgvault.store.tokens import create_token

pytestmark = pytest.mark.slow


class Gallery:
    def __init__(self, url: str, tokens: dict[str, str], image_id: str, marker: Path, pid: int, large_id: str):
        self.url, self.tokens, self.image_id, self.marker, self.pid = url, tokens, image_id, marker, pid
        self.large_id = large_id

    def signed_in(self, token: str = "writer") -> tuple[httpx.Client, str]:
        """A browser-like client signed in to the gallery, and its session's CSRF token."""
        browser = httpx.Client(base_url=self.url, timeout=60)
        page = browser.get("/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        assert browser.post("/login", data={"token": self.tokens[token], "csrf_token": csrf}).status_code == 303
        home = browser.get("/")
        return browser, home.text.split('name="csrf_token" value="')[1].split('"')[0]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """`imgvault serve` on a store with one photo, with a module on its path that leaves a file when imported."""
    root = tmp_path_factory.mktemp("hostile-web")
    home, modules = root / "vault", root / "modules"
    modules.mkdir()
    marker = root / "imported"
    (modules / "leaves_a_mark.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Codec: pass\n")
    big = io.BytesIO()
    Image.new("L", (9400, 9400), 90).save(big, "PNG")  # a few hundred KB that decode to 88 megapixels
    with Store.init(settings=Settings.resolve(home, environ={})) as store:
        image = store.put(sample_images()["camera-gray.png"], collection="photos", name="camera-gray.png")
        large = store.put(big.getvalue(), collection="large", name="large.png")
        tokens = {name: create_token(store, name, read_only=name == "reader")[1] for name in ("writer", "reader")}
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "IMGVAULT_HOME": str(home), "PYTHONPATH": str(modules),
           "IMGVAULT_DECODE_CPU_SECONDS": "0.05"}  # fmt: skip
    with serving([sys.executable, "-m", "imgvault.cli", "serve", "--port", str(port)],
                 f"http://127.0.0.1:{port}/login", env) as process:  # fmt: skip
        yield Gallery(f"http://127.0.0.1:{port}", tokens, image.id, marker, process.pid, large.id)


@pytest.mark.parametrize("method", ["leaves_a_mark:Codec", "leaves_a_mark", "this:x", "no-such-method"])
def test_the_gallery_encodes_only_with_built_in_or_installed_methods_and_imports_nothing_named(gallery, method):
    browser, csrf = gallery.signed_in()
    try:
        answer = browser.post(f"/images/{gallery.image_id}/encode",
                              data={"csrf_token": csrf, "method": method, "size": "32"})  # fmt: skip
    finally:
        browser.close()
    assert answer.status_code == 422, answer.text
    assert "unknown method" in answer.text
    assert not gallery.marker.exists()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _empty_parts(count: int) -> bytes:
    part = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n'
    return part * count + b"--b--\r\n"


def test_a_read_only_session_cannot_make_the_server_parse_an_upload(gallery):
    browser, csrf = gallery.signed_in("reader")
    body = _empty_parts(300_000)  # 15 MB of empty parts: each a Part object if parsed
    before = _rss_kib(gallery.pid)
    try:
        answer = browser.post(f"/collections/photos/upload?csrf_token={csrf}", content=body,
                              headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    finally:
        browser.close()
    assert answer.status_code == 403 and "read-only" in answer.text
    assert _rss_kib(gallery.pid) - before < 20_000  # KiB: the body was refused, not parsed


def test_an_upload_with_too_many_parts_is_refused_while_it_is_read(gallery):
    browser, csrf = gallery.signed_in("writer")
    try:
        answer = browser.post(f"/collections/photos/upload?csrf_token={csrf}", content=_empty_parts(100_000),
                              headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    finally:
        browser.close()
    assert answer.status_code == 413 and "parts" in answer.text


def test_an_upload_without_its_csrf_token_is_refused_before_its_body_is_read(gallery):
    browser, _csrf = gallery.signed_in("writer")
    try:
        answer = browser.post("/collections/photos/upload", content=_empty_parts(10),
                              headers={"Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    finally:
        browser.close()
    assert answer.status_code == 403


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_thumbnails_of_a_huge_image_cost_the_server_no_full_decode(gallery):
    def thumbnail(_n) -> httpx.Response:
        with httpx.Client(base_url=f"{gallery.url}/api/v1", timeout=120,
                          headers={"Authorization": f"Bearer {gallery.tokens['reader']}"}) as client:  # fmt: skip
            return client.get(f"/images/{gallery.large_id}/thumbnail", params={"size": 256})

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(thumbnail, range(4)))
    assert {a.status_code for a in answers} == {200}
    assert {a.headers.get("x-imgvault-preview") for a in answers} == {"too-large"}
    assert Image.open(io.BytesIO(answers[0].content)).size == (256, 256)
    assert _peak_rss_kib(gallery.pid) < 600_000  # KiB: four full decodes would be gigabytes
    with httpx.Client(base_url=f"{gallery.url}/api/v1", timeout=60,
                      headers={"Authorization": f"Bearer {gallery.tokens['reader']}"}) as client:  # fmt: skip
        ordinary = client.get(f"/images/{gallery.image_id}/thumbnail", params={"size": 64})
        again = client.get(f"/images/{gallery.image_id}/thumbnail", params={"size": 64})
    assert ordinary.status_code == 200 and "x-imgvault-preview" not in ordinary.headers
    assert Image.open(io.BytesIO(ordinary.content)).size == (64, 64)
    assert again.content == ordinary.content and again.headers["cache-control"] == "no-store"


def _closed_within(connection: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``connection`` within ``seconds`` (polled with a deadline)."""
    connection.settimeout(seconds)
    try:
        return connection.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_slow_clients_cannot_hold_the_servers_connections(tmp_path):
    home = tmp_path / "vault"
    Store.init(settings=Settings.resolve(home, environ={})).close()
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "IMGVAULT_HOME": str(home)}
    command = [sys.executable, "-m", "imgvault.cli", "serve", "--port", str(port), "--header-timeout", "1",
               "--max-connections", "8"]  # fmt: skip
    with serving(command, f"http://127.0.0.1:{port}/login", env):
        # Headers that never end, and a connection that sends nothing: both closed after the timeout.
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n")
        silent = socket.create_connection(("127.0.0.1", port))
        assert _closed_within(slow, 5) and _closed_within(silent, 5)
        # Past the cap, a new connection is closed at once; the server answers again once they go.
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        extra = socket.create_connection(("127.0.0.1", port))
        assert _closed_within(extra, 0.9)
        for one in held:
            one.close()
        assert httpx.get(f"http://127.0.0.1:{port}/login", timeout=10).status_code == 200
        for one in (slow, silent, extra):
            one.close()


def test_a_kept_alive_connection_waiting_between_requests_is_not_a_slow_client(tmp_path):
    # The header timeout starts at a request's first byte: a connection idle after its answer (within
    # uvicorn's keep-alive of 5 s) stays open past it, and its next request is answered.
    home = tmp_path / "vault"
    Store.init(settings=Settings.resolve(home, environ={})).close()
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "IMGVAULT_HOME": str(home)}
    command = [sys.executable, "-m", "imgvault.cli", "serve", "--port", str(port), "--header-timeout", "0.5"]
    with serving(command, f"http://127.0.0.1:{port}/login", env):
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        kept.request("GET", "/login")
        first = kept.getresponse()
        assert first.status == 200 and first.read()
        socket_used = kept.sock
        time.sleep(2)  # four header timeouts, idle
        kept.request("GET", "/login")
        assert kept.getresponse().status == 200 and kept.sock is socket_used  # the same connection answered
        kept.close()


def test_an_upload_over_the_cpu_budget_is_a_422_with_the_reason(gallery):
    import hostile

    with httpx.Client(base_url=f"{gallery.url}/api/v1", timeout=120,
                      headers={"Authorization": f"Bearer {gallery.tokens['writer']}"}) as client:  # fmt: skip
        answer = client.post("/collections/uploads/images",
                             files=[("files", ("bomb.jpg", hostile.jpeg_scan_bomb(2048, 600)))])  # fmt: skip
    assert answer.status_code == 422, answer.text
    [result] = answer.json()["results"]
    assert result["file"] == "bomb.jpg" and "took more than 0.05 s of CPU to decode" in result["error"]


def _api(gallery, token: str = "reader") -> httpx.Client:
    return httpx.Client(base_url=f"{gallery.url}/api/v1", timeout=60,
                        headers={"Authorization": f"Bearer {gallery.tokens[token]}"})  # fmt: skip


def _is_problem(answer: httpx.Response, status: int) -> bool:
    return answer.status_code == status and answer.headers["content-type"] == "application/problem+json" and (
        answer.json()["status"] == status)  # fmt: skip


def test_page_tokens_are_opaque_and_refused_when_forged_edited_or_moved(gallery):
    with _api(gallery, "writer") as client:
        for n in range(3):
            client.post(
                "/collections/paged/images", files=[("files", (f"{n}.png", sample_images()["camera-gray.png"]))]
            )
        first = client.get("/collections/paged/images", params={"page_size": 1}).json()
        token = first["next_page_token"]
        assert gallery.image_id not in token and first["images"][0]["id"] not in token  # opaque: no id to read
        assert client.get("/collections/paged/images", params={"page_size": 1, "page_token": token}).status_code == 200
        import base64

        forged = base64.urlsafe_b64encode(f"v1:{first['images'][0]['id']}".encode()).decode().rstrip("=")
        for bad in (token + "\n", token[:-1] + ("A" if token[-1] != "A" else "B"), forged, "x"):
            answer = client.get("/collections/paged/images", params={"page_size": 1, "page_token": bad})
            assert _is_problem(answer, 422), (bad, answer.text)
        moved = client.get("/collections/photos/images", params={"page_size": 1, "page_token": token})
        assert _is_problem(moved, 422)  # a token of another collection


def test_every_error_is_a_problem_document_405_included(gallery):
    with _api(gallery) as client:
        assert _is_problem(client.delete("/collections"), 405)
        assert _is_problem(client.put(f"/images/{gallery.image_id}/content"), 405)
        assert _is_problem(client.get("/nothing-here"), 404)


def test_the_openapi_document_declares_the_bearer_scheme_typed_bodies_and_problem_documents(gallery):
    document = httpx.get(f"{gallery.url}/api/v1/openapi.json", timeout=30).json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"][
            "description"]}  # fmt: skip
    listing = document["paths"]["/api/v1/collections/{name}/images"]["get"]
    assert listing["security"] == [{"bearer": []}]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImagesPage")
    for status in ("401", "404", "422"):
        assert "application/problem+json" in listing["responses"][status]["content"], status
    upload = document["paths"]["/api/v1/collections/{name}/images"]["post"]
    assert {"201", "207", "403", "413", "415"} <= set(upload["responses"])
    # And a page of it, made on the server: no script, nothing fetched from elsewhere.
    page = httpx.get(f"{gallery.url}/api/v1/docs", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "GET /api/v1/collections/{name}/images" in page.text
    assert "ImagesPage" in page.text and "application/problem+json" in page.text


def test_serve_on_a_busy_port_is_one_error_line_and_claims_nothing(tmp_path):
    home = tmp_path / "vault"
    Store.init(settings=Settings.resolve(home, environ={})).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "imgvault.cli", "serve", "--port", str(port)], timeout=120,
                              env={"PATH": os.environ["PATH"], "IMGVAULT_HOME": str(home)}, capture_output=True,
                              text=True)  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"Error: port {port} on 127.0.0.1 is in use: choose another with --port\n"
