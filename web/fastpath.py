"""The API's busiest request, ``GET /api/v1/images/{id}/content``, answered without FastAPI's machinery.

Routing, dependency injection and the middleware stack (FastAPI's own included) cost several times what the
request itself does (a token check, one indexed select and an AES-GCM open). This ASGI layer in front of the
whole FastAPI application (:func:`~imgvault.web.app.create_app` puts it there) answers the request when it
succeeds: a valid bearer token and a stored image. Anything else - no or bad token, an unknown or
malformed id, a tampered record, another method - goes on to the application, which answers it (and its
errors) as the API documents, so there is one place that decides what an error looks like.
"""

import re

from imgvault.store.tokens import check_token

from .auth import bearer_token, on_store
from .media import sniff_content_type

_CONTENT = re.compile(r"/api/v1/images/([0-9A-HJKMNP-TV-Z]{26})/content")


class ContentFastPath:
    """ASGI middleware: serves an image's content directly when it can, else hands the request on."""

    def __init__(self, app, store, headers: list[tuple[bytes, bytes]]):
        self.app, self.store, self.headers = app, store, headers

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("query_string"):
            match = _CONTENT.fullmatch(scope["path"])
            if match is not None and await self._serve(scope, match[1], send):
                return
        await self.app(scope, receive, send)

    async def _serve(self, scope, image_id: str, send) -> bool:
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        token = bearer_token(authorization.decode("latin-1"))
        try:
            if token is None or await on_store(self.store, check_token, self.store, token) is None:
                return False
            data = await on_store(self.store, self.store.get, image_id)
        except Exception:  # the application answers it, with its problem document
            return False
        headers = [(b"content-type", sniff_content_type(data).encode()),
                   (b"content-length", str(len(data)).encode()), *self.headers]  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        return True
