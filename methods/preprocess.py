"""The study's preprocessing, generalised: image bytes -> a ``size x size`` array of floats in [0, 1]."""

import io

import numpy as np
from PIL import Image, ImageOps

from imgvault.basics.errors import InvalidParameter

COLORS = ("gray", "rgb")
MIN_SIZE = 11  # SSIM's 11x11 Gaussian window (Wang et al. 2004) needs at least this


def check_size(size: int) -> int:
    if not isinstance(size, int | np.integer) or isinstance(size, bool) or not MIN_SIZE <= size <= 4096:
        raise InvalidParameter(f"size must be a whole number from {MIN_SIZE} to 4096, not {size!r}")
    return int(size)


def check_color(color: str) -> str:
    if color not in COLORS:
        raise InvalidParameter(f"color must be one of {', '.join(COLORS)}, not {color!r}")
    return color


def load_pixels(data: bytes, *, size: int = 100, color: str = "gray") -> np.ndarray:
    """Decode image bytes into the array every method works on.

    Steps, in order:

    1. open with Pillow, first frame only, and apply the EXIF orientation;
    2. convert to grayscale ``L`` (``color="gray"``, the study's setting) or to ``RGB`` (``color="rgb"``).
       16-bit and 32-bit images are scaled to 8 bits first (Pillow would clip them); an alpha channel is
       dropped;
    3. resize to ``size x size`` with Lanczos resampling, ignoring the aspect ratio as the study did. An
       image that already has that size is not resampled;
    4. scale the 8-bit values to floats in [0, 1] (``value / 255``).

    Parameters
    ----------
    data : bytes
        An image file's bytes.
    size : int, default=100
        Side of the square output.
    color : {"gray", "rgb"}, default="gray"

    Returns
    -------
    ndarray of float64, shape (size, size) for gray or (size, size, 3) for rgb
        Exactly ``uint8 / 255``: :func:`to_uint8` recovers the 8-bit pixels without loss.
    """
    size, color = check_size(size), check_color(color)
    with Image.open(io.BytesIO(data)) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            wide = np.asarray(image, dtype=np.float64)
            top = 65535.0 if image.mode.startswith("I;16") or wide.max(initial=0) > 255 else 255.0
            image = Image.fromarray(np.clip(np.rint(wide / top * 255), 0, 255).astype(np.uint8), "L")
        image = image.convert("L" if color == "gray" else "RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.LANCZOS)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels / 255.0


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (a reconstruction) -> 8-bit pixels, rounded and clipped."""
    return np.clip(np.rint(np.asarray(pixels, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
