"""docker-compose.yml, checked without Docker (no engine runs here): parsed and interpolated as compose would."""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "objectstore", "create-bucket", "mlflow", "dask-scheduler", "dask-worker", "imgvault", "web"}
# What each service listens on, inside the compose network.
LISTENS = {"postgres": 5432, "objectstore": 9000, "mlflow": 5000, "dask-scheduler": 8786, "web": 8000}
SECRETS = {"POSTGRES_PASSWORD", "IMGVAULT_DB_PASSWORD", "MLFLOW_DB_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY",
           "IMGVAULT_PASSPHRASE"}  # fmt: skip
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}; an unset required variable fails as compose does."""

    def value(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise ValueError(f"{name}: {arg}")
        return ""

    return VARIABLE.sub(value, text)


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file as `docker compose` would see it with a filled-in .env."""
    env = env_example() | {name: f"test-{name.lower()}" for name in SECRETS}
    return yaml.safe_load(interpolate((ROOT / "docker-compose.yml").read_text(), env))


def test_every_variable_is_documented_in_env_example_and_no_secret_is_committed():
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m["name"] for m in VARIABLE.finditer(text)}
    example = env_example()
    assert used <= set(example), used - set(example)
    for name in SECRETS:
        assert example[name] == "", f"{name} must be empty in .env.example"
        assert any(m["name"] == name and m["op"] == ":?" for m in VARIABLE.finditer(text)), f"{name} is not required"
    with pytest.raises(ValueError, match=r"set POSTGRES_PASSWORD in \.env"):
        interpolate(text, example)  # as committed, compose refuses to start
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_services_and_their_images(compose):
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert image == "imgvault:latest" and service["build"] == ".", name
        else:
            repository, _, tag = image.rpartition(":")
            assert repository and tag and tag != "latest", f"{name}: pin the image's version ({image})"
        for other in service.get("depends_on", {}):
            assert other in services, f"{name} depends on a service that does not exist: {other}"


def test_only_the_mlflow_ui_and_the_web_service_are_published_and_only_on_loopback(compose):
    published = {name: service["ports"] for name, service in compose["services"].items() if "ports" in service}
    assert published == {"mlflow": ["127.0.0.1:5000:5000"], "web": ["127.0.0.1:8000:8000"]}


def _options(command: list[str]) -> dict[str, str]:
    return {command[i]: command[i + 1] for i in range(len(command) - 1) if command[i].startswith("--")}


def test_the_web_service_serves_the_store_the_cli_uses_and_links_to_the_published_mlflow_ui(compose):
    web, cli = compose["services"]["web"], compose["services"]["imgvault"]
    command = web["command"]
    assert command[0] == "serve" and _options(command)["--port"] == "8000"
    # It listens beyond its container's loopback without TLS only because the port is published on the host's.
    assert _options(command)["--host"] == "0.0.0.0" and "--insecure-public" in command
    assert _options(command)["--mlflow-ui"] == "http://127.0.0.1:5000"  # where a browser on the host finds it
    for name in ("IMGVAULT_DB_URL", "IMGVAULT_PASSPHRASE", "MLFLOW_TRACKING_URI"):
        assert web["environment"][name] == cli["environment"][name], name
    assert "8000" in " ".join(web["healthcheck"]["test"])


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_every_url_points_at_a_service_that_exists_on_the_port_it_listens_on(compose):
    services = compose["services"]
    urls = []
    for name, service in services.items():
        # The web service's links into the MLflow UI are for a browser on the host (checked above).
        strings = _strings({k: v for k, v in service.items() if k != "healthcheck"})
        for text in (t for t in strings if t != _options(service.get("command") or []).get("--mlflow-ui")):
            urls += [(name, url) for url in re.findall(r"\b[a-z][a-z0-9+]*://[^\s,'\"]+", text)]
    assert len(urls) >= 5
    for name, url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("s3", "imgvault+s3"):
            continue  # a bucket, not a host
        assert parts.hostname in services, f"{name}: {url} names no service"
        assert parts.port == LISTENS[parts.hostname], f"{name}: {url} is not where {parts.hostname} listens"
    databases = {urlsplit(url).path.lstrip("/") for _, url in urls if url.startswith("postgresql")}
    init = (ROOT / "deploy" / "postgres-init.sh").read_text()
    assert databases == {"imgvault", "mlflow"}
    assert all(f"CREATE DATABASE {db} OWNER {db};" in init for db in databases)


def test_mlflow_uses_postgresql_and_the_object_store_and_serves_the_artifacts_sealed(compose):
    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    option = {command[i]: command[i + 1] for i in range(len(command) - 1) if command[i].startswith("--")}
    assert option["--backend-store-uri"].startswith("postgresql://mlflow:")
    # Sealed before they reach the object store, by imgvault's app, which holds the store's key.
    assert option["--artifacts-destination"] == "imgvault+s3://mlflow/artifacts"
    assert option["--app-name"] == "imgvault"
    cli = compose["services"]["imgvault"]["environment"]
    assert {mlflow["environment"][name] for name in ("IMGVAULT_DB_URL", "IMGVAULT_PASSPHRASE")} == {
        cli["IMGVAULT_DB_URL"], cli["IMGVAULT_PASSPHRASE"]}  # fmt: skip
    assert "--serve-artifacts" in command
    assert "mlflow:5000" in option["--allowed-hosts"].split(",")  # the CLI container calls it by that name
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://objectstore:9000"
    assert mlflow["depends_on"]["create-bucket"] == {"condition": "service_completed_successfully"}


def test_the_cli_container_reaches_the_store_mlflow_and_dask_by_service_name(compose):
    env = compose["services"]["imgvault"]["environment"]
    assert env["IMGVAULT_DB_URL"].startswith("postgresql+psycopg://imgvault:")
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["DASK_SCHEDULER_ADDRESS"] == "tcp://dask-scheduler:8786"
    worker = compose["services"]["dask-worker"]["command"]
    assert worker[:2] == ["worker", "tcp://dask-scheduler:8786"]


def test_the_dockerfile_copies_what_exists_and_installs_the_team_extras():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.M):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), source
    assert '".[postgres,dask]"' in dockerfile
    for mounted in ("deploy/postgres-init.sh", "deploy/create-bucket.py"):
        assert (ROOT / mounted).exists()
    compile((ROOT / "deploy" / "create-bucket.py").read_text(), "create-bucket.py", "exec")
