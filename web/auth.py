"""Who is asking: bearer tokens for the API, sign-in sessions (a cookie) and CSRF tokens for the gallery.

Every request is checked against the store's token table (:mod:`imgvault.store.tokens`, :mod:`.tokens`), so a revoked
token stops working at its next request, in the API and in every session signed in with it. Sessions live
in this process's memory only: a restart signs everyone out.
"""

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from imgvault.store.tokens import TokenInfo

SESSION_COOKIE = "imgvault_session"
LOGIN_CSRF_COOKIE = "imgvault_login_csrf"
SESSION_SECONDS = 12 * 3600


class AuthError(Exception):
    """Refused: 401 (no valid token or session), 403 (a read-only token writing) or 403 (a bad CSRF token)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class Session:
    token: str  # in memory only, to check on each request that it still is a valid token
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    expires: float = field(default_factory=lambda: time.monotonic() + SESSION_SECONDS)


class Sessions:
    """The signed-in browsers, by the random id their cookie holds."""

    def __init__(self):
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, token: str) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            self._sessions[session_id] = Session(token)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.expires <= time.monotonic():
            return None
        return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the token's record, and the session it came through (None for the API)."""

    token: TokenInfo
    session: Session | None = None

    def require_write(self) -> "Caller":
        if self.token.read_only:
            raise AuthError(403, f'token "{self.token.name}" is read-only')
        return self


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header's value, or None if it holds none."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token of imgvault token create NAME: Authorization: Bearer ivt_...",
)


async def bearer(request: Request, _declared: Annotated[object, Security(_BEARER)] = None) -> Caller:
    """The caller of an API request, from its ``Authorization: Bearer TOKEN`` header; else AuthError 401.

    ``_declared`` declares the scheme in the OpenAPI document (the header is read here). A coroutine, so that
    on SQLite checking the token (a cached record and ``PRAGMA data_version``, or one indexed select, in a
    local file) runs on the event loop instead of costing a hop to the thread pool and back on every request
    (see :func:`on_store`).
    """
    token = bearer_token(_authorization(request.scope["headers"]))
    if token is None:
        raise AuthError(401, "send a token: Authorization: Bearer TOKEN (imgvault token create NAME)")
    tokens = request.app.state.tokens
    info = await on_store(tokens.store, tokens.check, token)
    if info is None:
        raise AuthError(401, "the token is not valid (unknown or revoked)")
    return Caller(info)


def _authorization(headers: list[tuple[bytes, bytes]]) -> str:
    """The value of the ``Authorization`` header in an ASGI scope's ``headers`` (whose names the server gives
    in lower case), or "": what ``request.headers.get("authorization", "")`` gives, without building them."""
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


async def on_store(store, function, *args):
    """``function(*args)``, a short call into ``store``: on the event loop if the database is a local SQLite
    file (faster than a thread hop), else in the thread pool, so that a database across a network never
    holds up the other requests."""
    if store.database.is_sqlite:
        return function(*args)
    return await run_in_threadpool(function, *args)


def session_caller(request: Request) -> Caller:
    """The caller of a gallery page, from the session cookie; else AuthError 401 (the page sends to sign-in)."""
    session = request.app.state.sessions.get(request.cookies.get(SESSION_COOKIE))
    info = session and request.app.state.tokens.check(session.token)
    if info is None:
        raise AuthError(401, "sign in with a token")
    return Caller(info, session)


def check_csrf(expected: str | None, given: str | None) -> None:
    """Raise AuthError 403 unless the form's CSRF token is the session's (compared in constant time)."""
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise AuthError(403, "the form's CSRF token is missing or wrong: reload the page and try again")
