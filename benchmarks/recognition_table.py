"""The recognition attack and the key holder's utility for every method and key mode, on labelled images that
ship with our dependencies: docs/threat-matrix.md's table.

    python benchmarks/recognition_table.py digits --json   # 200 of scikit-learn's digits, 32x32 gray
    python benchmarks/recognition_table.py lfw --json      # scikit-image's LFW subset: 100 faces, 100 not, 32x32

Each method encodes the images as ``imgvault run`` does (``--fit collection``: one key for all; ``--fit image``:
a key per image), then the recognition attack's learners are scored on the encrypted images, on the plain ones
and on the key holder's decodings, on the same 10 stratified splits (:mod:`imgvault.methods.attacks.recognition`).
"""

import argparse
import json
import sys
import time

import numpy as np

METHODS = [("pca", 8), ("kmeans", 8), ("gmm", 8), ("aes", None), ("le", 4), ("etc", 8), ("pe", None),
           ("logistic", None), ("arnold", 1)]  # fmt: skip
SIZE = 32


def digits(per_digit: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``per_digit`` of each of scikit-learn's digits (8x8, 16 levels), upscaled bilinearly to 32x32."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    chosen = np.concatenate([np.flatnonzero(data.target == digit)[:per_digit] for digit in range(10)])
    images = [Image.fromarray(np.uint8(data.images[i] * 16)).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
              for i in chosen]  # fmt: skip
    return np.stack([np.asarray(image) / 255 for image in images]), data.target[chosen].astype(str)


def lfw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's LFW subset (25x25: its first 100 images are faces, the others not), upscaled to 32x32."""
    import skimage.data
    from PIL import Image

    faces = skimage.data.lfw_subset()
    images = [Image.fromarray(np.uint8(np.rint(face * 255))).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
              for face in faces]  # fmt: skip
    return np.stack([np.asarray(image) / 255 for image in images]), np.array(["face"] * 100 + ["non-face"] * 100)


def main() -> None:
    from imgvault.methods.attacks import recognition
    from imgvault.tracker.runs import BatchConfig
    from imgvault.tracker.runs.compute import compute_configuration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", choices=("digits", "lfw"))
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    images, labels = digits() if args.collection == "digits" else lfw()
    splits = recognition.splits_of(labels, seed=0)
    plain = recognition.scores(images, labels, splits)
    print(json.dumps({"plain_accuracy": float(np.mean(plain.accuracy))}) if args.json
          else f"plain images: accuracy {np.mean(plain.accuracy):.3f}")  # fmt: skip
    for method, k in METHODS:
        for fit in ("collection", "image"):
            config = BatchConfig(methods=(method,), ks=(k,) if k else (), size=SIZE, fit=fit, jobs=1, figures=0)
            started = time.perf_counter()
            results, _, _ = compute_configuration(images, method, k, config)
            failed = [result.error for result in results if not result.ok]
            if failed:
                print(json.dumps({"method": method, "k": k, "fit": fit, "error": failed[0]}), file=sys.stderr)
                continue
            encrypted = recognition.scores(np.stack([r.measured.encoded for r in results]), labels, splits)
            exact = all(np.array_equal(r.measured.reconstruction, r.measured.original) for r in results)
            decoded = (
                plain
                if exact
                else recognition.scores(np.stack([r.measured.reconstruction for r in results]), labels, splits)
            )
            row = {"method": method, "k": k, "fit": fit,
                   **{f"recognition/{n}": v for n, v in recognition.recognition(encrypted).items()},
                   **{f"utility/{n}": v for n, v in recognition.utility(encrypted, plain).items()},
                   **{f"utility/decoded_{n}": v for n, v in recognition.utility(decoded, plain).items()},
                   "seconds": time.perf_counter() - started}  # fmt: skip
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(
                    f"{method:9} {fit:10} gain {row['recognition/gain']:+.3f} [{row['recognition/gain_ci_low']:+.3f},"
                    f" {row['recognition/gain_ci_high']:+.3f}]  utility {row['utility/ratio']:.2f}"
                    f" [{row['utility/ratio_ci_low']:.2f}, {row['utility/ratio_ci_high']:.2f}]",
                    flush=True,
                )


if __name__ == "__main__":
    main()
