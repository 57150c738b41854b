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


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split()]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("stdout", ["read", "not read"])
def test_ctrl_c_during_a_put_stops_it_with_its_summary_whole_batches_and_no_worker_left(tmp_path, db_url, stdout):
    from imgvault.store.images import BATCH_IMAGES

    home = tmp_path / "vault"
    Store.init(home).close()
    sources = {p.name: p for p in write_tiles(tmp_path / "in", 3000, "tile")}
    # Not read (a pager that waits): the command is stopped in the middle of printing a result, not in the put.
    put = imgvault("put", str(tmp_path / "in"), "--jobs", "2", home=home,
                   stdout=subprocess.DEVNULL if stdout == "read" else subprocess.PIPE, stderr=subprocess.PIPE,
                   text=True, start_new_session=True)  # fmt: skip
    engine = raw_engine(home)
    deadline = time.monotonic() + 120
    counted, since = 0, time.monotonic()
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT count(*) FROM images").scalar()
        if count != counted:
            counted, since = count, time.monotonic()
        # Read: stopped as soon as a batch is in. Not read: once the put stalls, its output pipe full.
        if count >= BATCH_IMAGES and (stdout == "read" or time.monotonic() - since > 1):
            break
        time.sleep(0.02)
    engine.dispose()
    workers = _children(put.pid)
    os.killpg(put.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    _, err = put.communicate(timeout=60)
    assert len(workers) == 2
    gone = time.monotonic() + 10
    while any(map(_running, workers)) and time.monotonic() < gone:
        time.sleep(0.05)
    assert not any(map(_running, workers))
    assert put.returncode == 1 and "Traceback" not in err
    summary, aborted = [line for line in err.splitlines() if line]
    assert aborted == "Aborted!"
    with Store.open(home) as store:
        images = list(store.images())
        assert BATCH_IMAGES <= len(images) < 3000 and len(images) % BATCH_IMAGES == 0
        # Said before it stops, however far the put had got in committing and in printing what it committed.
        assert summary == f'Stored {len(images)} images in collection "default".'
        for image in images:
            assert store.get(image.id) == sources[image.name].read_bytes()


PROBE = """
import sys
from imgvault.cli import cli
try:
    cli({args!r}, prog_name="imgvault")
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("mlflow", "sklearn", "skimage", "sqlalchemy", "alembic", "fastapi", "starlette",
                           "uvicorn", "jinja2", "python_multipart") if m in sys.modules)
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
    ("args", "heavy"),
    [
        # A SQLite store is read with sqlite3 (imgvault.store.database); a write imports SQLAlchemy.
        (["ls"], []),
        (["ls", "--json"], []),
        (["ls", "--encoded"], []),
        (["collections"], []),
        (["put", "IMAGE"], ["sqlalchemy"]),
        (["get", "ID", "-o", "OUT"], []),
        (["token", "ls"], []),
    ],
)
def test_store_commands_do_not_import_mlflow_scikit_learn_or_web_frameworks(tmp_path, clean_env, args, heavy):
    home = tmp_path / "vault"
    with Store.init(home) as store:
        image = store.put(Path(skimage.data.__file__).parent / "camera.png")
    args = [{"IMAGE": str(Path(skimage.data.__file__).parent / "camera.png"), "ID": image.id,
             "OUT": str(tmp_path / "out.png")}.get(a, a) for a in args]  # fmt: skip
    # At most the database layer, and nothing of the methods, the tracker, or the migrations.
    assert run_probe(args, home) == f"CODE 0 HEAVY {heavy}"


def key_ids(home: Path) -> tuple[set[int], set[int]]:
    """The key ids in the key file and in the store's keys table."""
    import json

    from imgvault.store import schema

    in_file = {k["key_id"] for k in json.loads((home / "keyset.json").read_text())["keys"]}
    engine = raw_engine(home)
    with engine.connect() as connection:
        in_store = set(connection.execute(schema.keys.select().with_only_columns(schema.keys.c.key_id)).scalars())
    engine.dispose()
    return in_file, in_store


BUSY = "Error: another key rotation is in progress on this store; run imgvault key rotate again when it has finished\n"


def test_rotations_started_at_once_run_one_at_a_time_and_leave_store_and_key_file_agreeing(tmp_path, db_url):
    home = tmp_path / "vault"
    sources = write_tiles(tmp_path / "in", 120, "tile")
    with Store.init(home) as store:
        images = {result.image.id: result.path for result in store.put_many(sources, jobs=1)}
    outcomes = []
    for _ in range(4):
        rotations = [imgvault("key", "rotate", home=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for _ in range(3)]  # fmt: skip
        for rotation in rotations:
            _, err = rotation.communicate(timeout=300)
            assert (rotation.returncode, err.decode()) in ((0, ""), (1, BUSY)), err.decode()
            outcomes.append(rotation.returncode)
        in_file, in_store = key_ids(home)
        assert len(in_file) == 1 and in_file == in_store
        assert not list(home.glob(".keyset.json.*.tmp"))
    assert 0 in outcomes
    with Store.open(home) as store:
        for image_id, path in images.items():
            assert store.get(image_id) == path.read_bytes()


KILLED_ROTATION = """
import os, signal, sys
from imgvault.store import Store

real_replace, calls = os.replace, 0

def replace_or_die(source, target):
    # SIGKILL between writing the temporary key file and renaming it, at write number {write}.
    global calls
    calls += 1
    if calls == {write}:
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(source, target)

os.replace = replace_or_die
Store.open(sys.argv[1]).rotate_key()
"""


@pytest.mark.parametrize("write", [1, 2], ids=["adding-the-new-key", "retiring-the-old-key"])
def test_a_rotation_killed_while_writing_the_key_file_leaves_nothing_behind_after_the_next_command(
    tmp_path, db_url, write
):
    home = tmp_path / "vault"
    with Store.init(home) as store:
        image = store.put(write_tiles(tmp_path / "in", 1, "tile")[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGVAULT_") or k == "IMGVAULT_DB_URL"}
    killed = subprocess.run([sys.executable, "-c", KILLED_ROTATION.format(write=write), str(home)], env=env,
                            capture_output=True)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    [leftover] = home.glob(".keyset.json.*.tmp")  # what a killed rotation leaves: it holds keys
    lister = imgvault("ls", home=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = lister.communicate(timeout=60)
    assert lister.returncode == 0, err.decode()
    assert not leftover.exists()
    in_file, in_store = key_ids(home)
    assert in_file == in_store and len(in_file) == 1  # killed while retiring: the retirement is completed
    with Store.open(home) as store:
        assert store.get(image.id) == (tmp_path / "in" / "tile-00000.png").read_bytes()
        store.rotate_key()


@pytest.mark.parametrize("args", [["run", "-c", "nosuch", "-m", "pca"], ["compare", "-c", "nosuch"],
                                  ["report", "-c", "nosuch", "-o", "-"]])  # fmt: skip
def test_an_unknown_collection_is_answered_without_importing_mlflow_or_the_methods(tmp_path, clean_env, args):
    Store.init(tmp_path / "vault").close()
    # The Error line itself is checked in test_cli; here only what it took to get there.
    assert run_probe(args, tmp_path / "vault") == "CODE 1 HEAVY []"
