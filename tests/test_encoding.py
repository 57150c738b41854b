"""Encoding stored images: records sealed in the store, decoded identically later, tampering detected."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from rawdb import raw_engine, stored_bytes, tamper
from sqlalchemy import select

from imgvault.cli import cli
from imgvault.methods import decode_image, encode_image
from imgvault.store import EncodedNotFound, IntegrityError, Store, schema


@pytest.fixture
def astronaut(store, image_dir):
    return store.put(image_dir / "astronaut-rgb.png", collection="faces")


@pytest.mark.parametrize("method", ["pca", "kmeans", "gmm", "aes", "le", "etc", "pe", "logistic", "arnold"])
def test_a_stored_encoding_decodes_to_the_pixels_it_was_measured_on(store, astronaut, method):
    k = 6 if method in ("pca", "kmeans", "gmm") else None
    encoding = encode_image(store, astronaut.id, method=method, k=k, size=48)
    assert np.array_equal(decode_image(store, encoding.info.id), encoding.reconstruction)
    if method not in ("pca", "kmeans", "gmm"):  # lossless
        assert np.array_equal(encoding.reconstruction, encoding.original)
        assert encoding.info.metrics["psnr"] is None  # infinite: identical
    info, payload = store.get_encoded_image(encoding.info.id)
    assert info == encoding.info
    assert info.metrics["encoded_bytes"] == len(payload)


def test_the_bits_per_pixel_follow_k(store, astronaut):
    bpp = {k: encode_image(store, astronaut.id, method="kmeans", k=k, size=32).info.metrics["bpp"] for k in (2, 4, 16)}
    assert bpp == {2: 1.0, 4: 2.0, 16: 4.0}


def test_a_stored_encoding_decodes_identically_after_the_process_restarts(store, home, astronaut, tmp_path):
    encoding = encode_image(store, astronaut.id, method="gmm", k=5, size=40, color="rgb")
    store.close()
    env = {k: v for k, v in os.environ.items() if k != "IMGVAULT_PASSPHRASE"} | {"IMGVAULT_HOME": str(home)}
    out = tmp_path / "restarted.png"
    subprocess.run([sys.executable, "-m", "imgvault.cli", "decode", encoding.info.id, "-o", str(out)], env=env,
                   check=True, capture_output=True)  # fmt: skip
    assert np.array_equal(np.asarray(Image.open(out)), encoding.reconstruction)


def test_a_tampered_model_is_detected(store, home, astronaut, runner):
    encoding = encode_image(store, astronaut.id, method="kmeans", k=4, size=32)
    flipped = lambda blob: blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:]  # noqa: E731
    tamper(home, schema.codec_models, encoding.info.model_id, "data", flipped)
    with pytest.raises(IntegrityError, match=f"model.data {encoding.info.model_id} failed its integrity check"):
        decode_image(store, encoding.info.id)
    result = runner.invoke(cli, ["decode", encoding.info.id, "-o", "-"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: model.data {encoding.info.model_id} failed its integrity check")
    assert result.stdout_bytes == b""


def test_a_model_swapped_onto_another_encoding_is_detected(store, home, astronaut):
    first = encode_image(store, astronaut.id, method="kmeans", k=4, size=32)
    second = encode_image(store, astronaut.id, method="kmeans", k=4, size=32)
    engine = raw_engine(home)
    with engine.begin() as connection:
        models = schema.codec_models
        blob = connection.execute(select(models.c.data).where(models.c.id == first.info.model_id)).scalar_one()
        connection.execute(models.update().where(models.c.id == second.info.model_id).values(data=blob))
    engine.dispose()
    with pytest.raises(IntegrityError):
        decode_image(store, second.info.id)


def test_rotation_reseals_encodings_and_models(store, home, astronaut):
    encoding = encode_image(store, astronaut.id, method="pca", k=8, size=32)
    report = store.rotate_key()
    assert report.resealed == {"image": 1, "model": 1, "encoded": 1, "token": 0}
    store.close()
    with Store.open(home) as reopened:
        assert np.array_equal(decode_image(reopened, encoding.info.id), encoding.reconstruction)


def test_removing_an_image_removes_its_encodings_and_models(store, astronaut):
    encoding = encode_image(store, astronaut.id, method="kmeans", k=4, size=32)
    store.remove([astronaut.id])
    with pytest.raises(EncodedNotFound):
        store.get_encoded_image(encoding.info.id)
    assert list(store.encoded_images()) == []


def test_encoded_payloads_and_models_are_sealed_at_rest(store, home, astronaut):
    encoding = encode_image(store, astronaut.id, method="aes", size=32)
    _, payload = store.get_encoded_image(encoding.info.id)
    store.close()
    raw = stored_bytes(home)
    assert encoding.info.id.encode() in raw  # what is not sealed is there to see: the search looks at the data
    assert payload[12:60] not in raw


# -- command line --------------------------------------------------------------------------------------


@pytest.fixture
def put_id(store, image_dir):
    image = store.put(image_dir / "china.jpg", collection="photos")
    store.close()
    return image.id


def test_encode_json_has_ids_method_params_and_metrics(put_id, runner):
    result = runner.invoke(cli, ["encode", put_id, "--method", "kmeans", "-k", "4", "--size", "32", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"encoded_id", "model_id", "method", "params", "metrics"}
    assert out["method"] == "kmeans" and out["params"]["codec"]["k"] == 4
    assert out["params"]["size"] == 32 and out["params"]["color"] == "gray" and out["params"]["fit"] == "image"
    assert {"mse", "psnr", "ssim", "bpp", "encoded_bytes", "model_bytes", "compression_ratio"} <= set(out["metrics"])
    assert {"encode_seconds", "decode_seconds"} <= set(out["metrics"])
    listed = json.loads(runner.invoke(cli, ["ls", "--encoded", "--json"]).stdout)
    assert [e["id"] for e in listed] == [out["encoded_id"]]
    assert listed[0]["metrics"] == out["metrics"]


def test_encode_prints_a_table_and_ls_encoded_lists_it(put_id, runner):
    result = runner.invoke(cli, ["encode", put_id, "-m", "pca", "-k", "4", "--size", "32"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("encoded image ")
    assert lines[2].split() == ["method", "pca,", "k=4,", "32x32", "gray"]
    table = runner.invoke(cli, ["ls", "--encoded"]).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "IMAGE", "METHOD", "K"]
    assert table[1].split()[1:4] == [put_id, "pca", "4"]


def test_decode_writes_a_png_of_the_exact_pixels_for_aes(put_id, runner, tmp_path, monkeypatch):
    encoded_id = json.loads(runner.invoke(cli, ["encode", put_id, "-m", "aes", "--size", "32", "--json"]).stdout)[
        "encoded_id"
    ]
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(cli, ["decode", encoded_id]).exit_code == 0
    from imgvault.methods import load_pixels, to_uint8

    with Store.open() as store:
        expected = to_uint8(load_pixels(store.get(put_id), size=32))
    decoded = Image.open(tmp_path / f"{encoded_id}.png")
    assert decoded.format == "PNG" and np.array_equal(np.asarray(decoded), expected)
    again = runner.invoke(cli, ["decode", encoded_id])
    assert (again.exit_code, again.stderr) == (
        1,
        f"Error: {encoded_id}.png already exists (use --force to replace it, or -o to write elsewhere)\n",
    )
    stdout = runner.invoke(cli, ["decode", encoded_id, "-o", "-"]).stdout_bytes
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stdout))), expected)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "pca", "-k", "101"], "Error: k=101 is too large: PCA on the rows of 1 image(s) of 100x100 has 100"
                                     " dimensions, so k can be at most 100\n"),
        (["-m", "kmeans", "-k", "0"], "Error: k must be a whole number of at least 1, not 0\n"),
        (["-m", "aes", "-k", "4"], "Error: aes takes no k: it encrypts every pixel, losslessly\n"),
        (["-m", "pca", "--size", "3"], "Error: size must be a whole number from 11 to 4096, not 3\n"),
    ],
)  # fmt: skip
def test_bad_encode_parameters_are_one_line_and_store_nothing(put_id, runner, args, message):
    # An unknown method is a usage error, as for run (tests/test_cli.py).
    result = runner.invoke(cli, ["encode", put_id, *args])
    assert (result.exit_code, result.stderr) == (1, message)
    assert json.loads(runner.invoke(cli, ["ls", "--encoded", "--json"]).stdout) == []


def test_unknown_ids_are_clear_errors(put_id, runner):
    missing = "01JD3Z8R8C6WQ3M1V0B5E3N9XK"
    result = runner.invoke(cli, ["encode", missing, "-m", "pca"])
    assert (result.exit_code, result.stderr) == (1, f"Error: image {missing} not found\n")
    result = runner.invoke(cli, ["decode", missing])
    assert (result.exit_code, result.stderr) == (1, f"Error: encoded image {missing} not found\n")
