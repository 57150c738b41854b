"""The threat matrix's attacks: how long each takes on a 100-image collection (target: each under 60 s).

    python benchmarks/attack_bench.py --json

100 real 100x100 colour tiles (cut from the photos shipped with scikit-image and scikit-learn), resized as
``imgvault run --size`` does, one key for the collection (``--fit collection``), the attacks' own default
of 5 repeated splits, all in one process (BLAS limited to one thread per fit, as the runner does):

  inversion_seconds          the whole-image learning attack (known plaintext; 10 splits, its default) on
                             le, 32x32 RGB
  inversion_blocks_seconds   the per-block inversion on le (M = 4), 64x64 RGB
  inversion_pixels_seconds   the per-block inversion on pe (1x1 blocks, one map per pixel), 64x64 RGB
  jigsaw_16_blocks_seconds   the jigsaw solver on etc, 128x128 RGB, M = 32 (16 blocks per image)
  jigsaw_64_blocks_seconds   the jigsaw solver on etc, 128x128 RGB, M = 16 (64 blocks per image)
  permutation_seconds        the chosen-plaintext attack on arnold, 64x64 RGB

``--matrix`` measures what ``imgvault run --attack`` does instead (the target: the whole threat matrix of
five ciphers over 80 tiles in at most 60 s on two cores, i.e. at most 3x the plain computation of each
configuration): for each of :data:`MATRIX_CONFIGURATIONS`, 80 real tiles at 96x96 RGB, ``--fit collection``,
the plain computation (``compute_configuration``: fit, encode, decode, measure, wrong key) and then the
attacks on it (``attack()`` of ``tracker/runs/compute.py``: the learning attack and ``run_attacks``), each
timed in the same process; ``<method>_attack_over_plain`` is their ratio, ``matrix_attack_seconds`` the
total, and every attack's gain is printed beside it, so that a faster attack is visibly not a weaker one.
With ``--skip-inversion`` the attacks are those of ``run_attacks`` only (per-block inversion, jigsaw,
permutation), without the learning and recognition attacks.

Each figure comes with ``<name>_ratio``: its seconds over the baseline's, measured in the same process
(``baseline_seconds``: SSIM and PSNR of the 100 images at 64x64 RGB, the unit of scoring work every attack
repeats), so that a busy machine skews the ratios less than the seconds. With each figure, the attack's
outcome (SSIM gain, blocks in place, positions recovered), so that a faster attack is not a weaker one.
"""

import argparse
import functools
import itertools
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from store_bench import print_figures

IMAGES = 100
#: the five configurations of the ``--matrix`` figure: the ciphers the threat matrix attacks (le and etc at
#: 8x8 blocks, pe, arnold's cat map at 8 iterations) and collection-fitted PCA at k = 8 (the learnt codec the
#: learning attack inverts)
MATRIX_CONFIGURATIONS = (("le", 8), ("etc", 8), ("pe", None), ("arnold", 8), ("pca", 8))
MATRIX_IMAGES, MATRIX_SIZE = 80, 96


def collection(size: int) -> np.ndarray:
    from imgvault.methods import load_pixels
    from imgvault.tracker.demo import tiles

    return np.stack([load_pixels(data, size=size, color="rgb") for _, data in tiles(IMAGES)])


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def baseline(pixels: np.ndarray) -> float:
    from imgvault.methods import quality, to_uint8

    images = to_uint8(pixels)
    mean = np.rint(images.mean(axis=0)).astype(np.uint8)
    seconds, _ = timed(lambda: [quality(one, mean) for one in images])
    return seconds


def one_attack(name: str, method: str, pixels: np.ndarray, k=None) -> tuple[float, dict]:
    from threadpoolctl import threadpool_limits

    from imgvault.methods import to_uint8
    from imgvault.methods.attacks import shared_keys
    from imgvault.methods.attacks.blocks import block_inversion_attack
    from imgvault.methods.attacks.jigsaw import jigsaw_attack
    from imgvault.methods.attacks.matrix import run_attacks

    keys = shared_keys(method, pixels, k)
    originals = to_uint8(pixels)
    codec = keys(np.arange(len(pixels)))[0]

    def ciphertexts(train):
        from imgvault.methods.attacks import cipher_images

        return cipher_images(keys(train), pixels)

    with threadpool_limits(1):
        if name == "inversion_blocks":
            return timed(lambda: block_inversion_attack(originals, ciphertexts, codec.block_size, splits=5))
        if name == "jigsaw":
            return timed(lambda: jigsaw_attack(originals, ciphertexts, codec.block_size, splits=5))
        seconds, (metrics, _) = timed(lambda: run_attacks(pixels, keys, codec, "collection"))
        return seconds, {key.split("/")[-1]: value for key, value in metrics.items()}


def learning(pixels: np.ndarray) -> tuple[float, dict]:
    from imgvault.methods import to_uint8
    from imgvault.methods.attacks import shared_keys
    from imgvault.methods.attacks.inversion import learning_attack

    keys = shared_keys("le", pixels)

    def encodings(train):
        codec = keys(train)[0]
        encoded = codec.encode(pixels)
        return list(encoded), list(to_uint8(codec.decode(encoded)))

    seconds, result = timed(lambda: learning_attack(list(to_uint8(pixels)), encodings))
    return seconds, {"gain": result["attack_gain"]}


def _now(steps: list) -> None:
    steps.append(time.perf_counter())


def matrix(configurations=MATRIX_CONFIGURATIONS, images: int = MATRIX_IMAGES, size: int = MATRIX_SIZE,
           learning: bool = True) -> dict:  # fmt: skip
    """The ``--matrix`` figures: per configuration the plain and the attack seconds, their ratio and the
    attacks' gains (SSIM over the mean-image baseline), as ``imgvault run --attack --fit collection`` runs them.
    Without ``learning``: the threat matrix's other attacks only (``run_attacks``: no learning attack, no
    recognition)."""
    from imgvault.methods import load_pixels
    from imgvault.methods.attacks.matrix import run_attacks
    from imgvault.tracker.demo import tiles
    from imgvault.tracker.runs.compute import attack, compute_configuration, fit_mode
    from imgvault.tracker.runs.config import BatchConfig
    from imgvault.tracker.runs.plan import Plan

    named = tiles(images)
    pixels = np.stack([load_pixels(data, size=size, color="rgb") for _, data in named])
    config = BatchConfig(methods=tuple(m for m, _ in configurations), size=size, color="rgb", fit="collection",
                         jobs=1, figures=0, attack=True)  # fmt: skip
    # Each tile labelled with the photo it was cut from, so that the recognition attack applies too.
    records = [SimpleNamespace(id=name, metadata={"label": name.split("-r")[0]}) for name, _ in named]
    plan = Plan("tiles", config, records, pixels)
    figures: dict = {"matrix_images": images, "matrix_size": size}
    total = 0.0
    for method, k in configurations:
        name = method if k is None else f"{method}_{k}"
        started = time.perf_counter()
        results, _, params = compute_configuration(pixels, method, k, config)
        plain = time.perf_counter() - started
        ok = [i for i, result in enumerate(results) if result.ok]
        started = time.perf_counter()
        steps = [started]  # when each attack ended: the learning attack, the others in turn, the recognition
        if learning:
            metrics, _ = attack(plan, results, ok, method, k, params, functools.partial(_now, steps))
        else:
            _, keys = fit_mode(config).attack_keys(results, pixels[ok], ok, method, k, params)
            metrics, _ = run_attacks(pixels[ok], keys, keys(np.arange(len(ok)))[0], "collection",
                                     progress=functools.partial(_now, steps))  # fmt: skip
        seconds = time.perf_counter() - started
        parts = ", ".join(f"{b - a:.1f}" for a, b in itertools.pairwise(steps))
        total += seconds
        figures[f"{name}_plain_seconds"] = round(plain, 2)
        figures[f"{name}_attack_seconds"] = round(seconds, 2)
        figures[f"{name}_attack_over_plain"] = round(seconds / plain, 1)
        for metric, value in sorted(metrics.items()):
            if metric == "attack_gain" or metric.endswith("/gain"):
                figures[f"{name}_{metric.removeprefix('attack/').replace('/', '_')}"] = round(float(value), 4)
        print(f"{name}: plain {plain:.1f} s, attack {seconds:.1f} s (each attack in turn: {parts})", file=sys.stderr,
              flush=True)  # fmt: skip
    figures["matrix_attack_seconds"] = round(total, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--skip-inversion", action="store_true", help="leave out the (slow) whole-image attack "
                        "(with --matrix: and the recognition attack)")  # fmt: skip
    parser.add_argument("--matrix", action="store_true", help="the threat matrix of five ciphers as `imgvault run "
                        "--attack` computes it, 80 tiles at 96x96, against the plain computation")  # fmt: skip
    parser.add_argument("--methods", default=",".join(m for m, _ in MATRIX_CONFIGURATIONS),
                        help="with --matrix: which configurations (methods, comma-separated)")  # fmt: skip
    args = parser.parse_args()
    if args.matrix:
        chosen = args.methods.split(",")
        configurations = tuple(c for c in MATRIX_CONFIGURATIONS if c[0] in chosen)
        print_figures(matrix(configurations, learning=not args.skip_inversion), args.json)
        return

    small, medium, large = collection(32), collection(64), collection(128)
    one_attack("inversion_blocks", "le", medium[:12])  # warm-up: imports, BLAS
    figures = {"images": IMAGES, "baseline_seconds": round(baseline(medium), 3)}
    runs = {
        "inversion_blocks": lambda: one_attack("inversion_blocks", "le", medium),
        "inversion_pixels": lambda: one_attack("inversion_blocks", "pe", medium),
        "jigsaw_16_blocks": lambda: one_attack("jigsaw", "etc", large, k=32),
        "jigsaw_64_blocks": lambda: one_attack("jigsaw", "etc", large, k=16),
        "permutation": lambda: one_attack("permutation", "arnold", medium),
    }
    if not args.skip_inversion:
        runs = {"inversion": lambda: learning(small), **runs}
    for name, run in runs.items():
        seconds, outcome = run()
        figures[f"{name}_seconds"] = round(seconds, 2)
        figures[f"{name}_ratio"] = round(seconds / figures["baseline_seconds"], 1)
        for figure in ("gain", "blocks_in_place", "recovered_fraction"):
            if figure in outcome:
                figures[f"{name}_{figure}"] = round(float(outcome[figure]), 3)
        print(f"{name}: {seconds:.1f} s", file=sys.stderr, flush=True)  # progress: the figures come at the end
    print_figures(figures, args.json)


if __name__ == "__main__":
    main()
