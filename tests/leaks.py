"""Looking for plaintext where only ciphertext may be: images that open, stored file names, runs of pixels."""

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from imgvault.methods import load_pixels, to_uint8

RUN = 32  # bytes: a run this long of an image's pixels found in a file is a leak


def pixel_runs(store, collection: str, *, size: int, color: str) -> set[bytes]:
    """Every 32-byte run of the preprocessed 8-bit pixels of the images of ``collection``, except flat ones
    (a run of few distinct values, such as a black border, turns up in any database page)."""
    runs = set()
    for image in store.images(collection):
        flat = to_uint8(load_pixels(store.get(image.id), size=size, color=color)).tobytes()
        for start in range(len(flat) - RUN + 1):
            window = flat[start : start + RUN]
            if len(set(window)) >= 12:
                runs.add(window)
    return runs


def leaks(root: Path, names: Iterable[str], runs: set[bytes], *, skip: Iterable[str] = ()) -> list[str]:
    """What any file under ``root`` (but those named in ``skip``) gives away, one line a finding."""
    found = []
    names = [name.encode() for name in names]
    skip = set(skip)
    files = [path for path in sorted(root.rglob("*")) if path.is_file() and path.name not in skip]
    assert files, f"nothing under {root} to look at"
    for path in files:
        data = path.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
            found.append(f"{path}: opens as an image")
        except Exception:
            pass
        found += [f"{path}: holds the file name {name.decode()!r}" for name in names if name in data]
        if runs:
            for start in range(len(data) - RUN + 1):
                if data[start : start + RUN] in runs:
                    found.append(f"{path}: holds a run of an image's pixels at byte {start}")
                    break
    return found


def original_panel(figure_png: bytes, size: int) -> np.ndarray:
    """The "original" panel of a per-image figure (see ``imgvault.methods.render.figure``), at its own size."""
    from imgvault.methods.render import MIN_PANEL

    factor = max(1, -(-MIN_PANEL // size))
    top = 18  # the label row above the panels
    with Image.open(io.BytesIO(figure_png)) as shown:
        assert shown.format == "PNG"
        pixels = np.asarray(shown.convert("RGB"))
    return pixels[top : top + size * factor : factor, : size * factor : factor]
