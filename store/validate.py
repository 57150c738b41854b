"""Checking that bytes are an image the store accepts, by decoding all of it with Pillow.

Imports only Pillow, so that worker processes that validate files start fast.
"""

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import InvalidImage

SUPPORTED_FORMATS = ("BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP")
# Pillow's own decompression-bomb threshold (about 89 megapixels): 1/4 GiB of 24-bit pixels.
MAX_PIXELS = 89_478_485
# One image is read, sealed and written as one value, so it must fit in memory several times over.
MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ImageFacts:
    """What the store records in plaintext about an image, and the digest of the bytes that were checked."""

    format: str
    width: int
    height: int
    mode: str
    bytes: int
    sha256: str


def inspect_image(data: bytes, label: str, *, max_pixels: int = MAX_PIXELS) -> ImageFacts:
    """Decode ``data`` completely (every frame) and return its facts, or raise :class:`InvalidImage`.

    ``label`` names the image in error messages (usually its path).
    """
    if not data:
        raise InvalidImage(f"{label}: empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImage(f"{label}: file is {len(data):,} bytes, more than the limit of {MAX_FILE_BYTES:,}")
    # Pillow reads these globals; a truncated image must fail, never be padded with grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit; the size check below refuses with the numbers.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in SUPPORTED_FORMATS:
                    raise InvalidImage(
                        f"{label}: unsupported image format {image.format} (supported: {', '.join(SUPPORTED_FORMATS)})"
                    )
                width, height = image.size
                if width * height > max_pixels:
                    raise InvalidImage(_bomb_message(label, width, height, max_pixels))
                facts = ImageFacts(image.format, width, height, image.mode, len(data), hashlib.sha256(data).hexdigest())
                for frame in range(getattr(image, "n_frames", 1)):
                    image.seek(frame)
                    image.load()
                return facts
    except InvalidImage:
        raise
    except UnidentifiedImageError:
        raise InvalidImage(f"{label}: not an image file (Pillow cannot identify it)") from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"{label}: image is too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, MemoryError) as exc:
        reason = str(exc) or type(exc).__name__
        raise InvalidImage(f"{label}: truncated or corrupt image ({reason})") from None


def _bomb_message(label: str, width: int, height: int, max_pixels: int) -> str:
    return (
        f"{label}: image is {width}x{height} = {width * height:,} pixels, more than the limit of"
        f" {max_pixels:,} (decompression bomb protection)"
    )


def read_image_file(path: Path, label: str | None = None) -> tuple[bytes, ImageFacts]:
    """Read and inspect the file at ``path``; every failure is an :class:`InvalidImage` naming it."""
    label = label or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidImage(f"{label}: file is {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidImage(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InvalidImage(f"{label}: is a directory") from None
    except PermissionError:
        raise InvalidImage(f"{label}: permission denied") from None
    except OSError as exc:
        raise InvalidImage(f"{label}: cannot read ({exc.strerror or exc})") from None
    return data, inspect_image(data, label)
