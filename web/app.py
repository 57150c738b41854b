"""The ASGI application of ``imgvault serve``: the REST API under ``/api/v1`` and the gallery's pages.

Errors of the API are RFC 9457 problem details (``application/problem+json``), never a traceback; the
gallery shows them as a page. Every response carries ``Cache-Control: no-store`` (images and pages are
decrypted per request and must not stay in a browser's or a proxy's cache) and a content security policy
that allows no script at all.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException  # Starlette's own (405, 404 of routing) and FastAPI's

from imgvault.basics.errors import ImgVaultError, IntegrityError
from imgvault.store import Store

from .auth import AuthError, Sessions
from .fastpath import ContentFastPath
from .operations import PageTokens
from .problems import TITLES, problem, status_of
from .thumbnails import Thumbnails
from .tokens import Tokens
from .uploads import BodyError

log = logging.getLogger("imgvault.web")

SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"content-security-policy", b"default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                 b"frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"),
]  # fmt: skip


class SecurityHeaders:
    """Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware) adding :data:`SECURITY_HEADERS`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True, slots=True)
class AppState:
    """What the routes serve with, as ``request.app.state``: the store (open) and the objects made for it.

    Plain attributes, where Starlette's ``State`` looks each one up through ``__getattr__``: every API request
    reads one or two of them.
    """

    store: Store
    home: Path  # locates the MLflow runs
    mlflow_ui: str | None  # where the MLflow UI is, for links to runs
    secure_cookies: bool
    sessions: Sessions
    tokens: Tokens
    thumbnails: Thumbnails
    page_tokens: PageTokens
    templates: Jinja2Templates


def create_app(store, *, home: Path, mlflow_ui: str | None = None, secure_cookies: bool = False) -> ContentFastPath:
    """The application serving ``store`` (open; the caller closes it). ``home`` locates the MLflow runs.

    It is the FastAPI application behind :class:`ContentFastPath` (its ``app``): the fast path sits in front
    of FastAPI's own middleware, which costs more than the image request itself.
    """
    from . import api, gallery

    # The OpenAPI document is served, and a page made from it (/api/v1/docs); FastAPI's documentation pages are
    # not (they load scripts from a CDN).
    app = FastAPI(title="imgvault", version="1", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state = AppState(
        store=store,
        home=Path(home),
        mlflow_ui=mlflow_ui.rstrip("/") if mlflow_ui else None,
        secure_cookies=secure_cookies,
        sessions=Sessions(),
        tokens=Tokens(store),
        thumbnails=Thumbnails(store),
        page_tokens=PageTokens(),
        templates=Jinja2Templates(directory=str(Path(__file__).parent / "templates")),
    )
    app.include_router(api.router)
    app.include_router(gallery.router)
    app.add_middleware(SecurityHeaders)

    def respond(request: Request, status: int, detail: str, **extra) -> Response:
        if request.url.path.startswith("/api/"):
            response = problem(status, TITLES.get(status, "Error"), detail, **extra)
            if status == 401:
                response.headers["www-authenticate"] = 'Bearer realm="imgvault"'
            return response
        if status == 401:
            return RedirectResponse("/login", status_code=303)
        return gallery.error_page(request, status, TITLES.get(status, "Error"), detail)

    @app.exception_handler(AuthError)
    async def on_auth(request: Request, exc: AuthError):
        return respond(request, exc.status, exc.detail)

    @app.exception_handler(BodyError)
    async def on_body(request: Request, exc: BodyError):
        return respond(request, exc.status, exc.detail)

    @app.exception_handler(ImgVaultError)
    async def on_store_error(request: Request, exc: ImgVaultError):
        status = status_of(exc)
        if isinstance(exc, IntegrityError):
            log.error("integrity check failed on %s: %s", request.url.path, exc)
            return respond(request, status, "a stored record failed its integrity check (wrong key or tampered data)")
        return respond(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return respond(request, 422, detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException):
        return respond(request, exc.status_code, str(exc.detail))

    @app.exception_handler(404)
    async def on_not_found(request: Request, exc):
        return respond(request, 404, f"nothing at {request.url.path}")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return respond(request, 500, f"unexpected {type(exc).__name__} (the server's log has the details)")

    return ContentFastPath(app, headers=SECURITY_HEADERS)
