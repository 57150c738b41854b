"""Hostile image files, built byte by byte: what an attacker offers to ``put``."""

import io
import struct

import numpy as np
from PIL import Image


def tiff_pages(*sizes: tuple[int, int], **options) -> bytes:
    """A little-endian TIFF with one small gray page per size, written by Pillow."""
    pages = [Image.new("L", size, 128) for size in sizes]
    buffer = io.BytesIO()
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:], **options)
    return buffer.getvalue()


def _ifd_offsets(data: bytes) -> list[int]:
    assert data[:4] == b"II*\x00"
    offsets, (offset,) = [], struct.unpack_from("<I", data, 4)
    while offset:
        offsets.append(offset)
        (count,) = struct.unpack_from("<H", data, offset)
        (offset,) = struct.unpack_from("<I", data, offset + 2 + 12 * count)
    return offsets


def tiff_with_empty_second_ifd() -> bytes:
    """Two pages, the second IFD with no entries at all (Pillow raises TypeError on it)."""
    data = bytearray(tiff_pages((16, 16), (16, 16)))
    second = _ifd_offsets(bytes(data))[1]
    struct.pack_into("<HI", data, second, 0, 0)
    return bytes(data)


def tiff_with_huge_second_page(width: int, height: int) -> bytes:
    """A small first page and a second page whose header claims ``width`` x ``height`` pixels."""
    data = bytearray(tiff_pages((16, 16), (16, 16)))
    second = _ifd_offsets(bytes(data))[1]
    (count,) = struct.unpack_from("<H", data, second)
    for entry in range(second + 2, second + 2 + 12 * count, 12):
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            if kind == 3:
                struct.pack_into("<H", data, entry + 8, value)
            else:
                struct.pack_into("<I", data, entry + 8, value)
    return bytes(data)


def tiff_with_a_tag_larger_than_the_file() -> bytes:
    """A valid page whose first tag claims more data than the file holds (Pillow warns and skips it)."""
    data = bytearray(tiff_pages((16, 16), description="a description longer than four bytes"))
    first = _ifd_offsets(bytes(data))[0]
    (count,) = struct.unpack_from("<H", data, first)
    for entry in range(first + 2, first + 2 + 12 * count, 12):
        (tag,) = struct.unpack_from("<H", data, entry)
        if tag == 270:  # ImageDescription: safe to lose
            struct.pack_into("<I", data, entry + 4, 10_000_000)
            return bytes(data)
    raise AssertionError("Pillow wrote no ImageDescription tag")


def gif_bomb(width: int, height: int, frames: int) -> bytes:
    """A GIF whose logical screen is ``width`` x ``height`` with ``frames`` frames of one pixel each.

    Tiny on disk, but every frame is decoded onto the whole screen.
    """
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    for index in range(frames):
        out += b"\x21\xf9\x04\x04\x00\x00\x00\x00"  # graphic control: keep the frame, no delay
        out += b"\x2c" + struct.pack("<HHHHB", index % width, 0, 1, 1, 0)
        # LZW, minimum code size 2: clear (4), pixel 0 or 1, end (5), three bits each.
        out += b"\x02\x02" + struct.pack("<H", 4 | (index % 2) << 3 | 5 << 6) + b"\x00"
    return bytes(out + b"\x3b")


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment of a JPEG; a scan's segment runs to the end of its entropy-coded data."""
    found, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        if marker == 0xD9:
            found.append((marker, at, at + 2))
            return found
        end = at + 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker == 0xDA:
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:  # stuffed byte or restart marker
                    end += 2
                    continue
                break
        found.append((marker, at, end))
        at = end
    return found


def jpeg_scan_bomb(side: int, repeats: int, *, flat: bool = False) -> bytes:
    """A valid progressive JPEG whose second scan (``flat``: a blank image's last, a few hundred bytes) is
    repeated ``repeats`` times: each repeat costs a pass over every block of the image to decode (scans x
    pixels), within every pixel limit."""
    pixels = np.full((side, side), 128, np.uint8) if flat else np.add.outer(np.arange(side), np.arange(side))
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", progressive=True, quality=50)
    data = buffer.getvalue()
    segments = _jpeg_segments(data)
    _marker, start, end = [s for s in segments if s[0] == 0xDA][-1 if flat else 1]
    last = segments[-1][1]
    return data[:last] + data[start:end] * repeats + data[last:]


def tiff_with_bogus_jpeg_tables() -> bytes:
    """A JPEG-compressed TIFF whose quantisation table has an impossible index: libtiff and libjpeg write their
    complaints straight to the process's standard error (file descriptor 2), not through Python."""
    pixels = (np.arange(64 * 64 * 3) % 251).astype(np.uint8).reshape(64, 64, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "TIFF", compression="jpeg")
    data = bytearray(buffer.getvalue())
    data[data.index(b"\xff\xdb") + 4] = 0x07  # DQT: table index 7 (0 to 3 exist)
    return bytes(data)
