"""Fixtures: real stores on tmp_path and real images from skimage.data and scikit-learn, in many formats."""

import contextlib
import io
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_sample_images

from imgvault.store import Settings, Store

SKIMAGE_DATA = Path(skimage.data.__file__).parent
# Real photos with metadata, for the tests of tracked runs (see the photos fixture).
PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "moon.png", "coins.png")

# The store's suites run on SQLite, and on PostgreSQL too when this names a database the tests may use,
# e.g. postgresql+psycopg://imgvault:imgvault@127.0.0.1:5432/imgvault_test (.ci/run sets it).
PG_URL = os.environ.get("IMGVAULT_TEST_PG_URL")
BOTH_BACKENDS = {
    "test_store",
    "test_encoding",
    "test_cli",
    "test_schema",
    "test_processes",
    "test_links",
    "test_web_store",
    "test_locks",
    "test_authenticated_rows",
}


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.module.__name__ in BOTH_BACKENDS and not metafunc.definition.get_closest_marker("sqlite_only"):
        skip = pytest.mark.skipif(not PG_URL, reason="set IMGVAULT_TEST_PG_URL to run the store tests on PostgreSQL")
        metafunc.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=skip)], indirect=True)


@pytest.fixture
def backend(request) -> str:
    """``sqlite`` or ``postgresql``: where the store of a test lives."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def db_url(backend, clean_env, monkeypatch):
    """For PostgreSQL: a schema of its own for this test, as IMGVAULT_DB_URL; dropped afterwards."""
    if backend == "sqlite":
        yield None
        return
    import sqlalchemy

    schema = f"test_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(PG_URL, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    monkeypatch.setenv("IMGVAULT_DB_URL", url)
    yield url
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def sample_images() -> dict[str, bytes]:
    """Real photos in every format and mode the store must keep byte for byte, by file name."""
    camera = Image.fromarray(skimage.data.camera()).resize((160, 160))  # gray, L
    astronaut = Image.fromarray(skimage.data.astronaut()).resize((160, 160))  # RGB
    china, flower = (Image.fromarray(a).resize((192, 128)) for a in load_sample_images().images)
    rgba = astronaut.copy()
    rgba.putalpha(
        Image.fromarray((skimage.data.camera()[::4, ::4][:128, :128] > 100).astype(np.uint8) * 255).resize((160, 160))
    )
    palette = china.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    sixteen = Image.fromarray(skimage.data.camera()[:160, :160].astype(np.uint16) * 257)  # I;16
    images = {
        "camera-gray.png": _encode(camera, "PNG"),
        "astronaut-rgb.png": _encode(astronaut, "PNG"),
        "astronaut-rgba.png": _encode(rgba, "PNG"),
        "china-palette.png": _encode(palette, "PNG"),
        "camera-16bit.png": _encode(sixteen, "PNG"),
        "china.jpg": _encode(china, "JPEG", quality=90),
        "camera-gray.jpg": _encode(camera, "JPEG"),
        "flower.tiff": _encode(flower, "TIFF"),
        "camera-16bit.tiff": _encode(sixteen, "TIFF"),
        "astronaut-rgba.webp": _encode(rgba, "WEBP", quality=80),
        "flower-lossless.webp": _encode(flower, "WEBP", lossless=True),
        "china-palette.gif": _encode(palette, "GIF"),
        "flower.bmp": _encode(flower, "BMP"),
        "camera-gray.bmp": _encode(camera, "BMP"),
    }
    # The files exactly as the packages ship them, too.
    images["coffee.png"] = (SKIMAGE_DATA / "coffee.png").read_bytes()
    images["rocket.jpg"] = (SKIMAGE_DATA / "rocket.jpg").read_bytes()
    images["animated.gif"] = (SKIMAGE_DATA / "no_time_for_that_tiny.gif").read_bytes()
    images["multipage.tif"] = (SKIMAGE_DATA / "multipage.tif").read_bytes()
    return images


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """A folder of real image files (read-only for tests: copy before changing)."""
    folder = tmp_path_factory.mktemp("images")
    for name, data in sample_images().items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def clean_env(monkeypatch):
    """No imgvault variable from the developer's shell leaks into a test."""
    for name in ("IMGVAULT_HOME", "IMGVAULT_DB_URL", "IMGVAULT_KEY_FILE", "IMGVAULT_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path, clean_env, db_url, monkeypatch) -> Path:
    """The home folder of a store not created yet, set as IMGVAULT_HOME (with IMGVAULT_DB_URL on PostgreSQL)."""
    path = tmp_path / "vault"
    monkeypatch.setenv("IMGVAULT_HOME", str(path))
    return path


@pytest.fixture
def store(home):
    with Store.init(settings=Settings.resolve(home)) as store:
        yield store


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def migrated_tracking_db(tmp_path_factory):
    """An MLflow sqlite database with its schema, made once (migrations take seconds) and copied per test."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def photos(store, home, migrated_tracking_db, monkeypatch):
    """A store with real photos (with metadata) and a fresh copy of the migrated MLflow store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    for name in PHOTOS:
        store.put(SKIMAGE_DATA / name, collection="photos", metadata={"patient": "Jane Roe"})
    return store


@contextlib.contextmanager
def tracked_store(home: Path, migrated_tracking_db: Path):
    """A new store in ``home`` with a fresh copy of the migrated MLflow database, made with no imgvault or MLflow
    variable of the developer's shell: for module fixtures, which cannot use ``clean_env``."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("IMGVAULT_HOME", "IMGVAULT_DB_URL", "IMGVAULT_KEY_FILE", "IMGVAULT_PASSPHRASE",
                     "MLFLOW_TRACKING_URI"):  # fmt: skip
            env.delenv(name, raising=False)
        with Store.init(settings=Settings.resolve(home, environ={})) as store:
            shutil.copy(migrated_tracking_db, home / "mlflow.db")
            yield store
