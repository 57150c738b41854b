"""Where ``get`` and ``decode`` write: a new regular file, never whatever already sits at the path."""

import json
import os
import stat

import pytest

from imgvault.cli import cli
from imgvault.store import Store


@pytest.fixture
def image_id(home, runner, image_dir) -> str:
    assert runner.invoke(cli, ["init"]).exit_code == 0
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "flower.bmp"), "--json"]).stdout)
    return image["id"]


@pytest.fixture
def encoded_id(image_id, runner) -> str:
    result = runner.invoke(cli, ["encode", image_id, "-m", "aes", "--size", "16", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["encoded_id"]


def _fifo(path):
    os.mkfifo(path, 0o600)
    return path


def _device(path):
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("creating a device node needs root")
    return path


def _symlink(path):
    target = path.with_name("target.txt")
    target.write_text("the link's target")
    path.symlink_to(target)
    return path


def _directory(path):
    path.mkdir()
    return path


NOT_REGULAR = {
    "symlink": (_symlink, "a symbolic link"),
    "fifo": (_fifo, "a FIFO"),
    "device": (_device, "a character device"),
    "directory": (_directory, "a directory"),
}


def _same_thing(before: os.stat_result, path) -> bool:
    after = os.lstat(path)
    return (after.st_ino, after.st_mode, after.st_size) == (before.st_ino, before.st_mode, before.st_size)


def test_get_refuses_an_existing_file_unless_forced(image_id, runner, image_dir, tmp_path):
    target = tmp_path / "out.bmp"
    target.write_bytes(b"precious")
    refused = runner.invoke(cli, ["get", image_id, "-o", str(target)])
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"Error: {target} already exists (use --force to replace it, or -o to write elsewhere)\n",
    )
    assert target.read_bytes() == b"precious"
    forced = runner.invoke(cli, ["get", image_id, "-o", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes() == (image_dir / "flower.bmp").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bmp", "vault"]


@pytest.mark.parametrize("kind", sorted(NOT_REGULAR))
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_get_never_replaces_what_is_not_a_regular_file(image_id, runner, tmp_path, kind, force):
    make, description = NOT_REGULAR[kind]
    target = make(tmp_path / "out.bmp")
    before = os.lstat(target)
    result = runner.invoke(cli, ["get", image_id, "-o", str(target), *(["--force"] if force else [])])
    assert result.exit_code == 1
    if force:
        assert result.stderr == f"Error: {target} is {description}, not a regular file; refusing to replace it\n"
    else:
        assert result.stderr.startswith(f"Error: {target} already exists")
    assert _same_thing(before, target)
    if kind == "symlink":
        assert (tmp_path / "target.txt").read_text() == "the link's target"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_get_to_dash_still_writes_stdout(image_id, runner, image_dir):
    result = runner.invoke(cli, ["get", image_id, "-o", "-"])
    assert result.exit_code == 0
    assert result.stdout_bytes == (image_dir / "flower.bmp").read_bytes()


def test_decode_refuses_an_existing_file_and_a_fifo_even_when_forced(encoded_id, runner, tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    refused = runner.invoke(cli, ["decode", encoded_id, "-o", str(target)])
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: {target} already exists")
    assert target.read_bytes() == b"precious"
    assert runner.invoke(cli, ["decode", encoded_id, "-o", str(target), "--force"]).exit_code == 0
    assert target.read_bytes().startswith(b"\x89PNG")
    fifo = _fifo(tmp_path / "pipe.png")
    result = runner.invoke(cli, ["decode", encoded_id, "-o", str(fifo), "--force"])
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: {fifo} is a FIFO, not a regular file; refusing to replace it\n",
    )
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize(
    ("stored_name", "written"),
    [
        ("-", None),
        ("../../escape.bmp", "escape.bmp"),
        (".bashrc", "bashrc"),
        ("--help", "help"),
        ("line\nbreak\x1b[31m.bmp", "line_break_[31m.bmp"),
        ("..", None),
    ],
)
def test_the_default_output_name_is_sanitised(image_id, home, runner, image_dir, tmp_path, monkeypatch, stored_name,
                                             written):  # fmt: skip
    with Store.open(home) as store:
        image = store.put((image_dir / "flower.bmp").read_bytes(), name=stored_name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = runner.invoke(cli, ["get", image.id])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b""
    expected = written or f"image-{image.id}.bmp"
    assert [p.name for p in work.iterdir()] == [expected]
    assert (work / expected).read_bytes() == (image_dir / "flower.bmp").read_bytes()
