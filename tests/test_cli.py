"""The imgvault command: outputs, exit codes and the one-line errors people see."""

import hashlib
import io
import json
import re

import click
import pytest
from PIL import Image
from rawdb import raw_engine, tamper

from imgvault.cli import cli
from imgvault.store import Settings, Store, schema
from imgvault.store.schema import SCHEMA_REVISION

IMAGE_FIELDS = {"id", "name", "collection", "format", "width", "height", "bytes"}


@pytest.fixture
def initialised(home, runner):
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    return home


def stored_ids(home) -> list[str]:
    with Store.open(home) as store:
        return [image.id for image in store.images()]


def test_init_creates_home_key_file_and_store(home, runner):
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 0
    assert f"Created an imgvault store in {home}" in result.stdout
    assert (home / "keyset.json").stat().st_mode & 0o777 == 0o600
    assert Store.exists(Settings.resolve(home))


def test_init_refuses_to_overwrite_an_existing_store(initialised, runner):
    key_before = (initialised / "keyset.json").read_bytes()
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: a store already exists in {Settings.resolve(initialised).describe_db()}\n"
    assert (initialised / "keyset.json").read_bytes() == key_before


def test_init_exist_ok_accepts_a_store_its_key_opens_and_changes_nothing(initialised, runner):
    key_before = (initialised / "keyset.json").read_bytes()
    result = runner.invoke(cli, ["init", "--exist-ok"])
    assert (result.exit_code, result.stdout) == (
        0,
        f"An imgvault store already exists in {initialised}; its key opens it.\n",
    )
    assert (initialised / "keyset.json").read_bytes() == key_before
    (initialised / "keyset.json").unlink()
    result = runner.invoke(cli, ["init", "--exist-ok"])
    assert result.exit_code == 1
    assert "keyset.json does not exist" in result.stderr


def test_put_then_get_returns_the_exact_bytes(initialised, runner, image_dir):
    source = image_dir / "china.jpg"
    put = runner.invoke(cli, ["put", str(source), "-c", "photos", "--json"])
    assert put.exit_code == 0, put.output
    [image] = json.loads(put.stdout)
    assert set(image) >= IMAGE_FIELDS
    assert (image["name"], image["collection"], image["format"]) == ("china.jpg", "photos", "JPEG")
    assert (image["width"], image["height"], image["bytes"]) == (192, 128, source.stat().st_size)
    got = runner.invoke(cli, ["get", image["id"], "-o", "-"])
    assert got.exit_code == 0, got.output
    assert hashlib.sha256(got.stdout_bytes).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()


def test_put_a_directory_stores_the_good_files_and_reports_each_bad_one(initialised, runner, image_dir, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    (folder / "good.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    (folder / "nested" / "good.webp").write_bytes((image_dir / "flower-lossless.webp").read_bytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / "nested" / "empty.jpg").write_bytes(b"")
    (folder / ".hidden.png").write_bytes(b"skipped: hidden files are not put")
    result = runner.invoke(cli, ["put", str(folder), "-c", "mixed"])
    assert result.exit_code == 1
    # Files of a folder come before its subfolders', each level sorted by name, as `find` lists them.
    assert result.stderr.splitlines() == [
        f"Error: {folder / 'notes.txt'}: not an image file (Pillow cannot identify it)",
        f"Error: {folder / 'nested' / 'empty.jpg'}: empty file (0 bytes)",
        'Stored 2 images in collection "mixed"; 2 failed.',
    ]
    with Store.open(initialised) as store:
        assert sorted(image.name for image in store.images("mixed")) == ["good.png", "good.webp"]


def _truncated_png(image_dir) -> bytes:
    data = (image_dir / "astronaut-rgb.png").read_bytes()
    return data[: len(data) // 2]


def _bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (9500, 9500)).save(buffer, "PNG")  # 90 megapixels, a few kilobytes
    return buffer.getvalue()


def _ppm(image_dir) -> bytes:
    buffer = io.BytesIO()
    Image.open(image_dir / "flower.bmp").save(buffer, "PPM")
    return buffer.getvalue()


BAD_INPUTS = {
    "not-an-image.png": (
        lambda d: b"<html>a web page saved as .png</html>",
        "not an image file (Pillow cannot identify it)",
    ),
    "truncated.png": (_truncated_png, "truncated or corrupt image"),
    "zero.jpg": (lambda d: b"", "empty file (0 bytes)"),
    "bomb.png": (lambda d: _bomb_png(), "image is 9500x9500 = 90,250,000 pixels, more than the limit of 89,478,485"),
    "flower.ppm": (_ppm, "unsupported image format PPM (supported: BMP, GIF, JPEG, PNG, TIFF, WEBP)"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_error_line_exit_1_and_nothing_stored(initialised, runner, image_dir, tmp_path, name):
    make, message = BAD_INPUTS[name]
    path = tmp_path / name
    path.write_bytes(make(image_dir))
    result = runner.invoke(cli, ["put", str(path)])
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"Error: {path}: {message}")
    assert "Traceback" not in result.output
    assert stored_ids(initialised) == []


def test_a_missing_file_is_reported_by_name(initialised, runner, tmp_path):
    result = runner.invoke(cli, ["put", str(tmp_path / "nope.png")])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"Error: {tmp_path / 'nope.png'}: no such file"


def test_ls_json_lists_the_same_objects_as_put_json(initialised, runner, image_dir):
    put = json.loads(runner.invoke(cli, ["put", str(image_dir), "-c", "all", "--json"]).stdout)
    listed = json.loads(runner.invoke(cli, ["ls", "--json"]).stdout)
    assert listed == put
    assert len(listed) == len(list(image_dir.iterdir()))


def test_ls_of_an_unknown_collection_is_an_error(initialised, runner):
    result = runner.invoke(cli, ["ls", "-c", "nope"])
    assert (result.exit_code, result.stderr) == (1, 'Error: collection "nope" not found\n')


def test_ls_prints_a_table_with_the_names(initialised, runner, image_dir):
    runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "-c", "photos"])
    lines = runner.invoke(cli, ["ls"]).stdout.splitlines()
    assert lines[0].split() == ["ID", "FORMAT", "SIZE", "MODE", "BYTES", "CREATED", "COLLECTION", "NAME"]
    assert lines[1].split()[1:5] == ["JPEG", "192x128", "RGB", f"{(image_dir / 'china.jpg').stat().st_size:,}"]
    assert lines[1].split()[-2:] == ["photos", "china.jpg"]


def test_get_writes_the_original_name_and_never_overwrites_it(initialised, runner, image_dir, tmp_path, monkeypatch):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "flower.bmp"), "--json"]).stdout)
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(cli, ["get", image["id"]])
    assert first.exit_code == 0
    assert (tmp_path / "flower.bmp").read_bytes() == (image_dir / "flower.bmp").read_bytes()
    second = runner.invoke(cli, ["get", image["id"]])
    assert (second.exit_code, second.stderr) == (
        1,
        "Error: flower.bmp already exists (use --force to replace it, or -o to write elsewhere)\n",
    )


def test_get_of_an_unknown_id_is_an_error(initialised, runner, tmp_path):
    result = runner.invoke(cli, ["get", "01JD3Z8R8C6WQ3M1V0B5E3N9XK", "-o", str(tmp_path / "out.png")])
    assert (result.exit_code, result.stderr) == (1, "Error: image 01JD3Z8R8C6WQ3M1V0B5E3N9XK not found\n")
    assert not (tmp_path / "out.png").exists()


def test_get_of_a_tampered_image_fails_and_writes_nothing(initialised, runner, image_dir, tmp_path):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    tamper(initialised, schema.images, image["id"], "data", lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]))
    result = runner.invoke(cli, ["get", image["id"], "-o", str(tmp_path / "out.jpg")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: image.data {image['id']} failed its integrity check: "
        "the key is wrong, or the stored data was altered or moved\n"
    )
    assert not (tmp_path / "out.jpg").exists()


def test_rm_removes_and_collections_counts(initialised, runner, image_dir):
    ids = [
        json.loads(runner.invoke(cli, ["put", str(image_dir / n), "-c", "c", "--json"]).stdout)[0]["id"]
        for n in ("china.jpg", "flower.bmp")
    ]
    result = runner.invoke(cli, ["rm", ids[0]])
    assert (result.exit_code, result.stderr) == (0, "Removed 1 image, 0 encoded images and 0 codec models.\n")
    [collection] = json.loads(runner.invoke(cli, ["collections", "--json"]).stdout)
    assert (collection["name"], collection["images"]) == ("c", 1)
    assert collection["bytes"] == (image_dir / "flower.bmp").stat().st_size
    table = runner.invoke(cli, ["collections"]).stdout.splitlines()
    assert table[1].split()[:2] == ["c", "1"]


def test_key_rotate_keeps_every_image_readable(initialised, runner, image_dir):
    runner.invoke(cli, ["put", str(image_dir)])
    result = runner.invoke(cli, ["key", "rotate"])
    assert result.exit_code == 0
    assert f"re-sealed {len(list(image_dir.iterdir()))} images" in result.stdout
    with Store.open(initialised) as store:
        for image in store.images():
            assert store.get(image.id) == (image_dir / image.name).read_bytes()


def test_commands_before_init_say_to_run_init(home, backend, runner):
    commands = (["ls"], ["collections"], ["get", "01JD3Z8R8C6WQ3M1V0B5E3N9XK"], ["key", "rotate"], ["db", "upgrade"],
                ["ui"], ["run", "-c", "photos"], ["rm", "01JD3Z8R8C6WQ3M1V0B5E3N9XK"])  # fmt: skip
    for args in commands:
        result = runner.invoke(cli, args)
        assert (result.exit_code, result.stdout) == (1, ""), args
        where = home if backend == "sqlite" else Settings.resolve(home).describe_db()
        assert result.stderr == f'Error: no imgvault store in {where} (run "imgvault init" first)\n', args


def test_debug_shows_the_traceback(home, runner):
    result = runner.invoke(cli, ["--debug", "ls"])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ConfigError"


def test_a_bad_collection_name_is_a_usage_error(initialised, runner, image_dir):
    result = runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "-c", "  "])
    assert result.exit_code == 2
    assert "a collection name cannot be empty" in result.stderr


def test_db_upgrade_on_a_current_store_changes_nothing(initialised, runner):
    result = runner.invoke(cli, ["db", "upgrade"])
    assert (result.exit_code, result.stdout.splitlines()) == (0, [
        f"The schema is already at revision {SCHEMA_REVISION}.",
        f"MLflow artifacts under {initialised / 'mlartifacts'}: all sealed already.",
    ])  # fmt: skip


def test_db_upgrade_brings_an_older_store_up_to_date_keeping_its_images(initialised, runner, image_dir):
    from alembic import command

    from imgvault.store.engine import migration_config, write_transaction

    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    with Store.open(initialised) as store, write_transaction(store.engine) as connection:
        command.downgrade(migration_config(connection, store.sealer), "0001")
    refused = runner.invoke(cli, ["ls"])
    assert refused.exit_code == 1
    assert f"has schema revision 0001 and this imgvault needs {SCHEMA_REVISION}" in refused.stderr
    assert 'run "imgvault db upgrade"' in refused.stderr
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Upgraded the schema from revision 0001 to {SCHEMA_REVISION}.\n")
    assert runner.invoke(cli, ["get", image["id"], "-o", "-"]).stdout_bytes == (image_dir / "china.jpg").read_bytes()


def _all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *(p for p, _ in _all_commands(cli))], ids=lambda p: " ".join(p) or "imgvault")
def test_every_command_has_help_with_an_example(runner, path):
    result = runner.invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert f"imgvault {' '.join(path)}" in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense://x", "Error: IMGVAULT_DB_URL names an unknown kind of database: nonsense\n"),
        (
            "mysql://u:pw@127.0.0.1:1/x",
            "Error: the database driver for mysql is not installed: No module named 'MySQLdb'\n",
        ),
    ],
)
def test_a_bad_database_url_is_one_clear_line(home, runner, monkeypatch, url, message):
    monkeypatch.setenv("IMGVAULT_DB_URL", url)
    result = runner.invoke(cli, ["ls"])
    assert (result.exit_code, result.stderr) == (1, message)


def test_an_unreachable_database_server_is_one_line_without_the_password(home, runner, monkeypatch):
    pytest.importorskip("psycopg")
    monkeypatch.setenv("IMGVAULT_DB_URL", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x")
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot open the store database postgresql+psycopg://u:***@127.0.0.1:1/x: ")
    assert result.stderr.count("\n") == 1
    assert "hunter2" not in result.output


@pytest.mark.sqlite_only  # sets its own SQLite URL
def test_the_store_database_can_live_anywhere_sqlalchemy_reaches(home, runner, monkeypatch, tmp_path, image_dir):
    monkeypatch.setenv("IMGVAULT_DB_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert runner.invoke(cli, ["put", str(image_dir / "china.jpg")]).exit_code == 0
    assert (tmp_path / "elsewhere.db").exists()
    assert not (home / "store.db").exists()
    assert len(json.loads(runner.invoke(cli, ["ls", "--json"]).stdout)) == 1


def test_get_into_a_missing_folder_names_the_target(initialised, runner, image_dir, tmp_path):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    result = runner.invoke(cli, ["get", image["id"], "-o", str(tmp_path / "no" / "x.jpg")])
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: cannot write {tmp_path / 'no' / 'x.jpg'}: No such file or directory\n",
    )


def test_an_altered_settings_row_or_parameters_give_a_specific_error_line(initialised, runner, image_dir):
    from imgvault.methods import encode_image

    with Store.open(initialised) as store:
        image = store.put(image_dir / "china.jpg")
        encoded = encode_image(store, image.id, method="kmeans", k=4, size=32).info
    engine = raw_engine(initialised)
    with engine.begin() as connection:
        connection.execute(schema.encoded_images.update().values(params="{not json"))
    result = runner.invoke(cli, ["ls", "--encoded"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: encoded.metrics {encoded.id} failed its integrity check: the key is wrong, or the stored data was"
        " altered or moved\n"
    )
    with engine.begin() as connection:
        table = schema.settings
        connection.execute(table.update().where(table.c.name == "primary_key_id").values(value="x"))
    engine.dispose()
    result = runner.invoke(cli, ["ls"])
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: the store's settings were altered: primary_key_id is missing or not a key id\n",
    )


def test_a_token_is_printed_once_as_the_last_line_and_only_its_hash_is_stored(initialised, runner):
    from imgvault.store.tokens import check_token

    result = runner.invoke(cli, ["token", "create", "alice", "--read-only"])
    assert result.exit_code == 0, result.output
    token = result.stdout.splitlines()[-1]
    assert result.stdout.startswith('Created token "alice" (read-only).') and token.startswith("ivt_")
    with Store.open(initialised) as store:
        assert check_token(store, token).read_only
        assert check_token(store, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        with store.engine.connect() as connection:
            [row] = connection.execute(schema.api_tokens.select()).all()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest() and token not in str(tuple(row))
    listed = runner.invoke(cli, ["token", "ls", "--json"])
    assert [(t["name"], t["read_only"], t["revoked"]) for t in json.loads(listed.stdout)] == [("alice", True, None)]


def test_a_revoked_token_no_longer_opens_and_its_name_can_be_given_again(initialised, runner):
    from imgvault.store.tokens import check_token

    first = runner.invoke(cli, ["token", "create", "ci"]).stdout.splitlines()[-1]
    refused = runner.invoke(cli, ["token", "create", "ci"])
    assert (refused.exit_code, refused.output) == (1, 'Error: a token named "ci" exists already (revoke it first)\n')
    assert runner.invoke(cli, ["token", "revoke", "ci"]).stdout == 'Revoked token "ci".\n'
    again = runner.invoke(cli, ["token", "revoke", "ci"])
    assert (again.exit_code, again.output) == (1, 'Error: token "ci" is revoked already\n')
    assert runner.invoke(cli, ["token", "revoke", "nobody"]).output == 'Error: no token named "nobody"\n'
    assert "revoked" in runner.invoke(cli, ["token", "ls"]).stdout
    second = runner.invoke(cli, ["token", "create", "ci"]).stdout.splitlines()[-1]
    with Store.open(initialised) as store:
        assert check_token(store, first) is None
        assert check_token(store, second).name == "ci"
    bad = runner.invoke(cli, ["token", "create", "../x"])
    assert bad.exit_code == 1 and bad.output.startswith("Error: '../x' cannot name a token")


def test_serve_refuses_a_public_address_without_tls(initialised, runner):
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "0.0.0.0 is not a loopback address: serve it with TLS" in result.output


def encode_twice(runner, image_id: str) -> list[dict]:
    out = []
    for k in ("2", "4"):
        result = runner.invoke(cli, ["encode", image_id, "-m", "kmeans", "-k", k, "--size", "16", "--json"])
        assert result.exit_code == 0, result.output
        out.append(json.loads(result.stdout))
    return out


def test_rm_says_what_it_removed_with_the_image(initialised, runner, image_dir):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    encode_twice(runner, image["id"])
    result = runner.invoke(cli, ["rm", image["id"]])
    assert (result.exit_code, result.stderr) == (0, "Removed 1 image, 2 encoded images and 2 codec models.\n")
    with Store.open(initialised) as store:
        assert list(store.encoded_images()) == []


def test_rm_json_lists_the_ids_it_removed(initialised, runner, image_dir):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    encoded = encode_twice(runner, image["id"])
    result = runner.invoke(cli, ["rm", image["id"], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "images": [image["id"]],
        "encoded_images": sorted(e["encoded_id"] for e in encoded),
        "codec_models": sorted(e["model_id"] for e in encoded),
        # No run showed it (tests/test_erasure.py has runs that did).
        "mlflow": {"runs": 0, "figures": 0, "table_rows": 0, "metric_points": 0, "unreachable": [], "kept": False},
    }


def test_rm_with_one_unknown_id_removes_nothing_and_says_so_only(initialised, runner, image_dir):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    encode_twice(runner, image["id"])
    result = runner.invoke(cli, ["rm", image["id"], "01JD3Z8R8C6WQ3M1V0B5E3N9XK", "--json"])
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: image 01JD3Z8R8C6WQ3M1V0B5E3N9XK not found\n",
    )
    with Store.open(initialised) as store:
        assert [i.id for i in store.images()] == [image["id"]]
        assert len(list(store.encoded_images())) == 2


@pytest.mark.parametrize("args", [["ls", "-c", "nosuch"], ["ls", "--encoded", "-c", "nosuch"],
                                  ["ls", "-c", "nosuch", "--json"], ["run", "-c", "nosuch"],
                                  ["compare", "-c", "nosuch"], ["report", "-c", "nosuch", "-o", "-"]])  # fmt: skip
def test_an_unknown_collection_is_only_the_error_line(initialised, runner, args):
    result = runner.invoke(cli, args)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", 'Error: collection "nosuch" not found\n')


def test_decode_of_an_image_id_says_it_is_an_image_and_where_its_encodings_are(initialised, runner, image_dir):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "-c", "trip", "--json"]).stdout)
    result = runner.invoke(cli, ["decode", image["id"]])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: {image['id']} is an image id, not an encoded image's; its encoded images are listed by"
        " `imgvault ls --encoded -c trip` (column IMAGE)\n"
    )
    unknown = runner.invoke(cli, ["decode", "01JD3Z8R8C6WQ3M1V0B5E3N9XK"])
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: encoded image 01JD3Z8R8C6WQ3M1V0B5E3N9XK not found\n")


@pytest.mark.parametrize("option", ["-m", "--methods"])
def test_run_and_encode_take_methods_as_m_or_methods_in_the_same_format(initialised, runner, image_dir, option):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    for command in (["run", "-c", "default"], ["encode", image["id"]]):
        result = runner.invoke(cli, [*command, option, "rot13"])
        assert result.exit_code == 2
        error = result.stderr.splitlines()[-1]
        assert error.startswith("Error: Invalid value for '-m' / '--methods'"), error
        assert error.endswith(
            "': unknown method 'rot13'; the methods are: pca, kmeans, gmm, aes, le, etc, pe, logistic, arnold"
        ), error
    encoded = runner.invoke(cli, ["encode", image["id"], option, "kmeans", "-k", "2", "--size", "16", "--json"])
    assert encoded.exit_code == 0, encoded.output
    assert json.loads(encoded.stdout)["method"] == "kmeans"
    several = runner.invoke(cli, ["encode", image["id"], option, "kmeans,pca"])
    assert several.exit_code == 2
    assert several.stderr.splitlines()[-1].endswith("': encode takes one method; imgvault run takes several")


def test_key_rotate_says_how_many_records_of_each_kind_it_resealed(initialised, runner, image_dir):
    [image] = json.loads(runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--json"]).stdout)
    encode_twice(runner, image["id"])
    result = runner.invoke(cli, ["key", "rotate"])
    assert result.exit_code == 0, result.output
    sentence = re.sub(r"\d{5,}", "KEY", result.stdout)
    assert sentence == (
        "New primary key KEY; re-sealed 1 image, 2 encoded images, 2 codec models, 0 API tokens and 0 MLflow artifacts;"
        " retired keys: KEY.\n"
    )


def _pets(image_dir, tmp_path):
    """A real folder tree: pets/cats (two images, one in a subfolder of its own) and pets/dogs (one)."""
    root = tmp_path / "pets"
    for relative, source in [("cats/tom.png", "camera-gray.png"), ("cats/kittens/felix.jpg", "china.jpg"),
                             ("dogs/rex.webp", "flower-lossless.webp")]:  # fmt: skip
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes((image_dir / source).read_bytes())
    return root


def _labels_by_name(home, collection: str) -> dict[str, str | None]:
    with Store.open(home) as store:
        return {image.name: image.label for image in store.images(collection)}


def test_put_label_gives_every_file_that_label_sealed_with_the_other_metadata(initialised, runner, image_dir,
                                                                             tmp_path):  # fmt: skip
    pets = _pets(image_dir, tmp_path)
    result = runner.invoke(cli, ["put", str(pets), "-c", "pets", "--label", "pet", "--meta", "source=camera", "--json"])
    assert result.exit_code == 0, result.output
    assert [image["metadata"] for image in json.loads(result.stdout)] == [{"source": "camera", "label": "pet"}] * 3
    assert _labels_by_name(initialised, "pets") == {"felix.jpg": "pet", "tom.png": "pet", "rex.webp": "pet"}
    listed = runner.invoke(cli, ["labels", "-c", "pets"])
    assert (listed.exit_code, listed.stdout) == (0, "LABEL       IMAGES\npet         3\n")


def test_put_label_from_folder_labels_each_file_with_its_own_folder(initialised, runner, image_dir, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    pets = _pets(image_dir, tmp_path)
    result = runner.invoke(cli, ["put", str(pets), "-c", "pets", "--label-from-folder"])
    assert result.exit_code == 0, result.output
    # The immediate parent folder: felix.jpg is in cats/kittens
    assert _labels_by_name(initialised, "pets") == {"felix.jpg": "kittens", "tom.png": "cats", "rex.webp": "dogs"}
    # A relative path, as typed in the folder of the file: the folder's name still
    monkeypatch.chdir(pets / "dogs")
    result = runner.invoke(cli, ["put", "rex.webp", "-c", "here", "--label-from-folder"])
    assert result.exit_code == 0, result.output
    assert _labels_by_name(initialised, "here") == {"rex.webp": "dogs"}
    listed = runner.invoke(cli, ["labels", "-c", "pets", "--json"])
    assert json.loads(listed.stdout) == {"cats": 1, "dogs": 1, "kittens": 1}


def test_a_folder_name_that_is_no_label_is_an_error_for_its_files_only(initialised, runner, image_dir, tmp_path):
    pets = _pets(image_dir, tmp_path)
    bad = pets / ("x" * 201)
    bad.mkdir()
    (bad / "long.png").write_bytes((image_dir / "camera-gray.png").read_bytes())
    result = runner.invoke(cli, ["put", str(pets), "-c", "pets", "--label-from-folder"])
    assert result.exit_code == 1
    assert f"Error: {bad / 'long.png'}: a label has at most 200 characters, not 201\n" in result.stderr
    assert 'Stored 3 images in collection "pets"; 1 failed.' in result.stderr
    assert sorted(_labels_by_name(initialised, "pets").values()) == ["cats", "dogs", "kittens"]


@pytest.mark.parametrize(
    "options",
    [
        ["--label", "cat", "--label-from-folder"],
        ["--label", "cat", "--meta", "label=dog"],
        ["--label-from-folder", "--meta", "label=dog"],
        ["--label", "cat", "--label-from-folder", "--meta", "label=dog"],
    ],
)
def test_label_options_are_exclusive_one_error_line_and_nothing_stored(initialised, runner, image_dir, options):
    result = runner.invoke(cli, ["put", str(image_dir / "china.jpg"), *options])
    assert result.exit_code == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert error.startswith("Error: give a label one way only: ")
    assert stored_ids(initialised) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--label", ""], "Error: Invalid value for '--label': a label cannot be empty"),
        (["--label", "   "], "Error: Invalid value for '--label': a label cannot be empty"),
        (["--label", "a" * 201], "Error: Invalid value for '--label': a label has at most 200 characters, not 201"),
        (["--label", "cat\x1b[2J"], "Error: Invalid value for '--label': a label cannot contain control characters"),
        (["--meta", "label=a\nb"], "Error: Invalid value for '--meta': a label cannot contain control characters"),
    ],
)
def test_a_bad_label_is_a_usage_error_and_nothing_is_stored(initialised, runner, image_dir, options, message):
    result = runner.invoke(cli, ["put", str(image_dir / "china.jpg"), *options])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == message
    assert stored_ids(initialised) == []


def test_a_label_of_200_characters_any_script_is_kept_exactly(initialised, runner, image_dir):
    label = "é猫 " * 66 + "ok"
    assert len(label) == 200
    result = runner.invoke(cli, ["put", str(image_dir / "china.jpg"), "--label", label])
    assert result.exit_code == 0, result.output
    assert list(_labels_by_name(initialised, "default").values()) == [label]


def test_labels_of_an_unknown_collection_or_without_one_are_errors(initialised, runner):
    assert runner.invoke(cli, ["labels", "-c", "nope"]).stderr == 'Error: collection "nope" not found\n'
    result = runner.invoke(cli, ["labels"])
    assert result.exit_code == 2 and "Error: Missing option '-c' / '--collection'." in result.stderr
