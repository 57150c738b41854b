"""The attacks of the threat matrix: what each attacker holds, which methods it applies to, how it is scored.

=================  ==============================  ==========================================================
attack             the attacker holds              applies to
=================  ==============================  ==========================================================
inversion          known plaintext (70 % of the    every method: a learned map from whole encrypted images
                   collection's pairs)             to images (:mod:`imgvault.methods.attacks.inversion`, ``attack_*``)
inversion_blocks   known plaintext, as above       block-based ciphers (``block_size``): a linear map from
                                                   each MxM cipher block's bits to its plain block
jigsaw             the ciphertext only             ciphers that scramble blocks (``scrambles_blocks``)
permutation        chosen plaintext (an oracle     permutation-only ciphers (``permutation_only``)
                   that encrypts images of its
                   choice under the key)
=================  ==============================  ==========================================================

Every attack is scored the same way, on held-out images over repeated random splits: the SSIM and PSNR of
what it recovers against the original, as a gain over the mean training image (which ignores the
ciphertext), with a 95 % interval corrected for the overlap of the training parts (Nadeau & Bengio 2003;
:func:`imgvault.methods.attacks.inversion.interval`). An exact recovery has an infinite PSNR; it counts as
:data:`PSNR_CAP` dB so that means stay finite.

The codec declares what an attack needs (:class:`~imgvault.methods.base.ImageCodec`'s ``block_size``,
``scrambles_blocks``, ``permutation_only``); its ciphertext must be 8-bit values on the image's grid
(``measured_payload`` with 256 levels, ``height x width x channels'`` values).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SPLITS = 5
TEST_FRACTION = 0.3
PSNR_CAP = 100.0

#: For one split's training indices, the fitted codec that encrypted each image of the collection (the
#: same object for all with a shared key, ``--fit collection``; each image's own with ``--fit image``).
Keys = Callable[[np.ndarray], list]


def cipher_image(codec, encoded_one: np.ndarray) -> np.ndarray | None:
    """One encoding as an 8-bit image ``(height, width, channels')`` on the image's grid, or None if it is not."""
    values, levels = codec.measured_payload(encoded_one)
    height, width = codec.image_shape_[:2]
    values = np.asarray(values)
    if levels != 256 or values.size % (height * width):
        return None
    return values.astype(np.uint8).reshape(height, width, -1)


def cipher_images(codecs: list, pixels: np.ndarray) -> np.ndarray:
    """Every image of ``pixels`` encrypted by its codec, as a uint8 stack ``(n, height, width, channels')``."""
    if all(codec is codecs[0] for codec in codecs):
        encoded = codecs[0].encode(pixels)
        out = [cipher_image(codecs[0], one) for one in encoded]
    else:
        out = [cipher_image(codec, codec.encode(one[None])[0]) for codec, one in zip(codecs, pixels, strict=True)]
    if any(one is None for one in out):
        raise ValueError("the method's ciphertext is not an 8-bit image on the image's grid")
    return np.stack(out)


def score_splits(originals: np.ndarray, recover: Callable, *, splits: int = SPLITS, seed: int = 0,
                 side_by_side: bool = False) -> dict:  # fmt: skip
    """An attack's scores over ``splits`` random splits.

    ``originals``: uint8 stack; ``recover(train, test)`` gives the attacker's uint8 images for ``test`` and a
    dict of further per-split figures (averaged over the splits). Returns ``ssim``, ``psnr``, their
    baselines ``baseline_ssim``, ``baseline_psnr``, the gains ``gain`` (SSIM) and ``psnr_gain`` each with
    ``_ci_low`` / ``_ci_high``, ``splits``, ``test_images``, and the averaged further figures. With
    ``side_by_side``, the splits run on threads (:func:`~imgvault.methods.attacks.splits.each_split`):
    ``recover`` must then not depend on the order of the splits.
    """
    from sklearn.model_selection import ShuffleSplit

    from ..metrics import quality
    from .inversion import interval
    from .splits import each_split

    def scores(truths, guesses):
        measured = [quality(t, g) for t, g in zip(truths, guesses, strict=True)]
        return (float(np.mean([q["ssim"] for q in measured])),
                float(np.mean([min(q["psnr"], PSNR_CAP) for q in measured])))  # fmt: skip

    def one_split(train, test) -> tuple[tuple[float, ...], dict]:
        recovered, figures = recover(train, test)
        mean_image = np.rint(originals[train].astype(np.float64).mean(axis=0)).astype(np.uint8)
        return (*scores(originals[test], recovered), *scores(originals[test], [mean_image] * len(test))), figures

    names = ("ssim", "psnr", "baseline_ssim", "baseline_psnr")
    rows: dict[str, list[float]] = {name: [] for name in names}
    extras: dict[str, list[float]] = {}
    split = ShuffleSplit(n_splits=splits, test_size=TEST_FRACTION, random_state=seed).split(originals)
    for values, figures in each_split(one_split, split) if side_by_side else (one_split(*s) for s in split):
        for name, value in zip(names, values, strict=True):
            rows[name].append(value)
        for name, value in figures.items():
            extras.setdefault(name, []).append(float(value))
    n_test = math.ceil(TEST_FRACTION * len(originals))
    n_train = len(originals) - n_test
    out = {name: float(np.mean(values)) for name, values in rows.items()}
    for name, (first, second) in (("gain", ("ssim", "baseline_ssim")), ("psnr_gain", ("psnr", "baseline_psnr"))):
        mean, low, high = interval([a - b for a, b in zip(rows[first], rows[second], strict=True)], n_train, n_test)
        out.update({name: mean, f"{name}_ci_low": low, f"{name}_ci_high": high})
    out.update({name: float(np.mean(values)) for name, values in extras.items()})
    out.update({"splits": splits, "test_images": n_test})
    return out


@dataclass(frozen=True)
class Attack:
    """One column of the threat matrix: its name, what the attacker holds, and when it applies."""

    name: str
    holds: str
    needs: str  # the codec declaration it needs, for the "n/a" reason

    def reason(self, codec, fit: str) -> str | None:
        """Why the attack does not apply to ``codec`` under ``fit`` (``"image"``/``"collection"``), or None."""
        if self.name == "inversion":
            return None
        declared = {"inversion_blocks": codec.block_size is not None,
                    "jigsaw": codec.scrambles_blocks and codec.block_size is not None,
                    "permutation": codec.permutation_only}[self.name]  # fmt: skip
        if not declared:
            return f"{self.name} needs {self.needs}; {type(codec).__name__} is not"
        return None


ATTACKS = {
    "inversion": Attack("inversion", "known plaintext: the (encrypted, original) pairs of 70 % of the collection",
                        "nothing"),
    "inversion_blocks": Attack("inversion_blocks", "known plaintext: the (encrypted, original) pairs of 70 % of "
                               "the collection", "a block-based cipher (block_size)"),
    "jigsaw": Attack("jigsaw", "ciphertext only: one encrypted image at a time", "a cipher that scrambles blocks"),
    "permutation": Attack("permutation", "chosen plaintext: an oracle that encrypts images of the attacker's "
                          "choice (with --fit image: under another image's key, not the target's)",
                          "a permutation-only cipher"),
}  # fmt: skip


def shared_keys(method: str, pixels: np.ndarray, k=None) -> Keys:
    """:data:`Keys` for ``--fit collection`` outside a run: for each split, one codec of ``method`` fitted on
    its training images (each fitted once, then reused), serving every image of ``pixels``."""
    from ..registry import make_codec

    fitted = {}

    def keys(train: np.ndarray) -> list:
        if train.tobytes() not in fitted:
            fitted[train.tobytes()] = make_codec(method, k=k, fit="collection").fit(pixels[train])
        return [fitted[train.tobytes()]] * len(pixels)

    return keys
