"""What a person sees in a real terminal: progress bars gone before the next line is printed.

The commands run under a pseudo-terminal, as in a terminal window, and what they write is fed to a
terminal emulator (pyte): the assertions are about the screen, not about escape sequences.
"""

import fcntl
import os
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
import pytest

COLUMNS, ROWS = 200, 60

# The demo's own command and code path, on one small collection instead of the demo's three large ones.
SMALL_DEMO = """
import sys
import imgvault.tracker.demo as demo
from imgvault.tracker.runner import BatchConfig

config = BatchConfig(methods=("kmeans", "aes"), ks=(2,), size=16, figures=0)
demo.collections = lambda quick: [demo.DemoCollection("demo-photos", "three photos", config, demo.photos, 3)]
from imgvault.cli import cli
cli(sys.argv[1:], prog_name="imgvault")
"""


def in_terminal(args: list[str], env: dict, timeout: float = 600) -> tuple[list[str], int]:
    """Run ``args`` with stdin, stdout and stderr on a pseudo-terminal; the screen's lines and the exit code."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    process = subprocess.Popen(args, stdin=terminal, stdout=terminal, stderr=terminal, env=env,
                               start_new_session=True)  # fmt: skip
    os.close(terminal)
    written = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([controller], [], [], 1)[0]:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: every process let go of the terminal
                    break
                if not chunk:
                    break
                written += chunk
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    screen = pyte.Screen(COLUMNS, 1000)  # tall enough that nothing scrolls away
    pyte.ByteStream(screen).feed(bytes(written))
    return [line.rstrip() for line in screen.display if line.strip()], code


@pytest.fixture
def terminal_env(tmp_path, clean_env) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "NO_COLOR", "COLUMNS", "LINES")}
    return {**env, "TERM": "xterm-256color"}


def test_the_demos_progress_bars_are_cleared_before_each_collections_line(tmp_path, terminal_env,
                                                                          migrated_tracking_db):  # fmt: skip
    home = tmp_path / "imgvault-data"
    home.mkdir()
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    lines, code = in_terminal([sys.executable, "-c", SMALL_DEMO, "--home", str(home), "demo"], terminal_env)
    assert code == 0, "\n".join(lines)
    [configurations] = [line for line in lines if "configurations over" in line]
    assert configurations.startswith("demo-photos: 2 configurations over 3 images"), configurations
    assert not [line for line in lines if "━" in line], "\n".join(lines)  # no bar left on the screen


def test_puts_progress_bar_is_gone_and_its_lines_are_whole(tmp_path, terminal_env):
    from imgvault.store import Store

    Store.init(tmp_path / "vault").close()
    sources = Path(__import__("skimage.data").data.__file__).parent
    args = [sys.executable, "-m", "imgvault.cli", "--home", str(tmp_path / "vault"), "put",
            str(sources / "camera.png"), str(sources / "coins.png"), "-c", "scans"]  # fmt: skip
    lines, code = in_terminal(args, terminal_env)
    assert code == 0, "\n".join(lines)
    assert [line.split()[1] for line in lines[:2]] == [str(sources / "camera.png"), str(sources / "coins.png")]
    assert lines[2:] == ['Stored 2 images in collection "scans".']
