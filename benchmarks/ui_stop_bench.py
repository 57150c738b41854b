"""How long ``imgvault ui`` takes to stop after one Ctrl-C, with a browser's connection open (target: 2 s).

Each round starts ``imgvault ui`` on an empty store, waits until it answers, opens a connection as a browser
keeps one, sends SIGINT to the command's process group (what a terminal does on Ctrl-C), and times until the
command has exited. The baseline, in the same process: how long a bare ``python -c pass`` takes to start and
exit, so that ``stop_over_python_start`` means the same on a fast or a slow machine.

    python benchmarks/ui_stop_bench.py [--rounds 3] [--json]
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from store_bench import print_figures

from imgvault.store import Store

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from servers import free_port, start_ui


def one_stop(home: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ui = start_ui(home, port, env)
    try:
        browser = socket.create_connection(("127.0.0.1", port))
        browser.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        os.killpg(ui.pid, signal.SIGINT)
        ui.wait(timeout=120)
        took = time.monotonic() - started
        browser.close()
        return took
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        ui.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "vault"
        Store.init(home).close()
        stops = [one_stop(home) for _ in range(args.rounds)]
    starts = []
    for _ in range(args.rounds):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        starts.append(time.monotonic() - started)
    stop, start = statistics.median(stops), statistics.median(starts)
    print_figures({"ui_stop_seconds": round(stop, 2), "ui_stop_all_rounds": [round(s, 2) for s in stops],
                   "python_start_seconds": round(start, 3),
                   "stop_over_python_start": round(stop / start, 1)}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
