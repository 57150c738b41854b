"""Batch runs: what tracking costs, what a second core buys, how time grows with the collection.

    python benchmarks/run_bench.py --json

100 real ~100x100 images (tiles of the photos shipped with scikit-image and scikit-learn) x 3 methods
(pca, kmeans, gmm, k=8), size 100, gray, all in one process:

  tracked_over_untracked  the full tracked path (read and decrypt from the store, fit, encode, decode,
                          measures, figures, store every result sealed, log to MLflow) over the same
                          computation untracked (fit, encode, decode, the same quality and security
                          measures, the same figures drawn: every image's and the batch's comparison
                          charts), both with --jobs 1                                    (target <= 1.15)
  speedup_2_jobs          the tracked path with --jobs 1 over --jobs 2                       (target >= 1.8)
  scaling_200_over_100    the tracked path on 200 images over 100 images, --jobs 1          (target <= 2.05)
  sealing_overhead        the tracked path with its MLflow artifacts sealed (the default) over the same
                          run into a plain file:// artifact location with --plaintext-figures, --jobs 1
                          (end to end: as noisy as the machine)
  sealing_share           what sealing itself adds: the artifacts of one tracked batch written sealed
                          (seal, then the same atomic write) minus written plain, in 15 interleaved
                          rounds, as a fraction of the tracked batch                   (target <= 0.03)

Worker processes and imports are warmed up first, so the figures compare steady-state work.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from store_bench import print_figures, write_images

METHODS = ("pca", "kmeans", "gmm")


def untracked(pixels, k: int) -> float:
    """The same computation, untracked: for every method, each image's fit, encode, decode, quality and
    security measures (the wrong-key SSIM too) and the first figures (drawn and made into their files),
    each configuration's summary, and the batch's own figures, as a batch computes them, stored and
    logged nowhere."""
    from imgvault.tracker.reports.figures import parent_figure_names, parent_figure_png
    from imgvault.tracker.runs import BatchConfig, ChildRun
    from imgvault.tracker.runs.compute import compute_configuration
    from imgvault.tracker.runs.summary import summarise, summarised_values

    config = BatchConfig(methods=METHODS, ks=(k,), jobs=1)
    started = time.perf_counter()
    runs = []
    for method in METHODS:
        results, _, _ = compute_configuration(pixels, method, k, config)
        values = summarised_values([result.measured.metrics for result in results if result.ok])
        runs.append(ChildRun(method, k, run_id="", metrics=summarise(values), values=values))
    for name in parent_figure_names(config.ks):
        parent_figure_png(name, runs)
    return time.perf_counter() - started


def tracked(store, collection: str, k: int, jobs: int, label: str, scheduler: str | None = None,
            sealed: bool = True) -> float:  # fmt: skip
    """Seconds of one tracked batch (METHODS at ``k``): local joblib processes, or a Dask ``scheduler``'s cluster.

    ``sealed=False``: into an experiment whose artifact location is a plain folder, figures in plaintext.
    """
    from imgvault.tracker.runs import BatchConfig, run_batch

    experiment = f"bench/{label}"
    if not sealed:
        from imgvault.tracker.tracking import artifact_root, open_client

        client = open_client(store.settings.home)
        location = (artifact_root(store.settings.home) / f"plain-{label}").as_uri()
        client.create_experiment(experiment, artifact_location=location)
    config = BatchConfig(methods=METHODS, ks=(k,), jobs=jobs, experiment=experiment, scheduler=scheduler,
                         plaintext_figures=not sealed)  # fmt: skip
    started = time.perf_counter()
    result = run_batch(store, collection, config)
    elapsed = time.perf_counter() - started
    if result.failures:
        raise SystemExit(f"benchmark images failed: {result.failures}")
    return elapsed


def sealing_seconds(store, experiment: str, folder: Path, rounds: int = 15) -> tuple[float, int, int]:
    """Median extra seconds of writing ``experiment``'s artifacts sealed rather than plain; files; bytes."""
    from imgvault.tracker.sealing.files import KIND, home_place, write_file_atomically
    from imgvault.tracker.tracking import artifact_root

    home = store.settings.home
    sealed = [p for p in (artifact_root(home) / experiment).rglob("*") if p.is_file()]
    sealer = store.sealer
    plain = [(home_place(home, p), sealer.open(KIND, home_place(home, p), p.read_bytes())) for p in sealed]
    extra = []
    for n in range(rounds):
        started = time.perf_counter()
        for i, (_place, data) in enumerate(plain):
            write_file_atomically(folder / f"plain-{n}-{i}", data)
        middle = time.perf_counter()
        for i, (place, data) in enumerate(plain):
            write_file_atomically(folder / f"sealed-{n}-{i}", sealer.seal(KIND, place, data))
        extra.append((time.perf_counter() - middle) - (middle - started))
    return float(np.median(extra)), len(plain), sum(len(data) for _, data in plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="images in the collection (default 100)")
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    from imgvault.methods import load_pixels
    from imgvault.store import Settings, Store

    with tempfile.TemporaryDirectory(prefix="imgvault-run-bench-") as tmp:
        tmp = Path(tmp)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        store = Store.init(settings=Settings.resolve(tmp / "vault", environ={}))
        small = write_images(tmp / "small", args.n, seed=1)
        large = write_images(tmp / "large", 2 * args.n, seed=2)
        list(store.put_many(small, collection="small"))
        list(store.put_many(large, collection="large"))
        pixels = np.stack([load_pixels(path.read_bytes(), size=100) for path in small])

        # Warm-up: imports (MLflow, scikit-learn, matplotlib), the MLflow schema, joblib's worker pool.
        warm = write_images(tmp / "warm", 8, seed=3)
        list(store.put_many(warm, collection="warm"))
        tracked(store, "warm", args.k, 1, "warm-1")
        tracked(store, "warm", args.k, 2, "warm-2")
        tracked(store, "warm", args.k, 1, "warm-plain", sealed=False)

        # Rounds interleave the measurements, so that each ratio compares runs made under the same
        # machine conditions (a shared 2-core machine varies); the median of each ratio is reported.
        rounds = []
        for n in range(args.rounds):
            untracked_s = untracked(pixels, args.k)
            tracked_1 = tracked(store, "small", args.k, 1, f"small-1-{n}")
            tracked_2 = tracked(store, "small", args.k, 2, f"small-2-{n}")
            tracked_large = tracked(store, "large", args.k, 1, f"large-1-{n}")
            tracked_plain = tracked(store, "small", args.k, 1, f"small-plain-{n}", sealed=False)
            rounds.append((untracked_s, tracked_1, tracked_2, tracked_large, tracked_plain))
        folder = tmp / "sealing"
        folder.mkdir()
        seal_s, seal_files, seal_bytes = sealing_seconds(store, "bench_small-1-0", folder)
        store.close()

    def median(values):
        return float(np.median(values))

    columns = [median(column) for column in zip(*rounds, strict=True)]
    untracked_s, tracked_1, tracked_2, tracked_large, tracked_plain = columns
    figures = {
        "n_images": args.n,
        "methods": list(METHODS),
        "k": args.k,
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "untracked_seconds": round(untracked_s, 2),
        "tracked_seconds_jobs_1": round(tracked_1, 2),
        "tracked_seconds_jobs_2": round(tracked_2, 2),
        f"tracked_seconds_{2 * args.n}_images": round(tracked_large, 2),
        "tracked_over_untracked": round(median([r[1] / r[0] for r in rounds]), 3),
        "tracked_over_untracked_all_rounds": [round(r[1] / r[0], 3) for r in rounds],
        "speedup_2_jobs": round(median([r[1] / r[2] for r in rounds]), 3),
        f"scaling_{2 * args.n}_over_{args.n}": round(median([r[3] / r[1] for r in rounds]), 3),
        "speedup_2_jobs_all_rounds": [round(r[1] / r[2], 3) for r in rounds],
        "tracked_seconds_unsealed": round(tracked_plain, 2),
        "tracked_over_untracked_unsealed": round(median([r[4] / r[0] for r in rounds]), 3),
        "sealing_overhead": round(median([r[1] / r[4] for r in rounds]), 3),
        "sealing_overhead_all_rounds": [round(r[1] / r[4], 3) for r in rounds],
        "sealing_files_per_batch": seal_files,
        "sealing_bytes_per_batch": seal_bytes,
        "sealing_seconds_per_batch": round(seal_s, 4),
        "sealing_share": round(seal_s / tracked_1, 4),
    }
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
