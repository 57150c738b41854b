"""A logged image's two files, as MLflow's ``log_image`` writes them: the PNG and its compressed thumbnail.

A batch makes them where it draws the figure, in the worker processes: the files are a twentieth of the size
of the pixels to send back, and the process that logs the runs only has to seal and write them. Pillow
only (no MLflow here: workers import this).
"""

import io
from dataclasses import dataclass

import numpy as np

THUMBNAIL = 256  # MLflow's compressed copy of a logged image fits in a square of this size
# zlib's fastest level: a third of the default's time for ~15 % more bytes, for figures a person looks at.
PNG_LEVEL = 1


@dataclass(frozen=True)
class ImageFiles:
    """The PNG of an image and its thumbnail (WEBP, within THUMBNAIL x THUMBNAIL) as MLflow's UI shows it."""

    png: bytes
    thumbnail: bytes


def image_files(pixels) -> ImageFiles:
    """The files of ``pixels`` (uint8 gray or RGB, or a Pillow image).

    An RGB image whose three channels are equal (the figure of a gray image) is written as gray: the same
    pixels, a third of the work.
    """
    from PIL import Image

    if not isinstance(pixels, Image.Image):
        pixels = np.asarray(pixels)
        if pixels.ndim == 3 and (pixels[..., :1] == pixels[..., 1:3]).all():
            pixels = pixels[..., 0]
        pixels = Image.fromarray(pixels)
    width, height = pixels.size
    scale = THUMBNAIL / max(width, height)  # as MLflow's compress_image_size scales it
    thumbnail = pixels.resize((max(1, int(width * scale)), max(1, int(height * scale))))
    return ImageFiles(_encode(pixels, "PNG", compress_level=PNG_LEVEL), _encode(thumbnail, "WEBP"))


def _encode(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
