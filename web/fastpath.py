"""The API's busiest request, ``GET /api/v1/images/{id}/content``, without FastAPI's routing and middleware.

Routing, dependency injection and the middleware stack (FastAPI's own included) cost several times what the
request itself does (a token check, one indexed select and an AES-GCM open). This ASGI layer in front of the
whole FastAPI application (:func:`~imgvault.web.app.create_app` puts it there) only skips them: for a path of
that route, it calls the route's own functions, :func:`~imgvault.web.auth.bearer` and
:func:`~imgvault.web.api.image_content`, and answers an error with the application's own exception handlers.
The route is the code that runs; anything else (another path or method, a query string) goes to the
application.

What the route is made of is looked up once, when the application is made: its endpoint and dependency from
the API's route (which must still be ``image_content(request, caller, image_id)`` with the caller from
``bearer``, or the application is not made), and the application's handler of each class of error the first
time one is raised.
"""

import re

from fastapi import Request
from fastapi.routing import APIRoute

from .api import image_content, router
from .auth import bearer

PATH = "/api/v1/images/{image_id}/content"
_CONTENT = re.compile(r"/api/v1/images/([0-9A-HJKMNP-TV-Z]{26})/content")  # the route's path, with a valid id


class ContentFastPath:
    """ASGI middleware: answers ``GET /api/v1/images/{id}/content`` by calling its route's function."""

    def __init__(self, app, headers: list[tuple[bytes, bytes]]):
        self.app, self.headers = app, headers
        self._endpoint, self._caller = _content_route()
        self._handlers: dict[type, object] = {}  # the application's handler of each class of error met so far

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string"):
            match = _CONTENT.fullmatch(scope["path"])
            if match is not None:
                scope["app"] = self.app  # what request.app is inside the application
                request = Request(scope, receive)
                try:
                    response = await self._endpoint(request, await self._caller(request), match[1])
                except Exception as exc:
                    response = await self._handler(type(exc))(request, exc)
                response.raw_headers.extend(self.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _handler(self, kind: type):
        """The application's handler of errors of class ``kind``: the one registered for the nearest of its
        classes."""
        handler = self._handlers.get(kind)
        if handler is None:
            handlers = self.app.exception_handlers
            handler = self._handlers[kind] = next(handlers[k] for k in kind.__mro__ if k in handlers)
        return handler


def _content_route() -> tuple:
    """``(endpoint, caller)``: the function of the API's content route and its one dependency, checked to be
    what the fast path calls them as (else RuntimeError: the route changed without the fast path)."""
    routes = [r for r in router.routes if isinstance(r, APIRoute) and r.path == PATH and "GET" in r.methods]
    if len(routes) != 1:
        raise RuntimeError(f"the fast path needs one GET route {PATH}; the API has {len(routes)}")
    dependant = routes[0].dependant
    dependencies = [dependency.call for dependency in dependant.dependencies]
    parameters = [parameter.name for parameter in dependant.path_params + dependant.query_params
                  + dependant.header_params + dependant.cookie_params + dependant.body_params]  # fmt: skip
    if dependant.call is not image_content or dependencies != [bearer] or parameters != ["image_id"]:
        raise RuntimeError(f"the route {PATH} is no longer image_content(request, bearer, image_id): "
                           f"the fast path would not call it as the application does")  # fmt: skip
    return dependant.call, dependencies[0]
