"""A tool that keeps sensitive data sends nothing anywhere by default: no lookup, no connection of its own."""

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from servers import free_port, serving

pytestmark = pytest.mark.slow

# Loaded by every Python process started with this folder on PYTHONPATH: each name lookup and each
# connection (but to a local socket file) is written to $IMGVAULT_NETLOG.
SPY = """
import os, socket
_log = os.environ["IMGVAULT_NETLOG"]
def _note(what):
    with open(_log, "a") as handle:
        handle.write(what + "\\n")
_lookup = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    _note(f"lookup {host}")
    return _lookup(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
_connect = socket.socket.connect
def connect(self, address):
    if self.family != socket.AF_UNIX:
        _note(f"connect {address}")
    return _connect(self, address)
socket.socket.connect = connect
"""
# What MLflow reads to decide that it runs under a test or CI, and stays quiet for that reason alone.
QUIETING = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "TRAVIS", "CIRCLECI",
            "BUILDKITE", "CODEBUILD_BUILD_ID", "TF_BUILD", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")  # fmt: skip


def test_a_tracked_run_makes_no_lookup_and_no_connection(tmp_path, image_dir):
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SPY)
    log = tmp_path / "net.log"
    env = {name: value for name, value in os.environ.items() if name not in QUIETING and not name.startswith(
        ("IMGVAULT_", "MLFLOW_"))}  # fmt: skip
    env.update(PYTHONPATH=str(spy), IMGVAULT_NETLOG=str(log), IMGVAULT_HOME=str(tmp_path / "home"))

    def imgvault(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "imgvault.cli", *args], env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr

    imgvault("init")
    imgvault("put", "-c", "photos", *sorted(str(p) for p in Path(image_dir).glob("*.png"))[:3])
    imgvault("run", "-c", "photos", "-m", "pca", "-k", "2", "--size", "16", "--jobs", "1")
    # The MLflow UI's server, asked for its page: no connection but the one to it.
    port = free_port()
    command = [sys.executable, "-m", "imgvault.cli", "ui", "--port", str(port)]
    with serving(command, f"http://127.0.0.1:{port}/health", env), urllib.request.urlopen(
            f"http://127.0.0.1:{port}/") as page:  # fmt: skip
        assert page.status == 200
    assert not log.exists(), log.read_text()
    # The spy works: a process's own lookup is written down, and so is MLflow's telemetry when asked for.
    subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('localhost', 80)"], env=env, check=True)
    assert log.read_text().splitlines() == ["lookup localhost"]
    env["MLFLOW_DISABLE_TELEMETRY"] = "false"
    imgvault("run", "-c", "photos", "-m", "pca", "-k", "2", "--size", "16", "--jobs", "1")
    assert "lookup config.mlflow-telemetry.io" in log.read_text()
