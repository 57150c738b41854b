"""What a person sees in a real terminal: progress bars gone before the next line is printed.

The commands run under a pseudo-terminal, as in a terminal window, and what they write is fed to a
terminal emulator (pyte): the assertions are about the screen, not about escape sequences.
"""

import fcntl
import os
import select
import shutil
import signal
import socket
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
from imgvault.tracker.runs import BatchConfig

config = BatchConfig(methods=("kmeans", "aes"), ks=(2,), size=16, figures=0)
demo.collections = lambda quick: [demo.DemoCollection("demo-photos", "three photos", config, demo.photos, 3)]
from imgvault.cli import cli
cli(sys.argv[1:], prog_name="imgvault")
"""


def in_terminal(
    args: list[str], env: dict, timeout: float = 600, raw: bytearray | None = None
) -> tuple[list[str], int]:
    """Run ``args`` with stdin, stdout and stderr on a pseudo-terminal; the screen's lines and the exit code
    (and in ``raw``, if given, every byte written, bars' frames included)."""
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
    if raw is not None:
        raw += written
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


def test_run_with_attacks_shows_one_bar_over_encoding_and_attacks_then_its_threat_matrix(
        tmp_path, terminal_env, migrated_tracking_db):  # fmt: skip
    from imgvault.store import Store
    from imgvault.tracker.demo import tiles

    home = tmp_path / "vault"
    with Store.init(home) as store:
        for name, data in tiles(12):
            store.put(data, name=name, collection="tiles")
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    args = [sys.executable, "-m", "imgvault.cli", "--home", str(home), "run", "-c", "tiles", "-m", "arnold",
            "--size", "16", "--attack", "--figures", "0", "-j", "1"]  # fmt: skip
    frames = bytearray()
    lines, code = in_terminal(args, terminal_env, raw=frames)
    assert code == 0, "\n".join(lines)
    shown = frames.decode(errors="replace")
    assert "Encoding and attacking" in shown and "17/17" in shown  # 12 images, then 5 attacks (recognition last)
    assert not [line for line in lines if "━" in line], "\n".join(lines)
    assert any("Threat matrix" in line for line in lines)
    # Piped, or with --json: no bar at all.
    piped = subprocess.run([*args, "--json"], env=terminal_env, capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0 and "Encoding" not in piped.stderr


def _processes() -> dict[int, tuple[int, str]]:
    """Every process now: pid -> (parent pid, state letter), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            found[int(entry.name)] = (int(ppid), state)
    return found


def _descendants(pid: int) -> set[int]:
    processes, found, todo = _processes(), set(), [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, (ppid, _) in processes.items() if ppid == parent}
        found |= children
        todo.extend(children)
    return found


def test_one_ctrl_c_stops_the_ui_with_a_browser_connected_and_leaves_no_process(
        tmp_path, clean_env, migrated_tracking_db, record_property):  # fmt: skip
    from servers import free_port, start_ui

    from imgvault.store import Store

    home = tmp_path / "vault"
    Store.init(home).close()
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ui = start_ui(home, port, env)
    try:
        # A browser keeps its connection open; the server must not wait for it.
        browser = socket.create_connection(("127.0.0.1", port))
        browser.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        children = _descendants(ui.pid)
        assert children, "the UI runs its server as a child process"
        started = time.monotonic()
        os.killpg(ui.pid, signal.SIGINT)  # Ctrl-C: the terminal signals its foreground process group
        code = ui.wait(timeout=60)
        took = time.monotonic() - started
        record_property("ui_stop_seconds", round(took, 2))
        print(f"imgvault ui stopped {took:.2f} s after SIGINT")
        browser.close()
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        ui.stderr.close()
    # How long it takes is benchmarks/ui_stop_bench.py's: here, that one Ctrl-C stops it, a browser's open
    # connection notwithstanding, and leaves nothing behind.
    assert code == 0
    left = {pid: state for pid, (_, state) in _processes().items() if pid in children}
    assert not left, f"processes of the UI left behind: {left}"
