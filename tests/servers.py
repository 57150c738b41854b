"""Servers that tests start for real (MLflow UI and server, ...) and always stop, with all their processes."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(command: list[str], url: str, env: dict | None = None, timeout: float = 120) -> Iterator[subprocess.Popen]:
    """Run ``command`` in a session of its own until ``url`` answers; stop the whole session afterwards.

    A session of its own, so that the server's own children (uvicorn workers, ...) are stopped too.
    """
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    server.kill()
                    raise AssertionError(f"{url} did not answer: {server.stderr.read().decode()[-3000:]}") from None
                time.sleep(0.1)  # polling: not up yet
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        server.stderr.close()


# Debian's chromium, driven by Playwright (no browser download), with flags for a closed network: no
# background fetches that would fail over and over.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip


def start_ui(home, port: int, env: dict, **options) -> subprocess.Popen:
    """``imgvault ui`` on ``home`` in a session of its own, once it answers on ``port`` (its stderr piped)."""
    ui = subprocess.Popen([sys.executable, "-m", "imgvault.cli", "--home", str(home), "ui", "--port", str(port)],
                          env=env, stderr=subprocess.PIPE, start_new_session=True, **options)  # fmt: skip
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return ui
        except OSError:
            if time.monotonic() > deadline or ui.poll() is not None:
                ui.kill()
                raise AssertionError(ui.stderr.read().decode()[-3000:]) from None
            time.sleep(0.1)  # polling: not up yet
