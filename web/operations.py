"""What the API and the gallery both do: page through a collection, store uploads, encode, list runs."""

import base64
import binascii
import hmac
import re
import secrets
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from imgvault.basics.errors import CollectionNotFound, ImageNotFound, InvalidImage, InvalidParameter, NotFound

from .uploads import Part, upload_name

ULID = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_ULID = re.compile(ULID)
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
MAX_ENCODE_SIZE = 512  # a request may not make the server fit a model on more pixels than this squared


class PageTokens:
    """Opaque page tokens, MAC'd with a key of this server process: where a collection's next page starts.

    A token says nothing readable (no image id) and cannot be made, edited or moved to another collection by
    a caller: each is the next image's position and an HMAC-SHA256 of it and of the collection. Tokens last
    as long as the server: after a restart, a listing starts again from its first page.
    """

    def __init__(self):
        self._key = secrets.token_bytes(32)

    def _mac(self, collection: str, image_id: str) -> str:
        text = f"page\x00{collection}\x00{image_id}".encode()
        return base64.urlsafe_b64encode(hmac.digest(self._key, text, "sha256")[:16]).decode().rstrip("=")

    def make(self, collection: str, image_id: str) -> str:
        position = base64.urlsafe_b64encode(image_id.encode()).decode().rstrip("=")
        return f"{position}.{self._mac(collection, image_id)}"

    def after(self, collection: str, token: str | None) -> str:
        """The image id the page of ``token`` starts after ("" for the first page); InvalidParameter if forged."""
        if not token:
            return ""
        found = _TOKEN.fullmatch(token)
        image_id = ""
        if found is not None:
            try:
                image_id = base64.urlsafe_b64decode(found[1] + "=" * (-len(found[1]) % 4)).decode("ascii")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                image_id = ""
        if not _ULID.fullmatch(image_id) or not hmac.compare_digest(found[2], self._mac(collection, image_id)):
            raise InvalidParameter("page_token is not a page token this server gave for this collection")
        return image_id


_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{22})")


def page_of_images(store, collection: str, page_size: int, token: str | None,
                   tokens: PageTokens) -> tuple[list, str | None]:  # fmt: skip
    """One page of a collection's images in the order they were put, and the token of the next page (or None)."""
    after = tokens.after(collection, token)
    items = list(islice(store.images(collection, page_size=page_size + 1, after=after), page_size + 1))
    if len(items) > page_size:
        return items[:page_size], tokens.make(collection, items[page_size - 1].id)
    return items, None


def store_uploads(store, collection: str, files: list[Part], label: str | None = None) -> list[dict]:
    """Validate and store each uploaded file as ``put`` does (with ``label``, as ``put --label``); one result
    per file, good ones stored anyway."""
    results = []
    metadata = {"label": label} if label is not None else None
    for part in files:
        name = upload_name(part.filename or "")
        try:
            image = store.put(bytes(part.data), collection=collection, name=name, metadata=metadata)
        except InvalidImage as exc:
            results.append({"file": name, "error": str(exc)})
        else:
            results.append({"file": name, "image": image.to_dict()})
        part.data = bytearray()  # let the plaintext go as soon as it is sealed
    return results


def encode(store, image_id: str, *, method: str, k: int | None, size: int, color: str):
    """Encode a stored image on demand (as ``imgvault encode``), within this server's size limit."""
    from imgvault.methods.encoding import encode_image
    from imgvault.methods.registry import check_installed_method

    check_installed_method(method)  # never module:Class from a request: that would import what it names
    if not 8 <= size <= MAX_ENCODE_SIZE:
        raise InvalidParameter(f"size must be from 8 to {MAX_ENCODE_SIZE} on this server, not {size}")
    store.info(image_id)  # an unknown image is a 404 before any work
    return encode_image(store, image_id, method=method, k=k, size=size, color=color).info


def collection_runs(store, home: Path, collection: str, mlflow_ui: str | None) -> list[dict]:
    """The latest finished run of each method on ``collection`` (as ``imgvault compare``), with MLflow UI links."""
    from imgvault.tracker.reports.compare import compare
    from imgvault.tracker.tracking import open_client

    if collection not in {c.name for c in store.collections()}:
        raise CollectionNotFound(f'collection "{collection}" not found')
    try:
        rows = compare(home, [collection])
    except NotFound:
        return []
    client = open_client(home)
    for row in rows:
        experiment_id = client.get_run(row["run_id"]).info.experiment_id
        row["experiment_id"] = experiment_id
        row["mlflow_url"] = f"{mlflow_ui}/#/experiments/{experiment_id}/runs/{row['run_id']}" if mlflow_ui else None
    return rows


GRID_IMAGES = 200  # images offered in the compare page's picker


def image_across_methods(store, collection: str, image_id: str | None) -> tuple[list, object, list]:
    """The compare page's grid: the collection's first images (for the picker), the image shown (``image_id``,
    else the first one with encoded images), and its latest encoded image of each method and setting, each
    with a ``label`` (method, knob, size and colour)."""
    try:
        images = list(islice(store.images(collection), GRID_IMAGES))
    except CollectionNotFound:
        return [], None, []
    if not images:
        return [], None, []
    if image_id is not None:
        shown = store.info(image_id)
        if shown.collection != collection:
            raise ImageNotFound(f'image {image_id} not found in collection "{collection}"')
        if all(image.id != shown.id for image in images):
            images.append(shown)
    else:
        encoded_ids = {e.image_id for e in store.encoded_images(collection)}
        shown = next((image for image in images if image.id in encoded_ids), images[0])
    latest = {}
    for info in store.encoded_images(image_id=shown.id):  # oldest first: the last of each setting wins
        codec = info.params.get("codec", {})
        knobs = "".join(f" {n}={codec[n]}" for n in ("k", "block_size", "iterations") if n in codec)
        label = f"{info.method}{knobs} · {info.params.get('size')} {info.params.get('color')}"
        latest[label] = info
    encodings = [EncodedRow(label, info.id, info.metrics) for label, info in sorted(latest.items())]
    return images, shown, encodings


@dataclass(frozen=True)
class EncodedRow:
    """An encoded image of the compare page's grid, with the label of its setting."""

    label: str
    id: str
    metrics: dict
