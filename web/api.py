"""The REST API, ``/api/v1``: JSON, a bearer token on every request (read-only tokens may not write)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import AliasChoices, BaseModel, Field

from imgvault.basics.errors import InvalidParameter
from imgvault.methods.registry import METHOD_NAMES
from imgvault.store.names import check_collection_name, check_label

from . import media, schemas
from .auth import Caller, bearer, on_store
from .operations import (
    DEFAULT_PAGE_SIZE,
    MAX_ENCODE_SIZE,
    MAX_PAGE_SIZE,
    ULID,
    collection_runs,
    encode,
    page_of_images,
    store_uploads,
)
from .problems import problem
from .uploads import BodyError, read_multipart

router = APIRouter(prefix="/api/v1", tags=["api"], responses=schemas.COMMON)
Reader = Annotated[Caller, Depends(bearer)]
ImageId = Annotated[str, Path(pattern=ULID, description="An image id (ULID)")]
EncodedId = Annotated[str, Path(pattern=ULID, description="An encoded image id (ULID)")]


def _store(request: Request):
    return request.app.state.store


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png")


@router.get("/collections", response_model=None, responses={200: {"model": schemas.Collections}})
def list_collections(request: Request, caller: Reader) -> dict:
    """Every collection with its image count and size."""
    return {"collections": [c.to_dict() for c in _store(request).collections()]}


@router.get("/collections/{name:path}/images", response_model=None,
            responses={200: {"model": schemas.ImagesPage}, **schemas.problems(404)})  # fmt: skip
def list_images(
    request: Request,
    caller: Reader,
    name: str,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """A page of a collection's images (the fields of ``imgvault ls --json``), oldest first."""
    images, next_token = page_of_images(_store(request), name, page_size, page_token, request.app.state.page_tokens)
    return {"images": [image.to_dict() for image in images], "next_page_token": next_token}


@router.post("/collections/{name:path}/images", response_model=None, status_code=201, responses={
    201: {"model": schemas.Uploads, "description": "Every file stored"},
    207: {"model": schemas.Uploads, "description": "Some files stored: a result per file"},
    **schemas.problems(403, 413, 415, 422)})  # fmt: skip
async def upload_images(request: Request, caller: Reader, name: str) -> JSONResponse:
    """Store the files of a multipart body (field ``file`` or ``files``), each validated as ``imgvault put`` does;
    an optional ``label`` field labels every file (as ``put --label``; 422 if it is not a label).

    A result per file; good files are stored even when others fail. 201 if all were stored, 207 if some
    were, 422 (a problem document, with the results) if none.
    """
    caller.require_write()
    try:
        check_collection_name(name)
    except ValueError as exc:
        raise BodyError(422, str(exc)) from None
    fields, files = await read_multipart(request)
    if not files:
        raise BodyError(422, "no file in the request (send them as multipart/form-data file fields)")
    label = fields.get("label")
    if label is not None:
        try:
            check_label(label)
        except InvalidParameter as exc:
            raise BodyError(422, str(exc)) from None
    results = await run_in_threadpool(store_uploads, _store(request), name, files, label)
    stored = sum("image" in r for r in results)
    body = {"stored": stored, "failed": len(results) - stored, "results": results}
    if not stored:
        return problem(422, "Unprocessable Content", "no file was an image the store accepts", **body)
    return JSONResponse(body, status_code=201 if stored == len(results) else 207)


@router.get("/images/{image_id}", response_model=None,
            responses={200: {"model": schemas.Image}, **schemas.problems(404)})  # fmt: skip
def image_info(request: Request, caller: Reader, image_id: ImageId) -> dict:
    """An image's record, without its bytes (the fields of ``imgvault ls --json``)."""
    return _store(request).info(image_id).to_dict()


@router.get(
    "/images/{image_id}/content",
    response_class=Response,
    responses={
        200: {"content": {"image/*": {}}, "description": "The bytes, with their content type"},
        **schemas.problems(404),
    },
)
async def image_content(request: Request, caller: Reader, image_id: ImageId) -> Response:
    """The original bytes, exactly as they were put, with their content type."""
    store = _store(request)
    data = await on_store(store, store.get, image_id)
    return Response(data, media_type=media.sniff_content_type(data))


@router.get("/images/{image_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, **schemas.problems(404)})  # fmt: skip
def image_thumbnail(request: Request, caller: Reader, image_id: ImageId,
                    size: Annotated[int, Query(ge=media.THUMBNAIL_SIZES[0], le=media.THUMBNAIL_SIZES[1])] = 256,
                    ) -> Response:  # fmt: skip
    """The image fitted into ``size`` x ``size`` pixels, as PNG; for an image too large to decode for a preview,
    a gray placeholder with the header ``X-Imgvault-Preview: too-large``."""
    png, complete = request.app.state.thumbnails.get(image_id, size)
    response = _png(png)
    if not complete:
        response.headers["X-Imgvault-Preview"] = "too-large"
    return response


@router.delete("/images/{image_id}", status_code=204, response_class=Response, responses=schemas.problems(403, 404))
def delete_image(request: Request, caller: Reader, image_id: ImageId) -> Response:
    """Delete an image with its encoded images."""
    caller.require_write()
    _store(request).remove([image_id])
    return Response(status_code=204)


@router.get("/images/{image_id}/encoded", response_model=None,
            responses={200: {"model": schemas.EncodedImages}, **schemas.problems(404)})  # fmt: skip
def image_encoded_images(request: Request, caller: Reader, image_id: ImageId) -> dict:
    """The stored encoded images of an image: method, parameters, metrics."""
    store = _store(request)
    store.info(image_id)
    return {"encoded_images": [e.to_dict() for e in store.encoded_images(image_id=image_id)]}


class EncodeRequest(BaseModel):
    method: Literal[METHOD_NAMES]  # the built-in methods (the registry's names, not a copy of them)
    k: int | None = Field(
        None,
        ge=1,
        le=256,
        description="The method's knob (imgvault methods): components (pca), "
        "clusters (kmeans, gmm), block size (le, etc), iterations (arnold); none for the others",
    )
    size: int = Field(100, ge=8, le=MAX_ENCODE_SIZE, description="Side of the square the image is resized to")
    colour: Literal["gray", "rgb"] = Field("gray", validation_alias=AliasChoices("colour", "color"))


@router.post("/images/{image_id}/encoded", status_code=201, response_model=None,
             responses={201: {"model": schemas.Encoded}, **schemas.problems(403, 404)})  # fmt: skip
def encode_on_demand(request: Request, caller: Reader, image_id: ImageId, body: EncodeRequest) -> dict:
    """Encode the image with a method now (as ``imgvault encode``); the stored encoded image with its metrics."""
    caller.require_write()
    info = encode(_store(request), image_id, method=body.method, k=body.k, size=body.size, color=body.colour)
    return info.to_dict()


@router.get("/encoded/{encoded_id}/reconstruction", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, **schemas.problems(404)})  # fmt: skip
def reconstruction(request: Request, caller: Reader, encoded_id: EncodedId) -> Response:
    """What the encoded image's codec model decodes, as PNG (for aes, exactly the pixels that were encrypted)."""
    return _png(media.pixels_png(media.encoding_panel(_store(request), encoded_id, "reconstruction")))


@router.get("/encoded/{encoded_id}/picture", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, **schemas.problems(404)})  # fmt: skip
def encrypted_picture(request: Request, caller: Reader, encoded_id: EncodedId) -> Response:
    """The encoded ("encrypted") image drawn as pixels, as the runs' figures show it, as PNG."""
    return _png(media.pixels_png(media.encoding_panel(_store(request), encoded_id, "encrypted")))


@router.get("/collections/{name:path}/runs", response_model=None,
            responses={200: {"model": schemas.Runs}, **schemas.problems(404, 503)})  # fmt: skip
def runs(request: Request, caller: Reader, name: str) -> dict:
    """The latest finished run of each method on the collection, from MLflow, with links into the MLflow UI."""
    state = request.app.state
    return {"runs": collection_runs(state.store, state.home, name, state.mlflow_ui)}


@router.get("/docs", include_in_schema=False, response_class=Response)
def documentation(request: Request) -> Response:
    """The API's documentation, rendered on the server from its OpenAPI document: no script, nothing fetched."""
    app = request.app
    return app.state.templates.TemplateResponse(request, "api_docs.html", {
        "doc": app.openapi(), "openapi_url": app.openapi_url, "caller": None})  # fmt: skip
