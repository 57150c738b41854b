"""Thumbnails that one user cannot make the server pay for without bound.

A stored image of a few hundred kilobytes can decode to gigabytes (a 9400x9400 PNG is 88 megapixels). So a
thumbnail is:

- decoded at a reduced scale where the format allows it (JPEG's DCT scaling, ``Image.draft``);
- refused above :data:`MAX_PIXELS` pixels as decoded: a placeholder of the requested size stands in for it
  (the header ``X-Imgvault-Preview: too-large`` says so), never a full decode;
- made at most :data:`CONCURRENT` at a time in the whole server, whatever the number of requests;
- kept sealed in memory (AES-256-GCM with the store's keyset, bound to the image and the size), at most
  :data:`CACHE_BYTES` of them, so that a page of large photos is not decoded again on every view. The cache
  is checked against the store on every request: a removed image is a 404, as before.
"""

import io
import threading
import warnings
from collections import OrderedDict

import numpy as np
from PIL import Image

from imgvault.basics.errors import IntegrityError

from .media import png_bytes

MAX_PIXELS = 36_000_000  # decoded pixels a thumbnail may cost: a 6000x6000 image, 36 MB in gray, 108 MB in RGB
CONCURRENT = 2  # thumbnails decoded at once in one server
CACHE_BYTES = 64 * 1024 * 1024  # sealed thumbnails kept in memory
KIND = "thumbnail"


class Thumbnails:
    """The thumbnails of one store's images (see the module's docstring)."""

    def __init__(self, store, *, max_pixels: int = MAX_PIXELS, concurrent: int = CONCURRENT,
                 cache_bytes: int = CACHE_BYTES):  # fmt: skip
        self.store = store
        self.max_pixels = max_pixels
        self._slots = threading.BoundedSemaphore(concurrent)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes, self._cache_limit = 0, cache_bytes

    def get(self, image_id: str, size: int) -> tuple[bytes, bool]:
        """``(png, complete)``: the thumbnail of ``image_id`` within ``size`` x ``size``; ``complete`` is False
        for the placeholder of an image too large to decode for a preview."""
        self.store.info(image_id)  # a removed image is not served from the cache; an unknown one is a 404
        key = f"{image_id}:{size}"
        sealer = self.store.sealer
        with self._lock:
            blob = self._cache.get(key)
            if blob is not None:
                self._cache.move_to_end(key)
        if blob is not None:
            try:
                plain = sealer.open(KIND, key, blob)
                return plain[1:], plain[:1] == b"1"
            except IntegrityError:  # sealed under a key retired since: made again
                pass
        with self._slots:
            png, complete = thumbnail(self.store.get(image_id), size, self.max_pixels)
        self._keep(key, sealer.seal(KIND, key, (b"1" if complete else b"0") + png))
        return png, complete

    def _keep(self, key: str, blob: bytes) -> None:
        with self._lock:
            old = self._cache.pop(key, None)
            self._cache_bytes -= len(old) if old is not None else 0
            self._cache[key] = blob
            self._cache_bytes += len(blob)
            while self._cache_bytes > self._cache_limit and self._cache:
                _, dropped = self._cache.popitem(last=False)
                self._cache_bytes -= len(dropped)


def thumbnail(data: bytes, size: int, max_pixels: int = MAX_PIXELS) -> tuple[bytes, bool]:
    """``(png, complete)``: the image (first frame, EXIF orientation applied) fitted into ``size`` x ``size``,
    or a gray placeholder of that size (``complete`` False) when decoding it would take more than
    ``max_pixels`` pixels even at the smallest scale its format decodes at."""
    with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as image:
        warnings.simplefilter("ignore")
        image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster and smaller
        width, height = image.size
        if width * height > max_pixels:
            return png_bytes(Image.new("L", (size, size), 200)), False
        turn = _TRANSPOSE.get(image.getexif().get(ORIENTATION))
        image.load()
        small = _eight_bits(image)
        small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return png_bytes(small if turn is None else small.transpose(turn)), True


ORIENTATION = 0x0112  # the EXIF tag; its values, as ImageOps.exif_transpose reads them
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # fmt: skip


def _eight_bits(image: Image.Image) -> Image.Image:
    """``image`` in a mode a PNG thumbnail shows as the eye expects: L, LA, RGB or RGBA."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        wide = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or wide.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(np.rint(wide / top * 255), 0, 255).astype(np.uint8), "L")
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        return image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    return image
