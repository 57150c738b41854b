"""What an error looks like over HTTP: RFC 9457 problem details (``application/problem+json``), and the
status of each error of the store and the methods."""

from fastapi.responses import JSONResponse

from imgvault.basics.errors import ConfigError, InvalidImage, InvalidParameter, NotFound


def problem(status: int, title: str, detail: str | None = None, **extra) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
          500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


def status_of(exc: Exception) -> int:
    """The HTTP status of an error of the store or the methods."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidImage | InvalidParameter):
        return 422
    if isinstance(exc, ConfigError):
        return 503  # the tracking store cannot be reached, ...
    return 500  # IntegrityError and everything unexpected: the server's fault, not the caller's
