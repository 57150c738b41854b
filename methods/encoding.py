"""Encoding a stored image and decoding a stored encoding: the library calls behind encode / decode."""

import io
import time
from dataclasses import dataclass, field

import numpy as np

from .metrics import payload_cost, quality
from .plugins import check_outputs
from .preprocess import check_color, check_size, load_pixels, to_uint8
from .registry import make_codec, method_class


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
    pixels = load_pixels(store.get(image_id), size=size, color=color)
    started = time.perf_counter()
    codec.fit(pixels[None])
    measured = measure(codec, pixels, fit_seconds=time.perf_counter() - started)
    params = {"size": size, "color": color, "fit": "image", "codec": codec.get_params()}
    info = store.put_encoded_image(image_id, method=method, params=params, encoded=measured.payload,
                              metrics=jsonable(measured.metrics), model=measured.model)  # fmt: skip
    return Encoding(info=info, original=measured.original, reconstruction=measured.reconstruction)


@dataclass(frozen=True)
class Measured:
    """One image through a fitted codec: what to store and how good it is."""

    payload: bytes
    model: bytes | None
    encoded: np.ndarray
    original: np.ndarray  # uint8
    reconstruction: np.ndarray  # uint8
    metrics: dict
    not_applicable: dict = field(default_factory=dict)  # security measure -> why it does not apply
    criteria: dict = field(default_factory=dict)  # what a random payload of this size scores


def measure(codec, pixels: np.ndarray, *, fit_seconds: float | None = None, images_per_model: int = 1,
            model: bytes | None = None, method: str | None = None) -> Measured:  # fmt: skip
    """Encode and decode one image (floats in [0, 1]) with a fitted codec, and measure the result.

    The reconstruction is decoded from the stored form of the payload, so that a later decode of the
    stored bytes gives exactly what was measured. With ``method``, the security measures of
    :func:`imgvault.methods.security.evaluate` are added to the metrics (with the measures that do not
    apply and the criteria at the payload's size). ``model`` is the stored model
    when it is shared by ``images_per_model`` images; otherwise the codec's own model is serialised.
    """
    started = time.perf_counter()
    stack = codec.encode(pixels[None])
    if len(stack) != 1:
        check_outputs(codec, pixels, stack, stack, method)
    encoded = stack[0]
    payload = codec.encoded_to_bytes(encoded)
    encoded_at = time.perf_counter()
    decoded = codec.decode(codec.encoded_from_bytes(payload)[None])
    decoded_at = time.perf_counter()
    check_outputs(codec, pixels, encoded[None], decoded, method)
    reconstruction = to_uint8(decoded[0])
    own_model = codec.model_to_bytes() if model is None else None
    original = to_uint8(pixels)
    metrics = {
        **quality(original, reconstruction),
        **payload_cost(len(payload), len(model or own_model), original.shape, images_per_model),
        "encode_seconds": encoded_at - started,
        "decode_seconds": decoded_at - encoded_at,
    }
    if fit_seconds is not None:
        metrics["fit_seconds"] = fit_seconds
    if method is None:
        return Measured(payload, own_model, encoded, original, reconstruction, metrics)
    from .security import evaluate

    security = evaluate(codec, pixels, encoded, original)
    metrics.update(security.metrics)
    return Measured(payload, own_model, encoded, original, reconstruction, metrics, security.not_applicable,
                    security.criteria)  # fmt: skip


def decode_image(store, encoded_id: str) -> np.ndarray:
    """The reconstruction (uint8) of stored encoded image ``encoded_id``, from its stored model."""
    info, payload = store.get_encoded_image(encoded_id)
    method, params, model = store.get_codec_model(info.model_id)
    codec = method_class(method).from_model_bytes(params["codec"], model)
    return to_uint8(codec.decode(codec.encoded_from_bytes(payload)[None])[0])


def to_png(pixels: np.ndarray) -> bytes:
    """8-bit pixels as PNG bytes (lossless, so the exact pixels for AES)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def jsonable(metrics: dict) -> dict:
    # JSON has no infinity: a lossless reconstruction's PSNR is stored as null.
    return {
        key: (None if isinstance(value, float) and not np.isfinite(value) else value) for key, value in metrics.items()
    }
