"""The web service's calls into the store, on both backends, through the real ASGI application in process."""

import asyncio
import subprocess
import sys
import threading

import httpx
import pytest
from conftest import sample_images

from imgvault.store.tokens import check_token, create_token, revoke_token
from imgvault.web.app import create_app
from imgvault.web.auth import on_store

PHOTOS = sample_images()


def test_store_calls_run_on_the_event_loop_only_for_a_local_sqlite_file(store, backend):
    def where():
        return threading.get_ident()

    ran_on = asyncio.run(on_store(store, where))
    loop_thread = threading.get_ident()  # asyncio.run runs the loop in this thread
    assert (ran_on == loop_thread) == (backend == "sqlite")


def get(app, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
            return await client.get(path)

    return asyncio.run(main())


@pytest.mark.parametrize("name", ["astronaut-rgb.png", "china.jpg"])
def test_content_is_exact_and_refusals_are_problems_on_both_backends(store, home, name):
    image = store.put(PHOTOS[name], name=name, collection="c")
    _, token = create_token(store, "t")
    app = create_app(store, home=home)
    path = f"/api/v1/images/{image.id}/content"
    response = get(app, path, token)
    assert response.status_code == 200 and response.content == PHOTOS[name]
    assert response.headers["cache-control"] == "no-store"
    assert check_token(store, token) is not None
    revoke_token(store, "t")
    refused = get(app, path, token)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    _, other = create_token(store, "u")
    missing = get(app, "/api/v1/images/01ARZ3NDEKTSV4RRFFQ69G5FAV/content", other)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_the_content_fast_path_is_not_made_in_front_of_a_route_it_would_call_otherwise(store, home, monkeypatch):
    # The fast path calls the route's function with the caller from bearer: a route given another dependency
    # (or parameter) would skip it there, so the application is not made at all.
    from fastapi import APIRouter, Depends

    from imgvault.web import api, fastpath

    async def rate_limit():
        pass

    changed = APIRouter(prefix="/api/v1")
    changed.get("/images/{image_id}/content", dependencies=[Depends(rate_limit)])(api.image_content)
    monkeypatch.setattr(fastpath, "router", changed)
    with pytest.raises(RuntimeError, match="no longer image_content"):
        create_app(store, home=home)


def test_a_token_changed_behind_the_store_s_back_is_seen_at_the_next_check(store, home):
    # On SQLite the records of valid tokens are cached until the database changes: every change made by
    # another connection (another process, or an attacker with the database) must be seen at the next check.
    import sqlalchemy
    from rawdb import raw_engine

    from imgvault.store import Settings, Store, schema

    _, token = create_token(store, "t")
    assert check_token(store, token).read_only is False
    assert check_token(store, token) is not None  # now cached, on SQLite
    engine = raw_engine(home)
    tokens = schema.api_tokens
    with engine.begin() as connection:
        connection.execute(sqlalchemy.update(tokens).where(tokens.c.name == "t").values(read_only=True))
    assert check_token(store, token) is None  # seen, and refused: edited without the store's key
    with Store.open(settings=Settings.resolve(home)) as other:
        revoke_token(other, "t")
    assert check_token(store, token) is None
    _, token = create_token(store, "u")
    assert check_token(store, token) is not None and check_token(store, token) is not None
    with engine.begin() as connection:
        connection.execute(sqlalchemy.delete(tokens).where(tokens.c.name == "u"))
    assert check_token(store, token) is None
    engine.dispose()


def test_images_re_sealed_by_a_key_rotation_in_another_process_are_still_served(store, home):
    image = store.put(PHOTOS["china.jpg"], name="china.jpg", collection="c")
    _, token = create_token(store, "t")
    app = create_app(store, home=home)
    path = f"/api/v1/images/{image.id}/content"
    assert get(app, path, token).status_code == 200
    rotated = subprocess.run([sys.executable, "-m", "imgvault.cli", "key", "rotate"], capture_output=True, text=True)
    assert rotated.returncode == 0, rotated.stderr
    response = get(app, path, token)
    assert response.status_code == 200 and response.content == PHOTOS["china.jpg"]
