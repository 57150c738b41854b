"""What the REST API's answers look like, for its OpenAPI document: typed bodies and its problem documents.

The routes return plain dicts (built by the records' ``to_dict``, as ``imgvault ... --json`` prints them);
these models describe them in the document (``responses=``), without re-validating each answer.
"""

from pydantic import BaseModel, Field

from imgvault.store.records import CollectionInfo, EncodedInfo, ImageInfo

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """An error, as every error of the API is: an RFC 9457 problem document."""

    type: str = Field("about:blank", description="Always about:blank: the status says what kind of error")
    title: str = Field(description="The status's name, e.g. Not Found")
    status: int
    detail: str = Field(description="What went wrong, in one line")


# The records themselves (stdlib dataclasses, as their to_dict gives them: datetimes as ISO 8601 UTC text).
Collection, Image, Encoded = CollectionInfo, ImageInfo, EncodedInfo


class Collections(BaseModel):
    collections: list[Collection]


class ImagesPage(BaseModel):
    images: list[Image]
    next_page_token: str | None = Field(description="Opaque and MAC'd; null on the last page")


class UploadResult(BaseModel):
    file: str
    image: Image | None = None
    error: str | None = None


class Uploads(BaseModel):
    stored: int
    failed: int
    results: list[UploadResult]


class EncodedImages(BaseModel):
    encoded_images: list[Encoded]


class Runs(BaseModel):
    runs: list[dict] = Field(description="The rows of imgvault compare --json, with mlflow_url")


def problems(*statuses: int) -> dict:
    """``responses=`` entries: each status as a problem document."""
    return {status: {"model": Problem, "content": {PROBLEM: {}}, "description": _WHY[status]} for status in statuses}


_WHY = {400: "Malformed request", 401: "No valid token (none, unknown or revoked)",
        403: "A read-only token writing", 404: "No such collection, image or encoded image",
        413: "Body too large, or too many files or parts", 415: "Not multipart/form-data",
        422: "A malformed id, parameter or page token; or no file was an image",
        500: "The server's fault (the server's log has the details)",
        503: "The MLflow tracking store cannot be reached"}  # fmt: skip
# Every request may meet these: no or a bad token, a bad parameter, the server's own fault.
COMMON = problems(401, 422, 500)
