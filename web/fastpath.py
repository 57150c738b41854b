"""The API's busiest request, ``GET /api/v1/images/{id}/content``, without FastAPI's routing and middleware.

Routing, dependency injection and the middleware stack (FastAPI's own included) cost several times what the
request itself does (a token check, one indexed select and an AES-GCM open). This ASGI layer in front of the
whole FastAPI application (:func:`~imgvault.web.app.create_app` puts it there) only skips them: for a path of
that route, it calls the route's own functions, :func:`~imgvault.web.auth.bearer` and
:func:`~imgvault.web.api.image_content`, and answers an error with the application's own exception handlers.
The route is the code that runs; anything else (another path or method, a query string) goes to the
application.
"""

import re

from fastapi import Request

from .api import image_content
from .auth import bearer

_CONTENT = re.compile(r"/api/v1/images/([0-9A-HJKMNP-TV-Z]{26})/content")  # the route's path, with a valid id


class ContentFastPath:
    """ASGI middleware: answers ``GET /api/v1/images/{id}/content`` by calling its route's function."""

    def __init__(self, app, headers: list[tuple[bytes, bytes]]):
        self.app, self.headers = app, headers

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string"):
            match = _CONTENT.fullmatch(scope["path"])
            if match is not None:
                scope["app"] = self.app  # what request.app is inside the application
                request = Request(scope, receive)
                try:
                    response = await image_content(request, await bearer(request), match[1])
                except Exception as exc:
                    response = await _handler(self.app, exc)(request, exc)
                response.raw_headers.extend(self.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _handler(app, exc: Exception):
    """The application's handler of ``exc``: the one registered for the nearest of its classes."""
    handlers = app.exception_handlers
    return next(handlers[kind] for kind in type(exc).__mro__ if kind in handlers)
