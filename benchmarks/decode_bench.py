"""What validating a file costs in CPU, against the per-file budget (IMGVAULT_DECODE_CPU_SECONDS, 10 s).

Ordinary photos at the store's largest size (9400x9400, 88 megapixels, just under the pixel limit), as JPEG
and PNG, each validated ``--rounds`` times: the median CPU seconds and their ratio to the budget. Then two
progressive JPEG scan bombs (one scan repeated ``--scans`` times over a 4096x4096 image; a blank 8192x8192
image's last scan of 274 bytes repeated 1,500 times), validated under the default budget: the CPU each took
before it was refused, and its ratio to the budget (about 1: the overrun is one decoder call's work).

    python benchmarks/decode_bench.py [--rounds 3] [--scans 8000] [--json]
"""

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import skimage.data
import skimage.transform
from PIL import Image
from store_bench import print_figures

from imgvault.basics.errors import InvalidImage
from imgvault.store.validate import decode_cpu_seconds, inspect_image

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from hostile import jpeg_scan_bomb

SIDE = 9400


def photo(side: int) -> np.ndarray:
    """scikit-image's astronaut scaled up to ``side`` x ``side``: a photo's content at that size."""
    scaled = skimage.transform.resize(skimage.data.astronaut(), (side, side), order=1, preserve_range=True)
    return scaled.astype(np.uint8)


def encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def cpu_seconds(function) -> float:
    started = time.process_time()
    with contextlib.suppress(InvalidImage):  # the bomb: refused once over the budget
        function()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scans", type=int, default=8000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    budget = decode_cpu_seconds()
    pixels = photo(SIDE)
    files = {"jpeg_88mp": encoded(pixels, "JPEG", quality=90), "png_88mp": encoded(pixels, "PNG", compress_level=6)}
    figures = {"budget_seconds": budget}
    for name, data in files.items():
        times = [cpu_seconds(lambda data=data, name=name: inspect_image(data, name)) for _ in range(args.rounds)]
        figures[f"{name}_cpu_seconds"] = round(statistics.median(times), 3)
        figures[f"{name}_ratio_to_budget"] = round(statistics.median(times) / budget, 3)
    bombs = {"bomb": jpeg_scan_bomb(4096, args.scans),
             # A blank 8192x8192 image's last scan, 274 bytes, 1,500 times: 411 KB that cost 160 s to decode.
             "tiny_scans_bomb": jpeg_scan_bomb(8192, 1500, flat=True)}  # fmt: skip
    for name, bomb in bombs.items():
        figures[f"{name}_bytes"] = len(bomb)
        spent = cpu_seconds(lambda bomb=bomb: inspect_image(bomb, "bomb.jpg"))
        figures[f"{name}_cpu_seconds_until_refused"] = round(spent, 3)
        figures[f"{name}_ratio_to_budget"] = round(spent / budget, 3)
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
