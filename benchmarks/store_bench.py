"""Store throughput against baselines run in the same process, on the same files.

    python benchmarks/store_bench.py --json

Puts N real ~100x100 PNG/JPEG images (tiles of the photos shipped with scikit-image and scikit-learn)
through the store API, and compares with
  - a raw SQLAlchemy Core insert of the same bytes (no validation, no encryption), batched the same way,
  - Pillow's full decode of the same files alone (read + open + load),
then times ``get`` against a raw ``SELECT`` of the bytes, and measures the writer's peak memory when
putting a small and a large folder (in child processes, so each peak is its own).

Put decodes in one worker process per core, so the decode baseline it is held to is one process's
decode rate times the cores put uses; the raw insert is one writer, as put's is.

Figures are ratios, so they mean the same on a fast or a slow machine:
  put_ratio_vs_limit  put throughput / min(raw insert, cores x one process's decode)   (target >= 0.8)
  get_ratio_vs_raw    median get latency / median raw select latency                  (target <= 1.2)
  peak_rss_growth_mb  peak RSS putting the large folder minus the small               (target <= 50)
"""

import argparse
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# The raw baseline commits in batches of the same size as the store does.
from imgvault.store.store import BATCH_IMAGES as BATCH


def source_photos() -> list[np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    photos += [skimage.data.camera(), skimage.data.moon(), skimage.data.page()]
    photos += list(load_sample_images().images)
    return photos


def write_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` distinct ~100x100 tiles cut at random from real photos, alternately PNG and JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = source_photos()
    paths = []
    for n in range(count):
        photo = photos[n % len(photos)]
        size = int(rng.integers(90, 111))
        y = int(rng.integers(0, photo.shape[0] - size))
        x = int(rng.integers(0, photo.shape[1] - size))
        tile = Image.fromarray(photo[y : y + size, x : x + size])
        fmt, suffix = ("PNG", "png") if n % 2 == 0 else ("JPEG", "jpg")
        buffer = io.BytesIO()
        tile.save(buffer, fmt)
        path = folder / f"img-{n:06d}.{suffix}"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_put(paths: list[Path], home: Path, jobs: int | None) -> tuple[float, "object", float, float]:
    """Put throughput, the store, and the CPU seconds per image of the writer process and of its workers."""
    from imgvault.store import Settings, Store

    settings = Settings.resolve(home, environ={})
    store = Store.init(settings=settings)
    start, writer_cpu, workers_cpu = time.perf_counter(), time.process_time(), children_cpu()
    results = list(store.put_many(paths, collection="bench", jobs=jobs))
    elapsed = time.perf_counter() - start
    writer_cpu, workers_cpu = time.process_time() - writer_cpu, children_cpu() - workers_cpu
    failed = [r.error for r in results if r.error]
    if failed:
        raise SystemExit(f"benchmark images failed to store: {failed[:3]}")
    return len(paths) / elapsed, store, writer_cpu / len(paths), workers_cpu / len(paths)


def bench_raw_insert(paths: list[Path], db_path: Path):
    from sqlalchemy import Column, LargeBinary, MetaData, String, Table, create_engine, event, insert

    engine = create_engine(f"sqlite:///{db_path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        # The same durability settings as the store, so the comparison is about our work only.
        dbapi_connection.execute("PRAGMA journal_mode = WAL")
        dbapi_connection.execute("PRAGMA synchronous = FULL")

    metadata = MetaData()
    table = Table("raw", metadata, Column("id", String(26), primary_key=True), Column("data", LargeBinary))
    metadata.create_all(engine)
    start = time.perf_counter()
    for first in range(0, len(paths), BATCH):
        rows = [
            {"id": f"{n:026d}", "data": paths[n].read_bytes()} for n in range(first, min(first + BATCH, len(paths)))
        ]
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
    return len(paths) / (time.perf_counter() - start), engine, table


def bench_decode(paths: list[Path]) -> tuple[float, float]:
    """Pillow's full decode of each file, in this process: images per second, and CPU seconds per image."""
    start, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            image.load()
    return len(paths) / (time.perf_counter() - start), (time.process_time() - cpu) / len(paths)


def _decode_share(paths: list[str]) -> float:
    """In a pool worker: decode ``paths`` as bench_decode does; the CPU seconds it took."""
    cpu = time.process_time()
    for path in paths:
        with Image.open(io.BytesIO(Path(path).read_bytes())) as image:
            image.load()
    return time.process_time() - cpu


def bench_decode_parallel(paths: list[Path], cores: int) -> tuple[float, float]:
    """The same decode in ``cores`` processes at once: images per second, and CPU seconds per image. What
    the cores give when they all decode, against ``cores`` times one alone."""
    import multiprocessing

    # Shares of 100 consecutive files (PNG and JPEG alternate), handed out as workers free up, so that
    # every core has work to the end.
    names = [os.fspath(path) for path in paths]
    shares = [names[first : first + 100] for first in range(0, len(names), 100)]
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        pool.map(_decode_share, [names[:50]] * cores, chunksize=1)  # start the workers, import Pillow's plugins
        start = time.perf_counter()
        cpu = sum(pool.map(_decode_share, shares, chunksize=1))
        elapsed = time.perf_counter() - start
    return len(paths) / elapsed, cpu / len(paths)


def median_latency(function, arguments: list) -> float:
    timings = []
    for argument in arguments:
        start = time.perf_counter()
        function(argument)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def bench_get(store, engine, table, samples: int) -> tuple[float, float]:
    from sqlalchemy import select

    ids = [image.id for image in store.images("bench")]
    raw_ids = [f"{n:026d}" for n in range(len(ids))]
    picks = random.Random(1).sample(range(len(ids)), min(samples, len(ids)))

    def raw_get(raw_id):
        with engine.connect() as connection:
            return connection.execute(select(table.c.data).where(table.c.id == raw_id)).scalar_one()

    # Warm both paths (connection pools, page cache) before timing.
    for n in picks[:50]:
        store.get(ids[n])
        raw_get(raw_ids[n])
    store_median = median_latency(store.get, [ids[n] for n in picks])
    raw_median = median_latency(raw_get, [raw_ids[n] for n in picks])
    return store_median, raw_median


def memory_child(folder: str, home: str) -> None:
    """Run in a child process: put every file of ``folder``; print the peak RSS in MB."""
    from imgvault.store import Settings, Store

    with Store.init(settings=Settings.resolve(home, environ={})) as store:
        for result in store.put_many([folder], collection="memory"):
            if result.error:
                raise SystemExit(result.error)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"writer_mb": own_peak_rss_mb(), "worker_mb": workers}))


def own_peak_rss_mb() -> float:
    """This process's peak RSS since it started (Linux: VmHWM; ru_maxrss there also counts the peak of the
    process that ran us before exec, here the benchmark itself, which would hide this one's)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kilobytes) / 1024


def peak_memory(folder: Path, home: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(folder), str(home)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_figures(figures: dict, as_json: bool) -> None:
    """The benchmark's figures as JSON, or one per line for a person."""
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        for name, value in figures.items():
            print(f"{name:28} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="images for the throughput figures (default 5000)")
    parser.add_argument("--jobs", type=int, default=None, help="validation processes for put (default: all cores)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--get-samples", type=int, default=2000)
    parser.add_argument("--memory", type=int, nargs=2, default=[2000, 20000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory comparison")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    with tempfile.TemporaryDirectory(prefix="imgvault-bench-") as tmp:
        tmp = Path(tmp)
        paths = write_images(tmp / "images", args.n)
        bench_decode(paths[:500])  # warm the page cache and Pillow's plugins
        # Rounds interleave the three measurements, so that each ratio compares runs made under the
        # same machine conditions; the median round is reported.
        cores = args.jobs or os.cpu_count() or 1
        rounds = []
        cpu = {"decode": [], "writer": [], "workers": [], "decode_parallel": []}
        parallel = []
        for n in range(args.rounds):
            decode_per_s, decode_cpu = bench_decode(paths)
            parallel_per_s, parallel_cpu = bench_decode_parallel(paths, cores)
            parallel.append(parallel_per_s / (cores * decode_per_s))
            cpu["decode_parallel"].append(parallel_cpu)
            raw_per_s, engine, table = bench_raw_insert(paths, tmp / f"raw{n}.db")
            put_per_s, store, writer_cpu, workers_cpu = bench_put(paths, tmp / f"vault{n}", args.jobs)
            limit = min(raw_per_s, cores * decode_per_s)
            rounds.append((put_per_s / limit, put_per_s, raw_per_s, decode_per_s, limit))
            for name, value in (("decode", decode_cpu), ("writer", writer_cpu), ("workers", workers_cpu)):
                cpu[name].append(value)
            if n < args.rounds - 1:
                store.close()
                engine.dispose()
        ratio, put_per_s, raw_per_s, decode_per_s, limit = sorted(rounds)[len(rounds) // 2]
        cpu = {name: statistics.median(values) * 1e6 for name, values in cpu.items()}
        store_get, raw_get = bench_get(store, engine, table, args.get_samples)
        store.close()
        engine.dispose()
        figures = {
            "n_images": args.n,
            "rounds": args.rounds,
            "mean_file_bytes": round(sum(p.stat().st_size for p in paths) / len(paths)),
            "cores": cores,
            "put_per_s": round(put_per_s, 1),
            "raw_insert_per_s": round(raw_per_s, 1),
            "decode_one_process_per_s": round(decode_per_s, 1),
            "decode_all_cores_per_s": round(cores * decode_per_s, 1),
            "limit_per_s": round(limit, 1),
            "limited_by": "raw insert" if raw_per_s <= cores * decode_per_s else "decode",
            "put_ratio_vs_limit": round(ratio, 3),
            "put_ratio_all_rounds": [round(r[0], 3) for r in rounds],
            # Where put's CPU goes (median of the rounds, microseconds per image): a busy machine slows
            # the wall-clock figures above, these much less. On an idle machine put cannot beat
            # cores / (writer + workers) images per second, whatever the decode alone allows.
            "decode_cpu_us_per_image": round(cpu["decode"], 1),
            "put_workers_cpu_us_per_image": round(cpu["workers"], 1),
            "put_writer_cpu_us_per_image": round(cpu["writer"], 1),
            "put_cpu_bound_ratio_vs_decode_limit": round(cpu["decode"] / (cpu["workers"] + cpu["writer"]), 3),
            # The limit assumes each core decodes as fast as one process alone; all of them decoding at once
            # (nothing else: no insert, no sealing) reach this share of it, with this CPU per image.
            "decode_all_cores_ratio_vs_limit": round(statistics.median(parallel), 3),
            "decode_all_cores_cpu_us_per_image": round(cpu["decode_parallel"], 1),
            "get_median_ms": round(store_get * 1000, 3),
            "raw_select_median_ms": round(raw_get * 1000, 3),
            "get_ratio_vs_raw": round(store_get / raw_get, 3),
        }
        if not args.no_memory:
            small, large = args.memory
            write_images(tmp / "small", small, seed=1)
            write_images(tmp / "large", large, seed=2)
            peak_small = peak_memory(tmp / "small", tmp / "vault-small")
            peak_large = peak_memory(tmp / "large", tmp / "vault-large")
            figures.update(
                {
                    f"peak_rss_mb_{small}": round(peak_small["writer_mb"], 1),
                    f"peak_rss_mb_{large}": round(peak_large["writer_mb"], 1),
                    "peak_rss_growth_mb": round(peak_large["writer_mb"] - peak_small["writer_mb"], 1),
                    "worker_peak_rss_growth_mb": round(peak_large["worker_mb"] - peak_small["worker_mb"], 1),
                }
            )
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
