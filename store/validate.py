"""Checking that bytes are an image the store accepts, by decoding all of it with Pillow.

Imports only Pillow, so that worker processes that validate files start fast.
"""

import io
import json
import os
import signal
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from imgvault.basics.errors import InvalidImage, InvalidMetadata

from .names import check_label

SUPPORTED_FORMATS = ("BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP")
# Pillow's own decompression-bomb threshold (about 89 megapixels): 1/4 GiB of 24-bit pixels.
MAX_PIXELS = 89_478_485
# One image is read, sealed and written as one value, so it must fit in memory several times over.
MAX_FILE_BYTES = 256 * 1024 * 1024
# A multi-frame image (animated GIF, WEBP or PNG; multi-page TIFF) is decoded frame by frame: each frame is
# held to MAX_PIXELS, there are at most MAX_FRAMES of them, and all of them together decode at most
# MAX_TOTAL_PIXELS (twice one image's limit), all checked from the headers before a frame's pixels are decoded.
MAX_FRAMES = 1000
MAX_TOTAL_PIXELS = 2 * MAX_PIXELS
# User metadata is sealed with each image; as JSON it must not be larger than this.
MAX_METADATA_BYTES = 64 * 1024
# CPU seconds one file's validation may take: a progressive JPEG of tens of thousands of scans costs scans x
# pixels to decode (87 s for 3 MB), within every pixel limit above. A 100-megapixel photo takes about 1 s.
DECODE_CPU_SECONDS = 10.0
# Bytes of a progressive JPEG handed to libjpeg per call (Pillow's default is 64 KiB): a call's work, all of
# it spent before the budget's signal can be handled, is then a 256th of what it would be (a few scans of a
# dozen bytes each). A normal progressive photo decodes about 10 % slower so.
PROGRESSIVE_BLOCK = 256


def decode_cpu_seconds() -> float:
    """The CPU budget of one file's validation: ``IMGVAULT_DECODE_CPU_SECONDS``, else :data:`DECODE_CPU_SECONDS`."""
    value = os.environ.get("IMGVAULT_DECODE_CPU_SECONDS")
    if not value:
        return DECODE_CPU_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise InvalidImage(f"IMGVAULT_DECODE_CPU_SECONDS must be a positive number of seconds, not {value!r}")
    return seconds


class _OverBudget(BaseException):
    """Raised into the decoding by SIGPROF (a BaseException, so that no ``except Exception`` swallows it)."""


# Per process (a fork makes its own): whether SIGPROF's handler is ours, whether the timer runs for a file, and
# the in-memory file that C libraries' messages go to meanwhile.
_guard = {"pid": None, "armed": False, "messages": None}
MESSAGE_BYTES = 2048  # of what decoders write to standard error about one file, kept for its error message


def _over_budget(_signum, _frame) -> None:
    if _guard["armed"]:
        _guard["armed"] = False
        raise _OverBudget


def _prepare_guard() -> int | None:
    """Once per process: SIGPROF's handler, and the in-memory file for messages (None without memfd_create)."""
    if _guard["pid"] != os.getpid():
        signal.signal(signal.SIGPROF, _over_budget)
        memfd = getattr(os, "memfd_create", None)
        messages = memfd("imgvault-decoder-messages", os.MFD_CLOEXEC) if memfd is not None else None
        _guard.update(pid=os.getpid(), armed=False, messages=messages)
    return _guard["messages"]


def _said(messages: int) -> list[str]:
    """What C libraries wrote to the messages file since it was last emptied, emptying it."""
    written = os.lseek(messages, 0, os.SEEK_CUR)
    if not written:
        return []
    os.lseek(messages, 0, os.SEEK_SET)
    text = os.read(messages, min(written, MESSAGE_BYTES)).decode("utf-8", "replace")
    os.ftruncate(messages, 0)
    os.lseek(messages, 0, os.SEEK_SET)
    return [line.strip().rstrip(".") for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class ImageFacts:
    """What the store records in plaintext about an image."""

    format: str
    width: int
    height: int
    mode: str
    bytes: int


def inspect_image(
    data: bytes,
    label: str,
    *,
    max_pixels: int = MAX_PIXELS,
    max_frames: int = MAX_FRAMES,
    max_total_pixels: int = MAX_TOTAL_PIXELS,
) -> ImageFacts:
    """Decode ``data`` completely (every frame) and return its facts, or raise :class:`InvalidImage`.

    ``label`` names the image in error messages (usually its path). Every frame's size is checked
    against the limits before its pixels are decoded. Whatever Pillow raises on a hostile file is an
    :class:`InvalidImage`, and its warnings are not printed. Decoding may take at most
    :func:`decode_cpu_seconds` of CPU: in this process's main thread that is enforced with a CPU timer; from any
    other thread (a server's), the file is decoded in a worker process that enforces it.
    """
    budget = decode_cpu_seconds()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return _inspect_in_a_worker(data, label, max_pixels, max_frames, max_total_pixels)
    # The CPU timer (ITIMER_PROF counts this process's CPU time) raises _OverBudget into the decoding through
    # SIGPROF, handled between two of the decoder's calls (Pillow decodes a file in blocks of 64 KiB), so the
    # overrun is bounded by one block's work. Meanwhile what libtiff and libjpeg write to file descriptor 2
    # goes to an in-memory file: this file's error message, never loose lines on the terminal.
    messages = _prepare_guard()
    saved = None
    if messages is not None:
        saved = os.dup(2)
        os.dup2(messages, 2)
    _guard["armed"] = True
    signal.setitimer(signal.ITIMER_PROF, budget)
    try:
        return _inspect(data, label, max_pixels, max_frames, max_total_pixels)
    except InvalidImage as exc:
        said = _said(messages) if messages is not None else []
        if said:
            raise InvalidImage(f"{exc}: {'; '.join(said[:3])}") from None
        raise
    except _OverBudget:
        raise InvalidImage(
            f"{label}: took more than {budget:g} s of CPU to decode, the limit for one file (a decompression bomb?"
            " IMGVAULT_DECODE_CPU_SECONDS sets it)"
        ) from None
    finally:
        _guard["armed"] = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
            _said(messages)  # dropped: the file was good, or its error holds them already


def _inspect_in_a_worker(data: bytes, label: str, *limits) -> ImageFacts:
    from imgvault.basics.errors import WorkerFailed

    from .workers import ordered_map

    try:
        [[(facts, error)]] = list(ordered_map(_inspect_chunk, [[(data, label, limits)]], 1))
    except WorkerFailed as exc:
        raise InvalidImage(f"{label}: the file could not be decoded ({exc})") from None
    if error is not None:
        raise InvalidImage(error)
    return ImageFacts(*facts)


def _inspect_chunk(chunk: list) -> list:
    answers = []
    for data, label, limits in chunk:
        try:
            facts = inspect_image(data, label, max_pixels=limits[0], max_frames=limits[1], max_total_pixels=limits[2])
        except InvalidImage as exc:
            answers.append((None, str(exc)))
        else:
            answers.append(((facts.format, facts.width, facts.height, facts.mode, facts.bytes), None))
    return answers


def _inspect(data: bytes, label: str, max_pixels: int, max_frames: int, max_total_pixels: int) -> ImageFacts:
    if not data:
        raise InvalidImage(f"{label}: empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidImage(f"{label}: file is {len(data):,} bytes, more than the limit of {MAX_FILE_BYTES:,}")
    # Pillow reads these globals; a truncated image must fail, never be padded with grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # Pillow warns about what it skips or repairs (and between 1x and 2x its pixel limit); the
            # file is judged by whether it decodes within our limits, and a warning printed beside an
            # "Error:" line only confuses.
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in SUPPORTED_FORMATS:
                    raise InvalidImage(
                        f"{label}: unsupported image format {image.format} (supported: {', '.join(SUPPORTED_FORMATS)})"
                    )
                width, height = image.size
                facts = ImageFacts(image.format, width, height, image.mode, len(data))
                _decode_every_frame(image, label, max_pixels, max_frames, max_total_pixels)
                return facts
    except InvalidImage:
        raise
    except UnidentifiedImageError:
        raise InvalidImage(f"{label}: not an image file (Pillow cannot identify it)") from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"{label}: image is too large to decode safely ({exc})") from None
    except Exception as exc:
        # Pillow's plugins raise whatever their parsing hits on a hostile file (OSError, SyntaxError,
        # TypeError from a TIFF page without dimensions, struct.error, MemoryError...): all of it is
        # this file's fault, never a reason to stop the caller.
        reason = str(exc) or type(exc).__name__
        raise InvalidImage(f"{label}: truncated or corrupt image ({reason})") from None


def _decode_every_frame(image, label: str, max_pixels: int, max_frames: int, max_total_pixels: int) -> None:
    # Frames are found by seeking one at a time rather than with n_frames, which for a GIF walks the
    # whole file first, and a header's frame count can lie. Seeking reads a frame's header only.
    unit = "page" if image.format == "TIFF" else "frame"
    total = 0
    for index in range(max_frames + 1):
        if index:
            try:
                image.seek(index)
            except EOFError:
                return
            if index == max_frames:
                raise InvalidImage(f"{label}: more than {max_frames:,} {unit}s")
        width, height = image.size
        pixels = width * height
        if pixels > max_pixels:
            raise InvalidImage(_bomb_message(label, width, height, max_pixels, f"{unit} {index + 1}" if index else ""))
        total += pixels
        if total > max_total_pixels:
            raise InvalidImage(
                f"{label}: {unit} {index + 1} would bring the pixels decoded to {total:,}, more than the limit of"
                f" {max_total_pixels:,} for all {unit}s (decompression bomb protection)"
            )
        if image.format == "JPEG" and image.info.get("progressive"):
            # Each decoder call gets this much of the file: its work is what the CPU budget can overrun by (the
            # timer's signal is handled between calls), and a progressive JPEG's scans cost a pass over the
            # whole image each, however few bytes they take.
            image.decodermaxblock = PROGRESSIVE_BLOCK
        image.load()


def _bomb_message(label: str, width: int, height: int, max_pixels: int, which: str = "") -> str:
    return (
        f"{label}: {which or 'image'} is {width}x{height} = {width * height:,} pixels, more than the limit of"
        f" {max_pixels:,} (decompression bomb protection)"
    )


def check_metadata(metadata: dict | None) -> bytes | None:
    """``metadata`` as the JSON the store seals, or ``None`` for none; :class:`InvalidMetadata` if too large,
    :class:`~imgvault.basics.errors.InvalidParameter` if its ``"label"`` is not a label (see
    :func:`.names.check_label`)."""
    if not metadata:
        return None
    if "label" in metadata:
        check_label(metadata["label"])
    try:
        encoded = json.dumps(metadata).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidMetadata(f"metadata cannot be stored as JSON ({exc})") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidMetadata(
            f"metadata is {len(encoded):,} bytes as JSON, more than the limit of {MAX_METADATA_BYTES:,}"
        )
    return encoded


def read_image_file(path: str | Path, label: str | None = None) -> tuple[bytes, ImageFacts]:
    """Read and inspect the file at ``path``; every failure is an :class:`InvalidImage` naming it."""
    label = label or str(path)
    return (data := read_regular_file(path, label)), inspect_image(data, label)


def read_regular_file(path: str | Path, label: str | None = None) -> bytes:
    """The bytes of the regular file at ``path`` (a symlink to one is fine), or :class:`InvalidImage`.

    A FIFO, socket or device is refused from its ``stat``, without being opened: opening a FIFO
    blocks until a writer comes, and opening a device can act on it. The file is opened non-blocking
    and checked again, in case it was swapped for one of those in between.
    """
    label = label or str(path)
    try:
        _check_regular(os.stat(path).st_mode, label)
        # The descriptor is read directly (no file object): a put reads thousands of small files.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        try:
            found = os.fstat(fd)
            _check_regular(found.st_mode, label)
            if found.st_size > MAX_FILE_BYTES:
                raise InvalidImage(
                    f"{label}: file is {found.st_size:,} bytes, more than the limit of {MAX_FILE_BYTES:,}"
                )
            # Asking for the size fstat gave (plus one, to see a file that grew) rather than for the limit:
            # a read of n bytes allocates n bytes first, and 256 MiB per small file is most of a put's cost.
            # A read may return less than asked (a file on a network file system): read on to the end.
            parts = [os.read(fd, found.st_size + 1)]
            read = len(parts[0])
            while parts[-1] and read <= MAX_FILE_BYTES:
                parts.append(os.read(fd, min(MAX_FILE_BYTES + 1 - read, 1 << 20)))
                read += len(parts[-1])
            return parts[0] if len(parts) == 2 and not parts[1] else b"".join(parts)
        finally:
            os.close(fd)
    except ValueError:  # os.stat refuses a name that holds a NUL byte, which no file can have
        raise InvalidImage(f"{label}: not a valid file name (it holds a NUL byte)") from None
    except FileNotFoundError:
        raise InvalidImage(f"{label}: no such file") from None
    except PermissionError:
        raise InvalidImage(f"{label}: permission denied") from None
    except OSError as exc:
        raise InvalidImage(f"{label}: cannot read ({exc.strerror or exc})") from None


_NOT_REGULAR = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a FIFO, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
)


def _check_regular(mode: int, label: str) -> None:
    if stat.S_ISREG(mode):
        return
    reason = next((text for test, text in _NOT_REGULAR if test(mode)), "is not a regular file")
    raise InvalidImage(f"{label}: {reason}")
