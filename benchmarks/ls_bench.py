"""How fast ``imgvault ls`` lists a large store and starts on an empty one, run as the user runs it.

    python benchmarks/ls_bench.py --json

Fills a store with N images (default 100,000: small real tiles cut from scikit-image's photos, put
through ``put_many``, each file put many times), and a small one (N / 50 images) to compare memory with.
Then, in interleaved rounds, runs as separate processes (stdout to /dev/null):
  - ``imgvault ls`` and ``imgvault ls --json`` on the large store,
  - ``imgvault ls`` on an empty store, ``imgvault --help``, and ``python -c "import sqlalchemy"`` (the
    floor under any command that opens the store, measured in the same rounds),
  - the peak RSS of ``ls`` and ``ls --json`` on the large store and of ``ls --json`` on the small one.
The median of the rounds is reported, as wall-clock seconds and (``*_cpu_s``) as the CPU time the command
used (user + system), which a busy machine skews much less. Targets (issue 17): table <= 1.5 s and JSON
<= 1 s for 100,000 images, peak memory the same for the small and the large store, start on an empty
store <= 0.15 s.
"""

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from store_bench import print_figures


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
    """Run ``args`` with stdout to /dev/null; its wall time and CPU time (user + system) in seconds."""
    with open(os.devnull, "wb") as devnull:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, stdout=devnull, env=env, check=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


# The imgvault command, reporting its peak RSS (VmHWM) on stderr as it exits. (ru_maxrss would not do: on
# Linux a process started from this benchmark starts with the benchmark's own peak, kept through exec.)
PEAK_PROBE = """
import atexit, sys
def peak():
    status = open("/proc/self/status").read()
    sys.stderr.write("VmHWM " + next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:")) + "\\n")
atexit.register(peak)
from imgvault.cli.group import main
sys.argv = ["imgvault", *sys.argv[1:]]
main()
"""


def peak_rss_mb(args: list[str], env: dict) -> float:
    """The peak RSS in MB of ``imgvault ARGS``, stdout to /dev/null."""
    with open(os.devnull, "wb") as devnull:
        done = subprocess.run([sys.executable, "-c", PEAK_PROBE, *args], stdout=devnull, stderr=subprocess.PIPE,
                              env=env, check=True, text=True)  # fmt: skip
    return int(done.stderr.split("VmHWM ")[-1].split()[0]) / 1024


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

        large, small, empty = (["--home", str(tmp / name)] for name in ("large", "small", "empty"))
        runs = {
            "ls_table_s": [imgvault, *large, "ls"],
            "ls_json_s": [imgvault, *large, "ls", "--json"],
            "ls_empty_start_s": [imgvault, *empty, "ls"],
            "help_start_s": [imgvault, "--help"],
            "import_sqlalchemy_s": [sys.executable, "-c", "import sqlalchemy"],
        }
        memory = {
            "table_large": [*large, "ls"],
            "json_large": [*large, "ls", "--json"],
            "json_small": [*small, "ls", "--json"],
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, list[float]] = {name: [] for name in memory}
        for _ in range(args.rounds):
            for name, command in runs.items():
                wall, used = timed(command, env)
                times[name].append(wall)
                cpu[name].append(used)
            for name, command in memory.items():
                peaks[name].append(peak_rss_mb(command, env))

    figures = {"n_images": args.n, "rounds": args.rounds, "fill_images_per_s": round(args.n / fill_seconds)}
    figures.update({name: round(statistics.median(values), 3) for name, values in times.items()})
    figures.update({f"{name[:-2]}_cpu_s": round(statistics.median(values), 3) for name, values in cpu.items()})
    figures["ls_table_s_all_rounds"] = [round(t, 3) for t in times["ls_table_s"]]
    figures["ls_json_s_all_rounds"] = [round(t, 3) for t in times["ls_json_s"]]
    figures["ls_empty_start_over_help"] = round(figures["ls_empty_start_s"] / figures["help_start_s"], 2)
    peak = {name: statistics.median(values) for name, values in peaks.items()}
    figures[f"ls_peak_rss_mb_{args.n}_table"] = round(peak["table_large"], 1)
    figures[f"ls_peak_rss_mb_{args.n}_json"] = round(peak["json_large"], 1)
    figures[f"ls_peak_rss_mb_{max(args.n // 50, 1)}_json"] = round(peak["json_small"], 1)
    figures["ls_peak_rss_growth_mb"] = round(peak["json_large"] - peak["json_small"], 1)
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
