"""``put`` under files an attacker or a careless user offers: every file gets one outcome, nothing hangs,
no limit can be walked around, and nothing a name holds reaches the terminal raw."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import warnings
from contextlib import contextmanager, suppress

import hostile
import pytest
import sqlalchemy

from imgvault.basics.errors import InvalidImage, InvalidMetadata
from imgvault.cli import cli
from imgvault.cli.group import describe_error
from imgvault.store import Store
from imgvault.store.validate import MAX_FRAMES, MAX_METADATA_BYTES, MAX_PIXELS, MAX_TOTAL_PIXELS, inspect_image


@pytest.fixture
def initialised(home, runner):
    assert runner.invoke(cli, ["init"]).exit_code == 0
    return home


def stored_names(home, collection=None) -> list[str]:
    with Store.open(home) as store:
        return sorted(image.name for image in store.images(collection))


@contextmanager
def unblocking(fifo):
    """If anything opens ``fifo`` for reading, a writer shows up and closes it, so that a test fails
    instead of hanging forever."""
    done = threading.Event()

    def writer():
        while not done.wait(0.2):
            with suppress(OSError):  # no reader yet (ENXIO), or the FIFO is gone
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield fifo
    finally:
        done.set()
        thread.join()


# -- one outcome per file --------------------------------------------------------------------------


def test_a_tiff_whose_second_ifd_is_empty_is_that_files_error_and_the_rest_are_stored(initialised, runner,
                                                                                      image_dir, tmp_path):  # fmt: skip
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    (folder / "b.tif").write_bytes(hostile.tiff_with_empty_second_ifd())
    (folder / "c.jpg").write_bytes((image_dir / "china.jpg").read_bytes())
    result = runner.invoke(cli, ["put", str(folder)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"Error: {folder / 'b.tif'}: truncated or corrupt image (")
    assert lines[1:] == ['Stored 2 images in collection "default"; 1 failed.']
    assert stored_names(initialised) == ["a.png", "c.jpg"]


def test_a_file_name_that_is_not_utf8_is_stored_and_printed_escaped(initialised, runner, image_dir, tmp_path):
    folder = tmp_path / "latin1"
    folder.mkdir()
    good = folder / os.fsdecode(b"caf\xe9.png")
    good.write_bytes((image_dir / "camera-gray.png").read_bytes())
    bad = folder / os.fsdecode(b"r\xe9sum\xe9.txt")
    bad.write_bytes(b"not an image")
    (folder / "plain.jpg").write_bytes((image_dir / "china.jpg").read_bytes())
    result = runner.invoke(cli, ["put", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {folder}/r\\xe9sum\\xe9.txt: not an image file (Pillow cannot identify it)",
        'Stored 2 images in collection "default"; 1 failed.',
    ]
    assert f"  {folder}/caf\\xe9.png" in result.stdout
    assert stored_names(initialised) == ["caf\\xe9.png", "plain.jpg"]


# -- what is not a regular file --------------------------------------------------------------------


def test_a_fifo_is_refused_without_being_opened(initialised, runner, image_dir, tmp_path):
    folder = tmp_path / "with-fifo"
    folder.mkdir()
    (folder / "a.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    os.mkfifo(folder / "pipe.png")
    with unblocking(folder / "pipe.png"):
        result = runner.invoke(cli, ["put", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {folder / 'pipe.png'}: is a FIFO, not a regular file",
        'Stored 1 image in collection "default"; 1 failed.',
    ]
    assert stored_names(initialised) == ["a.png"]


def test_a_fifo_as_the_key_file_is_refused_by_every_command(initialised, runner):
    key_file = initialised / "keyset.json"
    key_file.unlink()
    os.mkfifo(key_file, 0o600)
    with unblocking(key_file):
        for args in (["ls"], ["collections"], ["key", "rotate"]):
            result = runner.invoke(cli, args)
            assert (result.exit_code, result.stderr) == (
                1,
                f"Error: key file {key_file} is a FIFO, not a regular file\n",
            ), args


def _too_deep_to_list(root) -> str:
    """A folder whose path is longer than PATH_MAX: it exists, but no one (root neither) can list it by name."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    path = str(root)
    try:
        while len(path) <= 4200:
            name = "d" * 250
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
            path = os.path.join(path, name)
    finally:
        os.close(fd)
    return path


def test_a_folder_that_cannot_be_read_is_an_error_and_the_rest_is_stored(initialised, runner, image_dir, tmp_path):
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / "a.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    deep = _too_deep_to_list(folder)
    result = runner.invoke(cli, ["put", str(folder)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    [error] = [line for line in lines if line.startswith("Error:")]
    assert error.startswith("Error: ") and error.endswith(": cannot read folder (File name too long)")
    assert deep.startswith(error[len("Error: ") : -len(": cannot read folder (File name too long)")])
    assert lines[-1] == 'Stored 1 image in collection "default"; 1 failed.'
    assert stored_names(initialised) == ["a.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_a_folder_without_read_permission_is_an_error(initialised, runner, tmp_path):
    folder = tmp_path / "tree" / "locked"
    folder.mkdir(parents=True)
    folder.chmod(0)
    try:
        result = runner.invoke(cli, ["put", str(tmp_path / "tree")])
    finally:
        folder.chmod(0o700)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"Error: {folder}: cannot read folder (Permission denied)"


# -- limits that hold for every frame --------------------------------------------------------------


def test_paths_longer_than_the_system_allows_are_each_an_error_and_nothing_hangs(initialised, image_dir, tmp_path):
    # 30 KB each ("d/../" does not shorten, unlike "./"): the workers' messages outgrow a pipe's buffer.
    (tmp_path / "d").mkdir()
    (tmp_path / "x.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    paths = ["d/../" * 6000 + "x.png"] * 48
    command = [sys.executable, "-m", "imgvault.cli", "put", *paths]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as put:  # fmt: skip
        try:
            _, err = put.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(put.pid, signal.SIGKILL)
            err = "hung"
    assert err != "hung" and put.returncode == 1
    lines = err.splitlines()
    assert len(lines) == 49 and all(line.endswith(": cannot read (File name too long)") for line in lines[:48])
    assert lines[-1] == 'Stored 0 images in collection "default"; 48 failed.'


def test_every_page_of_a_tiff_is_held_to_the_pixel_limit_before_it_is_decoded():
    with pytest.raises(InvalidImage) as caught:
        inspect_image(hostile.tiff_with_huge_second_page(13000, 13000), "pages.tif")
    assert str(caught.value) == (
        f"pages.tif: page 2 is 13000x13000 = 169,000,000 pixels, more than the limit of {MAX_PIXELS:,}"
        " (decompression bomb protection)"
    )


def test_a_gif_whose_frames_add_up_past_the_total_pixel_budget_is_refused():
    frames_allowed = MAX_TOTAL_PIXELS // (9000 * 9000)
    with pytest.raises(InvalidImage) as caught:
        inspect_image(hostile.gif_bomb(9000, 9000, 50), "bomb.gif")
    assert str(caught.value) == (
        f"bomb.gif: frame {frames_allowed + 1} would bring the pixels decoded to"
        f" {(frames_allowed + 1) * 81_000_000:,}, more than the limit of {MAX_TOTAL_PIXELS:,} for all frames"
        " (decompression bomb protection)"
    )


def test_a_gif_with_more_frames_than_the_cap_is_refused():
    inspect_image(hostile.gif_bomb(4, 4, MAX_FRAMES), "just-enough.gif")
    with pytest.raises(InvalidImage) as caught:
        inspect_image(hostile.gif_bomb(4, 4, MAX_FRAMES + 1), "many.gif")
    assert str(caught.value) == f"many.gif: more than {MAX_FRAMES:,} frames"


def test_metadata_has_a_size_limit(initialised, runner, image_dir):
    big = "x" * MAX_METADATA_BYTES
    result = runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--meta", f"note={big}"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: metadata is {MAX_METADATA_BYTES + 12:,} bytes as JSON, more than the limit of {MAX_METADATA_BYTES:,}"
    )
    assert stored_names(initialised) == []
    with Store.open(initialised) as store, pytest.raises(InvalidMetadata):
        store.put((image_dir / "china.jpg").read_bytes(), metadata={"note": big})


# -- terminal hygiene ------------------------------------------------------------------------------


def test_control_characters_in_names_are_escaped_in_tables_and_kept_exact_in_json(initialised, runner, image_dir,
                                                                                  tmp_path):  # fmt: skip
    name = "evil\n\x1b[31mred\x07.png"
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / name).write_bytes((image_dir / "camera-gray.png").read_bytes())
    (folder / "bad\x1b]0;title\x07.txt").write_bytes(b"not an image")
    put = runner.invoke(cli, ["put", str(folder)])
    assert put.exit_code == 1
    escaped = "evil\\n\\x1b[31mred\\x07.png"
    [line] = put.stdout.splitlines()
    assert line.endswith(f"  {folder}/{escaped}")
    assert put.stderr.splitlines()[0] == (
        f"Error: {folder}/bad\\x1b]0;title\\x07.txt: not an image file (Pillow cannot identify it)"
    )
    listed = runner.invoke(cli, ["ls"]).stdout
    assert "\x1b" not in listed and "\x07" not in listed
    assert listed.splitlines()[1].endswith(f"  {escaped}")
    [image] = json.loads(runner.invoke(cli, ["ls", "--json"]).stdout)
    assert image["name"] == name


def test_pillow_warnings_never_escape_the_validator():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inspect_image(hostile.tiff_with_a_tag_larger_than_the_file(), "tag.tif")
        with pytest.raises(InvalidImage):
            inspect_image(hostile.tiff_with_empty_second_ifd(), "pages.tif")
    assert [str(w.message) for w in caught] == []


def _disk_full_error() -> Exception:
    """The error SQLite really raises when it cannot grow its file (SQLITE_FULL), through SQLAlchemy."""
    engine = sqlalchemy.create_engine("sqlite://")

    @sqlalchemy.event.listens_for(engine, "connect")
    def _tiny(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA max_page_count = 2")

    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x BLOB)")
            connection.exec_driver_sql("INSERT INTO t VALUES (zeroblob(100000))")
    except sqlalchemy.exc.OperationalError as exc:
        assert isinstance(exc.orig, sqlite3.OperationalError)
        return exc
    finally:
        engine.dispose()
    raise AssertionError("SQLite did not fill up")


def test_a_full_disk_is_a_specific_error_line():
    assert describe_error(_disk_full_error()) == (
        "the disk holding the store's database is full (database or disk is full); nothing of the"
        " failed write was stored"
    )
    assert describe_error(OSError(28, "No space left on device")) == "no space left on device"


def test_the_limits_are_documented_as_they_are(runner):
    from pathlib import Path

    tour = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()  # its "Limits"
    put_help = runner.invoke(cli, ["put", "--help"]).stdout
    for text in (tour, put_help):
        for number in (MAX_PIXELS, MAX_FRAMES, MAX_TOTAL_PIXELS):
            assert f"{number:,}" in text
        assert f"{MAX_METADATA_BYTES // 1024} KiB" in text
    for command in ("get", "decode"):
        assert "--force" in runner.invoke(cli, [command, "--help"]).stdout


# -- bounded in time, not only in pixels ------------------------------------------------------------------


def test_a_scan_bomb_over_the_cpu_budget_is_that_files_error_and_the_rest_are_stored(
        initialised, runner, image_dir, tmp_path, monkeypatch):  # fmt: skip
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    (folder / "b.jpg").write_bytes(hostile.jpeg_scan_bomb(2048, 600))  # about 0.25 s of CPU to decode
    (folder / "c.jpg").write_bytes((image_dir / "china.jpg").read_bytes())
    monkeypatch.setenv("IMGVAULT_DECODE_CPU_SECONDS", "0.05")
    result = runner.invoke(cli, ["put", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {folder / 'b.jpg'}: took more than 0.05 s of CPU to decode, the limit for one file (a decompression"
        " bomb? IMGVAULT_DECODE_CPU_SECONDS sets it)",
        'Stored 2 images in collection "default"; 1 failed.',
    ]
    assert stored_names(initialised) == ["a.png", "c.jpg"]
    # Within the default budget it is an image like any other: the budget, not the file, refused it.
    monkeypatch.delenv("IMGVAULT_DECODE_CPU_SECONDS")
    assert inspect_image((folder / "b.jpg").read_bytes(), "b.jpg").format == "JPEG"


def test_the_cpu_budget_holds_in_worker_processes_and_from_other_threads(monkeypatch, image_dir, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from imgvault.store.ingest import POOL_THRESHOLD, check_files

    bomb = hostile.jpeg_scan_bomb(2048, 600)
    monkeypatch.setenv("IMGVAULT_DECODE_CPU_SECONDS", "0.05")
    over = r"took more than 0\.05 s of CPU"
    # From a thread that is not the main one (a server's): decoded in a worker process that holds the budget.
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(InvalidImage, match=over):
            pool.submit(inspect_image, bomb, "upload.jpg").result()
        assert pool.submit(inspect_image, (image_dir / "china.jpg").read_bytes(), "ok.jpg").result().format == "JPEG"
    # A put large enough for a pool of workers: each holds the budget per file, and goes on with the next.
    paths = []
    for n in range(POOL_THRESHOLD + 4):
        path = tmp_path / f"{n:03d}.jpg"
        path.write_bytes(bomb if n == 5 else (image_dir / "china.jpg").read_bytes())
        paths.append(path)
    checked = list(check_files(paths, jobs=2))
    assert [c.path for c in checked] == paths
    assert [n for n, c in enumerate(checked) if c.error] == [5] and re.search(over, checked[5].error)


def test_a_bad_cpu_budget_is_one_clear_error(initialised, runner, image_dir, monkeypatch):
    monkeypatch.setenv("IMGVAULT_DECODE_CPU_SECONDS", "soon")
    result = runner.invoke(cli, ["put", str(image_dir / "china.jpg")])
    assert result.exit_code == 1
    assert "IMGVAULT_DECODE_CPU_SECONDS must be a positive number of seconds, not 'soon'" in result.stderr


def test_what_libtiff_and_libjpeg_print_becomes_part_of_that_files_error(initialised, image_dir, tmp_path):
    # A real process: C libraries write to file descriptor 2 itself, which CliRunner does not capture.
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    (folder / "b.tif").write_bytes(hostile.tiff_with_bogus_jpeg_tables())
    env = {**os.environ, "IMGVAULT_HOME": str(initialised)}
    done = subprocess.run([sys.executable, "-m", "imgvault.cli", "put", str(folder)], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[1] == 'Stored 1 image in collection "default"; 1 failed.', lines
    assert lines[0].startswith(f"Error: {folder / 'b.tif'}: truncated or corrupt image (")
    assert "Bogus DQT index 7" in lines[0]  # the library's words, attributed to the file
