"""Encoding a stored image and decoding a stored encoding: the library calls behind encode / decode."""

import io
import time
from dataclasses import dataclass

import numpy as np

from .metrics import payload_cost, quality
from .preprocess import check_color, check_size, load_pixels, to_uint8
from .registry import make_codec, method_classes


@dataclass(frozen=True)
class Encoding:
    """The stored encoding, with the pixels it was measured on."""

    info: object  # imgvault.store.EncodedInfo
    original: np.ndarray  # uint8, after preprocessing
    reconstruction: np.ndarray  # uint8


def encode_image(store, image_id: str, *, method: str, k: int | None = None, size: int = 100,
                 color: str = "gray", random_state: int = 0) -> Encoding:  # fmt: skip
    """Encode stored image ``image_id`` with a model fitted on it alone; store both, sealed; measure it.

    The metrics are those of the stored model and payload (the reconstruction is decoded from the bytes
    that are stored), so decoding later gives exactly what was measured.
    """
    size, color = check_size(size), check_color(color)
    codec = make_codec(method, k=k, fit="image", random_state=random_state)
    pixels = load_pixels(store.get(image_id), size=size, color=color)[None]
    started = time.perf_counter()
    codec.fit(pixels)
    fitted = time.perf_counter()
    payload = codec.encoded_to_bytes(codec.encode(pixels)[0])
    encoded = time.perf_counter()
    reconstruction = to_uint8(codec.decode(codec.encoded_from_bytes(payload)[None])[0])
    decoded = time.perf_counter()
    model = codec.model_to_bytes()
    original = to_uint8(pixels[0])
    metrics = {
        **quality(original, reconstruction),
        **payload_cost(len(payload), len(model), original.shape),
        "fit_seconds": fitted - started,
        "encode_seconds": encoded - fitted,
        "decode_seconds": decoded - encoded,
    }
    params = {"size": size, "color": color, "fit": "image", "codec": codec.get_params()}
    info = store.put_encoding(image_id, method=method, params=params, encoded=payload, metrics=_jsonable(metrics),
                              model=model)  # fmt: skip
    return Encoding(info=info, original=original, reconstruction=reconstruction)


def decode_image(store, encoded_id: str) -> np.ndarray:
    """The reconstruction (uint8) of stored encoded image ``encoded_id``, from its stored model."""
    info, payload = store.get_encoded(encoded_id)
    method, params, model = store.get_model(info.model_id)
    codec = method_classes()[method].from_model_bytes(params["codec"], model)
    return to_uint8(codec.decode(codec.encoded_from_bytes(payload)[None])[0])


def to_png(pixels: np.ndarray) -> bytes:
    """8-bit pixels as PNG bytes (lossless, so the exact pixels for AES)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _jsonable(metrics: dict) -> dict:
    # JSON has no infinity: a lossless reconstruction's PSNR is stored as null.
    return {
        key: (None if isinstance(value, float) and not np.isfinite(value) else value) for key, value in metrics.items()
    }
