"""Erasing images from the runs that showed them: their figures, their rows of ``images.json``, their metric points.

A child run of a batch shows each image in three places: the figure of its step (``images/<key>+step+<n>+...``,
a PNG and MLflow's thumbnail of it, whose "original" panel is the image), its row of ``images.json``, and
its points (step ``n``) of the per-image metric series. :func:`erase_from_runs` removes all three for the
embedded default's tracking store (``mlflow.db`` and sealed artifacts in the home); the runs, their means
and the parent runs' charts stay.

No MLflow here: ``imgvault rm`` is a store command and stays light. MLflow's database schema has kept the
tables used here (``runs``, ``tags``, ``metrics``, ``latest_metrics``) since MLflow 1.
"""

import json
import re
import sqlite3
import urllib.parse
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from imgvault.basics.errors import IntegrityError
from imgvault.store.config import sqlite_file
from imgvault.tracker.sealing.files import HOME, KIND, PREFIX, legacy_places, local_place, write_file_atomically

TABLE = "images.json"  # a child run's table, one row per image, with its image_id
SERIES_PREFIX = "image/"  # the per-image metric series, step = the image's index in the table
_STEP = re.compile(r"\+step\+(\d+)\+")


@dataclass
class Erasure:
    """What :func:`erase_from_runs` removed (or, with ``keep_runs``, found and left), and what it could not reach."""

    runs: int = 0  # runs that showed one of the images
    figures: int = 0  # files: each figure's PNG and its thumbnail
    table_rows: int = 0
    metric_points: int = 0
    unreachable: list[str] = field(default_factory=list)  # where figures may remain, that this cannot search

    def to_dict(self) -> dict:
        return {"runs": self.runs, "figures": self.figures, "table_rows": self.table_rows,
                "metric_points": self.metric_points, "unreachable": self.unreachable}  # fmt: skip


def erase_from_runs(sealer, home: Path, tracking_uri: str, image_ids, *, keep_runs: bool = False) -> Erasure:
    """Remove every figure, table row and per-image metric point of ``image_ids`` from the runs of the tracking
    store at ``tracking_uri``; with ``keep_runs``, only count them. Each run's table is rewritten last, so an
    erasure killed half-way is completed by running it again (the table still names the images)."""
    wanted = set(image_ids)
    erasure = Erasure()
    database = sqlite_file(tracking_uri)
    if database is None:
        erasure.unreachable.append(tracking_uri)
        return erasure
    if not database.is_file():
        return erasure
    with closing(sqlite3.connect(database, timeout=30)) as connection:
        runs = connection.execute(
            "SELECT r.run_uuid, r.artifact_uri FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid"
            " WHERE t.key = 'imgvault.kind' AND t.value = 'child'"
        ).fetchall()
        for run_id, artifact_uri in runs:
            folder = _local_folder(home, database, artifact_uri)
            if folder is None:
                erasure.unreachable.append(artifact_uri)
                continue
            table_file = folder / TABLE
            if not table_file.is_file():
                continue
            table = json.loads(_open(sealer, run_id, table_file, TABLE))
            index = table["columns"].index("image_id")
            steps = {row[table["columns"].index("step")] if "step" in table["columns"] else number
                     for number, row in enumerate(table["data"]) if row[index] in wanted}  # fmt: skip
            figures = _figures(folder, steps)
            if not steps and not figures:
                continue
            erasure.runs += 1
            erasure.figures += len(figures)
            erasure.table_rows += sum(1 for row in table["data"] if row[index] in wanted)
            erasure.metric_points += _metric_points(connection, run_id, steps, delete=False)
            if keep_runs:
                continue
            for path in figures:
                path.unlink(missing_ok=True)
            with connection:
                _metric_points(connection, run_id, steps, delete=True)
            table["data"] = [row for row in table["data"] if row[index] not in wanted]
            write_file_atomically(table_file, _seal(sealer, run_id, TABLE, json.dumps(table).encode()), durable=True)
    return erasure


def _local_folder(home: Path, database: Path, artifact_uri: str | None) -> Path | None:
    """The folder of a run's artifacts on this machine, or None when they are elsewhere (an object store)."""
    inner = (artifact_uri or "")[len(PREFIX) :] if (artifact_uri or "").startswith(PREFIX) else artifact_uri or ""
    parsed = urllib.parse.urlparse(inner)
    path = urllib.parse.unquote(parsed.path)
    if parsed.scheme == HOME:
        # As the repository resolves it: against the folder of the tracking database that records it.
        return database.absolute().parent / path.lstrip("/")
    if parsed.scheme in ("file", "") and path:
        return Path(path)
    return None


def _figures(folder: Path, steps: set[int]) -> list[Path]:
    images = folder / "images"
    if not steps or not images.is_dir():
        return []
    return sorted(p for p in images.iterdir() if (found := _STEP.search(p.name)) and int(found[1]) in steps)


def _metric_points(connection, run_id: str, steps: set[int], *, delete: bool) -> int:
    if not steps:
        return 0
    marks = ",".join("?" * len(steps))
    where = f"run_uuid = ? AND key LIKE '{SERIES_PREFIX}%' AND step IN ({marks})"
    if not delete:
        return connection.execute(f"SELECT count(*) FROM metrics WHERE {where}", (run_id, *steps)).fetchone()[0]
    keys = [key for (key,) in connection.execute(f"SELECT DISTINCT key FROM metrics WHERE {where}", (run_id, *steps))]
    removed = connection.execute(f"DELETE FROM metrics WHERE {where}", (run_id, *steps)).rowcount
    for key in keys:
        # MLflow's latest value of a series: the highest step, then the latest timestamp, then the largest value.
        connection.execute("DELETE FROM latest_metrics WHERE run_uuid = ? AND key = ?", (run_id, key))
        connection.execute(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
            " SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics WHERE run_uuid = ? AND key = ?"
            " ORDER BY step DESC, timestamp DESC, value DESC LIMIT 1",
            (run_id, key),
        )
    return removed


def _seal(sealer, run_id: str, path: str, data: bytes) -> bytes:
    return sealer.seal(KIND, f"run:{run_id}/{path}", data)


def _open(sealer, run_id: str, file: Path, path: str) -> bytes:
    blob = file.read_bytes()
    for place in (f"run:{run_id}/{path}", *legacy_places(local_place(file))):
        try:
            return sealer.open(KIND, place, blob)
        except IntegrityError:
            continue
    raise IntegrityError(f"artifact {file} failed its integrity check: nothing was erased from run {run_id}")
