"""The gallery: server-rendered pages for people, signed in with a token (a session cookie), no script.

Every form carries the session's CSRF token (sign-in: a double-submit cookie), checked before anything
is done. Pictures are fetched from ``/media/...`` with the session cookie and made per request in memory.
"""

import base64
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from imgvault.basics.errors import CollectionNotFound
from imgvault.methods.registry import KNOBS, METHOD_NAMES
from imgvault.store.names import check_collection_name

from . import media
from .auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Caller, check_csrf, session_caller
from .operations import (
    DEFAULT_PAGE_SIZE,
    MAX_ENCODE_SIZE,
    ULID,
    collection_runs,
    encode,
    image_across_methods,
    page_of_images,
    store_uploads,
)
from .uploads import BodyError, read_form, read_multipart

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Caller, Depends(session_caller)]
ImageId = Annotated[str, Path(pattern=ULID)]
PANEL = "^(original|encrypted|reconstruction|error)$"


def _page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return _page(request, "error.html", status, title=title, detail=detail, caller=None)


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                        secure=request.app.state.secure_cookies)  # fmt: skip


# -- signing in and out ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str | None = None) -> HTMLResponse:
    csrf = secrets.token_urlsafe(32)
    response = _page(request, "login.html", 401 if error else 200, csrf=csrf, error=error, caller=None)
    _cookie(request, response, LOGIN_CSRF_COOKIE, csrf, 3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token"))
    token = form.get("token", "").strip()
    if await run_in_threadpool(request.app.state.tokens.check, token) is None:
        return login_form(request, error="That token is not valid (unknown or revoked).")
    response = RedirectResponse("/", status_code=303)
    _cookie(request, response, SESSION_COOKIE, request.app.state.sessions.open(token), SESSION_SECONDS)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, caller: Viewer) -> Response:
    form = await read_form(request)
    check_csrf(caller.session.csrf, form.get("csrf_token"))
    request.app.state.sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- pages ---------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def collections(request: Request, caller: Viewer) -> HTMLResponse:
    return _page(request, "collections.html", caller=caller, collections=request.app.state.store.collections())


@router.get("/collections/{name:path}/compare", response_class=HTMLResponse)
def compare(request: Request, caller: Viewer, name: str,
            image: Annotated[str | None, Query(pattern=ULID)] = None) -> HTMLResponse:  # fmt: skip
    state = request.app.state
    runs = collection_runs(state.store, state.home, name, state.mlflow_ui)
    images, shown, encodings = image_across_methods(state.store, name, image)
    frontier, reading = _frontier(runs)
    return _page(request, "compare.html", caller=caller, name=name, runs=runs, quoted=quote(name, safe=""),
                 images=images, shown=shown, encodings=encodings, number=_number, psnr=_psnr, frontier=frontier,
                 frontier_reading=reading)  # fmt: skip


def _frontier(runs: list[dict]) -> tuple[str | None, str | None]:
    """The privacy-utility frontier of the runs as a base64 PNG, and its reading; None where none was measured."""
    from imgvault.tracker.reports.frontier import frontier_png, points, reading

    found = points(runs)
    if not found:
        return None, None
    return base64.b64encode(frontier_png(found)).decode(), reading(found)


def _number(value) -> str:
    return "–" if value is None else f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"


def _psnr(metrics) -> str:
    """PSNR as the command line prints it: inf for an exact reconstruction."""
    if metrics.get("psnr") is None and (metrics.get("exact_fraction") == 1.0 or metrics.get("mse") == 0):
        return "inf"
    return _number(metrics.get("psnr"))


@router.get("/collections/{name:path}/report", response_class=HTMLResponse)
def report(request: Request, caller: Viewer, name: str) -> HTMLResponse:
    """The HTML of ``imgvault report`` (aggregate numbers and charts, no pixels), shown in the compare page."""
    from imgvault.tracker.reports.page import render_report

    return HTMLResponse(render_report(request.app.state.home, name))


@router.post("/collections/{name:path}/upload", response_class=HTMLResponse)
async def upload(request: Request, caller: Viewer, name: str) -> HTMLResponse:
    # Who may write, and the CSRF token (in the form's address), before a byte of the body is parsed.
    caller.require_write()
    check_csrf(caller.session.csrf, request.query_params.get("csrf_token"))
    _fields, files = await read_multipart(request)
    try:
        check_collection_name(name)
    except ValueError as exc:
        raise BodyError(422, str(exc)) from None
    files = [f for f in files if f.filename or f.data]
    results = await run_in_threadpool(store_uploads, request.app.state.store, name, files)
    return _page(request, "uploaded.html", caller=caller, name=name, results=results, quoted=quote(name, safe=""))


@router.get("/new-collection")
def new_collection(caller: Viewer, name: Annotated[str, Query(min_length=1, max_length=200)]) -> Response:
    return RedirectResponse(f"/collections/{quote(name, safe='')}", status_code=303)


@router.get("/collections/{name:path}", response_class=HTMLResponse)
def collection(request: Request, caller: Viewer, name: str,
               page_token: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:  # fmt: skip
    try:
        state = request.app.state
        images, next_token = page_of_images(state.store, name, DEFAULT_PAGE_SIZE, page_token, state.page_tokens)
    except CollectionNotFound:
        images, next_token = [], None  # a new collection: its first upload makes it
    return _page(request, "collection.html", caller=caller, name=name, images=images, next_token=next_token,
                 quoted=quote(name, safe=""))  # fmt: skip


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image(request: Request, caller: Viewer, image_id: ImageId) -> HTMLResponse:
    store = request.app.state.store
    info = store.info(image_id)
    encodings = list(store.encoded_images(image_id=image_id))
    return _page(request, "image.html", caller=caller, image=info, encodings=encodings, methods=METHOD_NAMES,
                 max_size=MAX_ENCODE_SIZE, quoted=quote(info.collection, safe=""), number=_number,
                 psnr=_psnr)  # fmt: skip


@router.post("/images/{image_id}/encode")
async def encode_form(request: Request, caller: Viewer, image_id: ImageId) -> Response:
    form = await read_form(request)
    check_csrf(caller.session.csrf, form.get("csrf_token"))
    caller.require_write()
    method, color = form.get("method", ""), form.get("color", "gray")
    try:
        k = int(form["k"]) if form.get("k", "").strip() and method in KNOBS else None  # no knob: no k
        size = int(form.get("size") or 100)
    except ValueError:
        raise BodyError(422, "k and size are whole numbers") from None
    info = await run_in_threadpool(encode, request.app.state.store, image_id, method=method, k=k, size=size,
                                   color=color)  # fmt: skip
    return RedirectResponse(f"/images/{image_id}#encoded-{info.id}", status_code=303)


# -- pictures for the pages, with the session cookie ---------------------------------------------------


@router.get("/media/images/{image_id}/content")
def media_content(request: Request, caller: Viewer, image_id: ImageId) -> Response:
    data = request.app.state.store.get(image_id)
    return Response(data, media_type=media.sniff_content_type(data))


@router.get("/media/images/{image_id}/thumbnail")
def media_thumbnail(request: Request, caller: Viewer, image_id: ImageId,
                    size: Annotated[int, Query(ge=16, le=1024)] = 160) -> Response:  # fmt: skip
    png, complete = request.app.state.thumbnails.get(image_id, size)
    return Response(png, media_type="image/png", headers={} if complete else {"X-Imgvault-Preview": "too-large"})


@router.get("/media/encoded/{encoded_id}/{panel}.png")
def media_panel(
    request: Request,
    caller: Viewer,
    encoded_id: Annotated[str, Path(pattern=ULID)],
    panel: Annotated[str, Path(pattern=PANEL)],
) -> Response:
    pixels = media.encoding_panel(request.app.state.store, encoded_id, panel)
    return Response(media.pixels_png(pixels), media_type="image/png")
