"""Encode and decode time of every method at 256x256 RGB, in ms and as ratios to a numpy copy and to AES.

Each method is fitted once on scikit-image's astronaut (256x256 RGB); encode and decode of that image are
timed ``--rounds`` times, interleaved across methods so that a busy machine slows them alike, and the median
is reported. ``fresh_ms`` is fit + encode + decode with a new key (the ciphers derive their permutations and
keystreams from the key on first use: what ``--fit image`` pays per image). The baselines are measured in the
same process: ``copy`` (a numpy copy of the image's 8-bit pixels) and ``aes`` (AES-256-GCM). Beside the
wall-clock times, ``_cpu_ms`` is the process's CPU time for encode + decode, which a machine busy with
other work skews much less.

    python benchmarks/cipher_bench.py [--rounds 21] [--json]
"""

import argparse
import statistics
import time

import numpy as np
import skimage.data
from store_bench import print_figures

from imgvault.methods import make_codec

METHODS = ("aes", "le", "etc", "pe", "logistic", "arnold", "pca", "kmeans")


def seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def cpu_seconds(function) -> float:
    started = time.process_time()
    function()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    X = skimage.data.astronaut()[::2, ::2][None] / 255.0
    pixels = np.rint(X * 255).astype(np.uint8)
    codecs = {method: make_codec(method).fit(X) for method in METHODS}
    encoded = {method: codec.encode(X) for method, codec in codecs.items()}
    kinds = ("encode", "decode", "cpu", "fresh")
    times: dict[str, list[float]] = {"copy": []} | {f"{m}_{w}": [] for m in METHODS for w in kinds}
    for _ in range(args.rounds):
        times["copy"].append(seconds(lambda: pixels.copy()))
        for method, codec in codecs.items():
            times[f"{method}_encode"].append(seconds(lambda c=codec: c.encode(X)))
            times[f"{method}_decode"].append(seconds(lambda c=codec, e=encoded[method]: c.decode(e)))
            times[f"{method}_cpu"].append(cpu_seconds(lambda c=codec, e=encoded[method]: c.decode(c.encode(X))))
            fresh = make_codec(method)
            times[f"{method}_fresh"].append(seconds(lambda c=fresh: c.decode(c.fit(X).encode(X))))
    median = {name: statistics.median(values) for name, values in times.items()}
    aes = median["aes_encode"] + median["aes_decode"]
    figures = {"image": "256x256 rgb", "rounds": args.rounds, "copy_ms": round(median["copy"] * 1000, 3)}
    for method in METHODS:
        both = median[f"{method}_encode"] + median[f"{method}_decode"]
        figures[f"{method}_encode_ms"] = round(median[f"{method}_encode"] * 1000, 2)
        figures[f"{method}_decode_ms"] = round(median[f"{method}_decode"] * 1000, 2)
        figures[f"{method}_cpu_ms"] = round(median[f"{method}_cpu"] * 1000, 2)
        figures[f"{method}_fresh_ms"] = round(median[f"{method}_fresh"] * 1000, 2)
        figures[f"{method}_vs_aes"] = round(both / aes, 2)
        figures[f"{method}_vs_copy"] = round(both / median["copy"], 1)
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
