"""Scale-out: what the Dask cluster path and the PostgreSQL store cost against their local baselines.

    python benchmarks/scaleout_bench.py --json                      # the Dask figures
    IMGVAULT_TEST_PG_URL=postgresql+psycopg://... python benchmarks/scaleout_bench.py --json   # and PostgreSQL

All in one process, on real ~100x100 tiles of the photos shipped with scikit-image and scikit-learn:

  dask_over_local      a tracked batch (100 images x pca, kmeans, gmm, k=8) on a Dask LocalCluster of 2
                       single-threaded worker processes, over the same batch with joblib's 2 local
                       processes: the cost of the cluster path on one machine            (target <= 1.3)
  pg_put_over_sqlite   put_many of 2,000 images into a store on PostgreSQL (loopback) over SQLite
  pg_get_over_sqlite   median get latency, PostgreSQL over SQLite

Rounds are interleaved and medians reported, as the machine is shared.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from run_bench import tracked
from store_bench import print_figures, write_images


def put_and_get(settings, paths) -> tuple[float, float]:
    """(seconds to put every path, median seconds of a get) on a new store with ``settings``."""
    from imgvault.store import Store

    store = Store.init(settings=settings)
    started = time.perf_counter()
    ids = [result.image.id for result in store.put_many(paths, collection="bench")]
    put_s = time.perf_counter() - started
    gets = []
    for image_id in ids[:500]:
        t = time.perf_counter()
        store.get(image_id)
        gets.append(time.perf_counter() - t)
    store.close()
    return put_s, float(np.median(gets))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="images in the batch (default 100)")
    parser.add_argument("--puts", type=int, default=2000, help="images put per store (default 2000)")
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from distributed import LocalCluster

    from imgvault.store import Settings, Store

    pg_url = os.environ.get("IMGVAULT_TEST_PG_URL")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    with (
        tempfile.TemporaryDirectory(prefix="imgvault-scaleout-bench-") as tmp,
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
    ):
        tmp = Path(tmp)
        store = Store.init(settings=Settings.resolve(tmp / "vault", environ={}))
        list(store.put_many(write_images(tmp / "batch", args.n, seed=1), collection="batch"))
        list(store.put_many(write_images(tmp / "warm", 8, seed=3), collection="warm"))
        tracked(store, "warm", args.k, 2, "warm-local")  # imports, MLflow's schema, joblib's pool
        tracked(store, "warm", args.k, -1, "warm-dask", cluster.scheduler_address)  # the workers' imports
        puts = write_images(tmp / "puts", args.puts, seed=4)

        rounds, store_rounds = [], []
        for n in range(args.rounds):
            local = tracked(store, "batch", args.k, 2, f"local-{n}")
            remote = tracked(store, "batch", args.k, -1, f"dask-{n}", cluster.scheduler_address)
            rounds.append((local, remote))
            if pg_url:
                sqlite = put_and_get(Settings.resolve(tmp / f"sqlite-{n}", environ={}), puts)
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                _schema(pg_url, f"CREATE SCHEMA {schema}")
                url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
                try:
                    pg = put_and_get(Settings.resolve(tmp / f"pg-{n}", environ={"IMGVAULT_DB_URL": url}), puts)
                finally:
                    _schema(pg_url, f"DROP SCHEMA {schema} CASCADE")
                store_rounds.append((sqlite, pg))
        store.close()

    def median(values):
        return round(float(np.median(values)), 3)

    figures = {
        "n_images": args.n,
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "local_seconds_jobs_2": median([r[0] for r in rounds]),
        "dask_seconds_2_workers": median([r[1] for r in rounds]),
        "dask_over_local": median([r[1] / r[0] for r in rounds]),
        "dask_over_local_all_rounds": [round(r[1] / r[0], 3) for r in rounds],
    }
    if store_rounds:
        figures.update({
            "puts": args.puts,
            "sqlite_puts_per_second": median([args.puts / s[0][0] for s in store_rounds]),
            "pg_puts_per_second": median([args.puts / s[1][0] for s in store_rounds]),
            "pg_put_over_sqlite": median([s[1][0] / s[0][0] for s in store_rounds]),
            "sqlite_get_ms": median([s[0][1] * 1000 for s in store_rounds]),
            "pg_get_ms": median([s[1][1] * 1000 for s in store_rounds]),
            "pg_get_over_sqlite": median([s[1][1] / s[0][1] for s in store_rounds]),
        })  # fmt: skip
    print_figures(figures, args.json)


def _schema(url: str, statement: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(statement)
    engine.dispose()


if __name__ == "__main__":
    main()
