"""The store under several processes: concurrent writers, a writer killed mid-batch, start-up imports."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import skimage.data
from PIL import Image
from rawdb import raw_engine

from imgvault.store import Store

pytestmark = pytest.mark.slow


def write_tiles(folder: Path, count: int, prefix: str) -> list[Path]:
    """``count`` distinct 64x64 tiles of the camera photo as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    camera = skimage.data.camera()
    paths = []
    for n in range(count):
        y, x = divmod(n * 7, 448)
        tile = camera[(y * 3) % 448 : (y * 3) % 448 + 64, x : x + 64].copy()
        tile[0, 0] = n % 256  # distinct bytes even where tiles repeat
        path = folder / f"{prefix}-{n:05d}.png"
        buffer = io.BytesIO()
        Image.fromarray(tile).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def imgvault(*args: str, home: Path, **popen) -> subprocess.Popen:
    """``imgvault ARGS`` in a process of its own, on the store of ``home`` (and IMGVAULT_DB_URL, if set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGVAULT_") or k == "IMGVAULT_DB_URL"}
    env["IMGVAULT_HOME"] = str(home)
    return subprocess.Popen([sys.executable, "-m", "imgvault.cli", *args], env=env, **popen)


def test_several_processes_putting_at_once_lose_nothing(tmp_path, db_url):
    home = tmp_path / "vault"
    Store.init(home).close()
    folders = []
    for n in range(4):
        write_tiles(tmp_path / f"in{n}", 150, f"p{n}")
        folders.append(tmp_path / f"in{n}")
    # Two writers validate in a pool, two in-process: different batch timings interleave.
    writers = [
        imgvault(
            "put",
            str(folder),
            "-c",
            "shared",
            "--jobs",
            str(1 + n % 2),
            home=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n, folder in enumerate(folders)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()
        assert b"locked" not in err
    with Store.open(home) as store:
        names = sorted(image.name for image in store.images("shared"))
        assert names == sorted(p.name for folder in folders for p in folder.iterdir())
        for image in store.images():
            folder = tmp_path / f"in{image.name[1]}"
            assert store.get(image.id) == (folder / image.name).read_bytes()


def test_a_put_killed_mid_batch_leaves_only_complete_records(tmp_path, db_url):
    home = tmp_path / "vault"
    Store.init(home).close()
    sources = {p.name: p for p in write_tiles(tmp_path / "in", 3000, "tile")}
    writer = imgvault("put", str(tmp_path / "in"), home=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                      start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    engine = raw_engine(home)
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.exec_driver_sql("SELECT count(*) FROM images").scalar() >= 300:
                break
        time.sleep(0.02)
    os.killpg(writer.pid, signal.SIGKILL)
    writer.wait()
    if db_url is None:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()
    with Store.open(home) as store:
        images = list(store.images())
        assert 300 <= len(images) < 3000, "the put was not killed mid-way"
        for image in images:
            assert store.get(image.id) == sources[image.name].read_bytes()
        # The store stays usable: the interrupted put can simply be run again.
        assert store.put(sources["tile-02999.png"]).name == "tile-02999.png"


PROBE = """
import sys
from imgvault.cli import cli
try:
    cli({args!r}, prog_name="imgvault")
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("mlflow", "sklearn", "skimage", "sqlalchemy", "alembic") if m in sys.modules)
print("CODE", code, "HEAVY", heavy)
"""


def run_probe(args: list[str], home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGVAULT_")}
    env["IMGVAULT_HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE.format(args=args))], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def test_help_imports_nothing_heavy(tmp_path):
    assert run_probe(["--help"], tmp_path) == "CODE 0 HEAVY []"


@pytest.mark.parametrize(
    "args", [["ls"], ["ls", "--encoded"], ["collections"], ["put", "IMAGE"], ["get", "ID", "-o", "OUT"]]
)
def test_store_commands_do_not_import_mlflow_or_scikit_learn(tmp_path, clean_env, args):
    home = tmp_path / "vault"
    with Store.init(home) as store:
        image = store.put(Path(skimage.data.__file__).parent / "camera.png")
    args = [{"IMAGE": str(Path(skimage.data.__file__).parent / "camera.png"), "ID": image.id,
             "OUT": str(tmp_path / "out.png")}.get(a, a) for a in args]  # fmt: skip
    # The database layer, and nothing of the methods, the tracker, or the migrations.
    assert run_probe(args, home) == "CODE 0 HEAVY ['sqlalchemy']"
