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


def test_every_file_in_a_home_is_for_its_user_alone(tmp_path, image_dir):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # a folder that existed, open to others
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMGVAULT_", "MLFLOW_TRACKING"))}
    env["IMGVAULT_HOME"] = str(home)

    def imgvault(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "imgvault.cli", *args], env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    imgvault("init")
    assert home.stat().st_mode & 0o777 == 0o700  # tightened
    imgvault("put", "-c", "photos", *sorted(str(p) for p in Path(image_dir).glob("*.png"))[:3])
    imgvault("run", "-c", "photos", "-m", "kmeans", "-k", "2", "--size", "16", "--jobs", "1", "--figures", "2")
    imgvault("report", "-c", "photos", "-o", str(home / "report.html"))
    loose = [f"{p}: {p.stat().st_mode & 0o777:o}" for p in home.rglob("*")
             if p.stat().st_mode & (0o077 if p.is_dir() else 0o177)]  # fmt: skip
    assert loose == []
    assert (home / "mlflow.db").stat().st_mode & 0o777 == 0o600
    # A home opened to others later is named on every command, and still works.
    home.chmod(0o755)
    listed = imgvault("ls")
    assert f"Warning: other users can read the home folder {home} (mode 0755): run chmod 700 {home}" in listed.stderr
