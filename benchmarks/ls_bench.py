"""How fast ``imgvault ls`` lists a large store and starts on an empty one, run as the user runs it.

    python benchmarks/ls_bench.py --json

Fills a store with N images (default 100,000: small real tiles cut from scikit-image's photos, put
through ``put_many``, each file put many times), and a small one (N / 50 images) to compare memory with.
Then, in interleaved rounds, runs as separate processes (stdout to /dev/null):
  - ``imgvault ls`` and ``imgvault ls --json`` on the large store, with the peak RSS of each run,
  - ``imgvault ls --json`` on the small store (memory comparison),
  - ``imgvault ls`` on an empty store, ``imgvault --help``, and ``python -c "import sqlalchemy"`` (the
    floor under any command that opens the store, measured in the same rounds).
The median of the rounds is reported. Targets (issue 17): table <= 1.5 s and JSON <= 1 s for 100,000
images, peak memory the same for the small and the large store, start on an empty store <= 0.15 s.
"""

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def write_tiles(folder: Path, count: int) -> list[Path]:
    """``count`` distinct small PNG tiles cut from a real photo."""
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    photo = skimage.data.astronaut()
    rng = np.random.default_rng(0)
    paths = []
    for n in range(count):
        y, x = (int(v) for v in rng.integers(0, 500, size=2))
        buffer = io.BytesIO()
        Image.fromarray(photo[y : y + 12, x : x + 12]).save(buffer, "PNG")
        path = folder / f"tile-{n:05d}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def fill_store(home: Path, tiles: list[Path], count: int) -> float:
    """Put ``count`` images (the tiles over and over) in a new store at ``home``; the seconds it took."""
    from imgvault.store import Settings, Store

    start = time.perf_counter()
    with Store.init(settings=Settings.resolve(home, environ={})) as store:
        collections = ("holidays", "scans", "faces")
        for n, collection in enumerate(collections):
            share = count // len(collections) + (n < count % len(collections))
            paths = (tiles[k % len(tiles)] for k in range(share))
            for result in store.put_many(paths, collection=collection):
                if result.error:
                    raise SystemExit(result.error)
    return time.perf_counter() - start


def timed(args: list[str], env: dict) -> tuple[float, float]:
    """Run ``args`` with stdout to /dev/null; its wall time in seconds and its own peak RSS in MB."""
    with open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=devnull, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{args} exited with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="images in the large store (default 100,000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    imgvault = shutil.which("imgvault") or str(Path(sys.executable).with_name("imgvault"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGVAULT_")}
    with tempfile.TemporaryDirectory(prefix="imgvault-ls-bench-") as tmp:
        tmp = Path(tmp)
        tiles = write_tiles(tmp / "tiles", 1000)
        fill_seconds = fill_store(tmp / "large", tiles, args.n)
        fill_store(tmp / "small", tiles, max(args.n // 50, 1))
        fill_store(tmp / "empty", tiles, 0)

        runs = {
            "ls_table_s": [imgvault, "--home", str(tmp / "large"), "ls"],
            "ls_json_s": [imgvault, "--home", str(tmp / "large"), "ls", "--json"],
            "ls_json_small_s": [imgvault, "--home", str(tmp / "small"), "ls", "--json"],
            "ls_empty_start_s": [imgvault, "--home", str(tmp / "empty"), "ls"],
            "help_start_s": [imgvault, "--help"],
            "import_sqlalchemy_s": [sys.executable, "-c", "import sqlalchemy"],
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, command in runs.items():
                elapsed, peak = timed(command, env)
                times[name].append(elapsed)
                peaks[name].append(peak)

    figures = {"n_images": args.n, "rounds": args.rounds, "fill_images_per_s": round(args.n / fill_seconds)}
    figures.update({name: round(statistics.median(values), 3) for name, values in times.items()})
    figures["ls_table_s_all_rounds"] = [round(t, 3) for t in times["ls_table_s"]]
    figures["ls_json_s_all_rounds"] = [round(t, 3) for t in times["ls_json_s"]]
    figures["ls_empty_start_over_help"] = round(figures["ls_empty_start_s"] / figures["help_start_s"], 2)
    large, small = statistics.median(peaks["ls_json_s"]), statistics.median(peaks["ls_json_small_s"])
    figures["ls_peak_rss_mb_table"] = round(statistics.median(peaks["ls_table_s"]), 1)
    figures[f"ls_peak_rss_mb_{args.n}"] = round(large, 1)
    figures[f"ls_peak_rss_mb_{max(args.n // 50, 1)}"] = round(small, 1)
    figures["ls_peak_rss_growth_mb"] = round(large - small, 1)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, value in figures.items():
            print(f"{name:28} {value}")


if __name__ == "__main__":
    main()
