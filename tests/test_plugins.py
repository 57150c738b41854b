"""Users' own methods: a real plugin distribution found through its entry points and run through the CLI."""

import importlib
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from imgvault.cli import cli
from imgvault.methods import load_pixels, make_codec
from imgvault.methods.encoding import measure
from imgvault.methods.plugins import load_plugin
from imgvault.methods.registry import available_methods, check_method, method_class
from imgvault.store import InvalidParameter, PluginError

DIST = Path(__file__).parent / "plugin_dist"


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """tests/plugin_dist installed as pip would: its package importable and a dist-info with its entry points."""
    site = tmp_path / "site"
    shutil.copytree(DIST / "imgvault_xor_plugin", site / "imgvault_xor_plugin")
    project = tomllib.loads((DIST / "pyproject.toml").read_text())["project"]
    info = site / "imgvault_xor_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    points = project["entry-points"]
    (info / "entry_points.txt").write_text(
        "".join(f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
                for group, entries in points.items())
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    load_plugin.cache_clear()
    yield "imgvault_xor_plugin"
    load_plugin.cache_clear()
    for name in [m for m in sys.modules if m.startswith("imgvault_xor_plugin")]:
        monkeypatch.delitem(sys.modules, name)


def image(color="gray"):
    return load_pixels((Path(skimage.data.__file__).parent / "astronaut.png").read_bytes(), size=32, color=color)


def test_an_installed_plugin_is_listed_and_made_like_a_built_in(plugin):
    assert "xor" in available_methods() and available_methods()[:4] == ("pca", "kmeans", "gmm", "aes")
    codec = make_codec("xor").fit(image()[None])
    assert type(codec).__name__ == "XorCodec"
    assert np.array_equal(codec.decode(codec.encode(image()[None])), image()[None])


def test_a_module_class_reference_works_without_an_entry_point(plugin):
    assert check_method("imgvault_xor_plugin:XorCodec") == "imgvault_xor_plugin:XorCodec"
    assert method_class("imgvault_xor_plugin:XorCodec") is method_class("xor")


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("imgvault_xor_plugin:NotACodec",
         'method plugin "imgvault_xor_plugin:NotACodec" is not an ImageCodec subclass '
         "(imgvault.methods.base.ImageCodec) but the class NotACodec"),
        ("imgvault_xor_plugin:Nothing",
         'method plugin "imgvault_xor_plugin:Nothing" does not load: AttributeError: '),
        ("no_such_package:Codec",
         "method plugin \"no_such_package:Codec\" does not load: ModuleNotFoundError: No module named "
         "'no_such_package'"),
        ("broken",
         'method plugin "broken" (imgvault_xor_plugin.missing:Codec, from imgvault-xor-plugin) does not load: '
         "ModuleNotFoundError: No module named 'imgvault_xor_plugin.missing'"),
    ],
)  # fmt: skip
def test_a_plugin_that_does_not_load_or_is_not_a_method_is_named_with_what_is_wrong(plugin, method, message):
    with pytest.raises(PluginError) as caught:
        check_method(method)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("imgvault_xor_plugin:Lossy", "decode is not exact, though it declares lossless = True"),
        ("imgvault_xor_plugin:Doubling", "encode gave 2 entries for 1 image"),
        ("imgvault_xor_plugin:Cropping", "decode gave shape (32, 31) for images of shape (32, 32)"),
    ],
)
def test_a_plugin_that_breaks_the_contract_on_an_image_is_stopped_before_anything_is_stored(plugin, method, message):
    codec = make_codec(method).fit(image()[None])
    with pytest.raises(PluginError, match=f'method "{method}" .*breaks the method contract: {re.escape(message)}'):
        measure(codec, image(), method=method)


def test_an_unknown_method_lists_the_installed_plugins_too(plugin):
    with pytest.raises(InvalidParameter, match=r"the methods are: pca, .*, arnold, broken, xor$"):
        check_method("dct")


def test_a_reference_longer_than_the_store_records_is_refused(plugin):
    with pytest.raises(InvalidParameter, match="the store records at most 32"):
        check_method("imgvault_xor_plugin.deeply.nested:SomeCodecClass")


# -- through the command line ------------------------------------------------------------------------------

PHOTOS = ("astronaut.png", "camera.png", "coffee.png")


@pytest.fixture
def photos(plugin, store, home, migrated_tracking_db, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    folder = Path(skimage.data.__file__).parent
    images = [store.put(folder / name, collection="photos") for name in PHOTOS]
    store.close()
    return images


@pytest.mark.slow
def test_a_plugin_runs_compares_and_decodes_through_the_cli(photos, runner, tmp_path):
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "xor,aes", "--size", "32", "-j", "1",
                                 "--figures", "1", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    runs = {run["method"]: run for run in json.loads(result.stdout)["runs"]}
    assert runs["xor"]["metrics"]["exact_fraction"] == 1.0
    rows = {row["method"]: row for row in json.loads(runner.invoke(cli, ["compare", "--json"]).stdout)}
    assert rows["xor"]["key_sensitivity"] == pytest.approx(255 / 256, abs=0.02)  # one key bit: a new pad
    assert rows["xor"]["npcr"] < 1  # one changed pixel changes one encrypted pixel: no diffusion
    assert rows["xor"]["key_space_bits"] == 256
    listed = json.loads(runner.invoke(cli, ["ls", "--encoded", "--json"]).stdout)
    encoded = next(e for e in listed if e["method"] == "xor" and e["image_id"] == photos[0].id)
    out = tmp_path / "decoded.png"
    result = runner.invoke(cli, ["decode", encoded["id"], "-o", str(out)])
    assert result.exit_code == 0, result.output
    astronaut = (Path(skimage.data.__file__).parent / "astronaut.png").read_bytes()
    expected = np.rint(load_pixels(astronaut, size=32) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(Image.open(out)), expected)


@pytest.mark.slow
def test_a_plugin_that_breaks_the_contract_is_one_error_line_and_stores_nothing(photos, runner, store):
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "imgvault_xor_plugin:Lossy", "--size", "32",
                                 "-j", "1", "--figures", "0"])  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        'Error: method "imgvault_xor_plugin:Lossy" (imgvault_xor_plugin:Lossy) breaks the method contract: '
        "decode is not exact, though it declares lossless = True"
    )
    assert "Traceback" not in result.output
    assert list(store.encoded_images("photos")) == []


def test_a_plugin_that_is_not_a_method_is_refused_before_any_work(plugin, runner):
    result = runner.invoke(cli, ["run", "-c", "photos", "--methods", "pca,imgvault_xor_plugin:NotACodec"])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith('Error: method plugin "imgvault_xor_plugin:NotACodec" is not an ImageCodec subclass')
    )


def test_imgvault_methods_lists_built_ins_and_plugins_with_their_knob_and_a_broken_plugins_error(plugin, runner):
    rows = {row["method"]: row for row in json.loads(runner.invoke(cli, ["methods", "--json"]).stdout)}
    assert rows["etc"]["knob"] == "block_size" and rows["etc"]["knob_default"] == 16
    assert rows["logistic"]["knob"] is None and rows["logistic"]["lossless"] is True
    assert rows["pca"]["key"] == "fitted model" and rows["aes"]["randomized"] is True
    assert rows["xor"]["source"] == "plugin imgvault_xor_plugin:XorCodec" and rows["xor"]["key"] == "secret bit string"
    assert "does not load: ModuleNotFoundError" in rows["broken"]["error"]
    table = runner.invoke(cli, ["methods"]).stdout
    assert "arnold    iterations: cat-map iterations, default 10  yes" in table
