"""Pictures made per request, in memory: the panels of an encoding (thumbnails: :mod:`.thumbnails`).

Nothing here is cached or written anywhere: each picture is decrypted, drawn, encoded as PNG and handed to
the response, and its plaintext goes when the request does.
"""

import io

import numpy as np
from PIL import Image

CONTENT_TYPES = {"BMP": "image/bmp", "GIF": "image/gif", "JPEG": "image/jpeg", "PNG": "image/png",
                 "TIFF": "image/tiff", "WEBP": "image/webp"}  # fmt: skip
THUMBNAIL_SIZES = (16, 1024)
PANELS = ("original", "encrypted", "reconstruction", "error")


def content_type(image_format: str) -> str:
    return CONTENT_TYPES.get(image_format, "application/octet-stream")


# The store accepts only these formats, so the first bytes tell them apart without reading the record again.
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))  # fmt: skip


def sniff_content_type(data: bytes) -> str:
    """The content type of a stored image's bytes, from their signature."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return CONTENT_TYPES["WEBP"]
    for signature, image_format in _SIGNATURES:
        if data.startswith(signature):
            return CONTENT_TYPES[image_format]
    return "application/octet-stream"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)  # fast: thumbnails are made on every request
    return buffer.getvalue()


def pixels_png(pixels: np.ndarray) -> bytes:
    """8-bit gray or RGB pixels as PNG (lossless: the exact pixels)."""
    return png_bytes(Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB"))


def encoding_panel(store, encoded_id: str, panel: str) -> np.ndarray:
    """One panel of encoded image ``encoded_id``, as the figures of a run show it (see methods.render).

    ``original`` is the stored image as the method saw it (resized, gray or RGB); ``encrypted`` the
    encoded payload drawn as pixels; ``reconstruction`` what its model decodes; ``error`` the absolute
    error, times 4.
    """
    from imgvault.methods.encoding import decode_image
    from imgvault.methods.preprocess import load_pixels, to_uint8
    from imgvault.methods.registry import method_class
    from imgvault.methods.render import render_encoded

    if panel not in PANELS:
        raise ValueError(f"no panel {panel!r}")
    if panel == "reconstruction":
        return decode_image(store, encoded_id)
    info, payload = store.get_encoded_image(encoded_id)
    original = to_uint8(load_pixels(store.get(info.image_id), size=info.params["size"], color=info.params["color"]))
    if panel == "original":
        return original
    if panel == "error":
        reconstruction = decode_image(store, encoded_id)
        return np.clip(np.abs(original.astype(np.int16) - reconstruction.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    method, params, model = store.get_codec_model(info.model_id)
    codec = method_class(method).from_model_bytes(params["codec"], model)
    return render_encoded(method, codec.encoded_from_bytes(payload), original.shape)
