"""Every attack that applies to one method and key mode, run on one collection: a row of the threat matrix.

The whole-image inversion (the learning attack, ``attack_*``) is run by the tracker as before; this adds
the attacks of :data:`imgvault.methods.attacks.ATTACKS` that need the codec's declarations. What the
attacker holds under each key mode:

- ``--fit collection`` (one key for all): the known-plaintext attacker learns from pairs under the very key
  that encrypted its targets; the chosen-plaintext oracle encrypts under that key.
- ``--fit image`` (each image its own key, used once): the known-plaintext pairs come from other keys, and
  no oracle for a key used once exists, so the chosen-plaintext attacker queries another image's key; the
  attack then measures whether the keys differ at all (if they do not, it succeeds).
"""

from collections.abc import Callable

import numpy as np

from . import ATTACKS, SPLITS, Keys, cipher_image, cipher_images
from .blocks import SHARED_FEATURES, forms


def _reason(name: str, codec, fit: str, pixels: np.ndarray) -> str | None:
    reason = ATTACKS[name].reason(codec, fit)
    if reason is not None:
        return reason
    if name == "permutation" and codec.randomized:
        return "the cipher is randomized: the same image encrypts differently every time"
    if cipher_image(codec, codec.encode(pixels[:1])[0]) is None:
        return "its ciphertext is not an 8-bit image on the image's grid"
    if name == "inversion_blocks":
        values = codec.block_size**2 * (pixels.shape[3] if pixels.ndim == 4 else 1)
        if not forms(values):
            return f"blocks of {values} values are too large for the learned map (at most {SHARED_FEATURES})"
    if name == "jigsaw":
        from .jigsaw import MAX_BLOCKS

        blocks = (pixels.shape[1] // codec.block_size) * (pixels.shape[2] // codec.block_size)
        if blocks > MAX_BLOCKS:
            return f"{blocks} blocks per image: the jigsaw solver takes at most {MAX_BLOCKS} (larger blocks or images)"
        if blocks < 2:
            return "fewer than two blocks per image: nothing to reassemble"
    return None


MATRIX_ATTACKS = ("inversion_blocks", "jigsaw", "permutation")  # run_attacks's, in the order it runs them


def run_attacks(pixels: np.ndarray, keys: Keys, codec, fit: str, *, splits: int = SPLITS, seed: int = 0,
                progress: Callable[[], None] = lambda: None) -> tuple[dict, dict]:  # fmt: skip
    """``(metrics, not_applicable)``: ``attack/<name>/<figure>`` for every attack that applies, and
    ``attack/<name>`` -> why, for every one that does not.

    ``pixels``: the collection as floats in [0, 1]; ``keys(train)``: see :data:`Keys`; ``codec``: one fitted
    codec of the method (for its declarations); ``progress()`` is called after each of :data:`MATRIX_ATTACKS`.
    """
    from ..preprocess import to_uint8
    from .blocks import block_inversion_attack
    from .jigsaw import jigsaw_attack
    from .permutation import permutation_attack

    originals = to_uint8(pixels)
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def ciphertexts(train):
        codecs = keys(train)
        ids = tuple(id(c) for c in codecs)
        if ids not in cache:  # one key per image, the same in every split: encrypted once
            cache.clear()
            cache[ids] = cipher_images(codecs, pixels)
        return cache[ids]

    def oracles(train):
        codecs = keys(train)

        def oracle(one):
            return lambda chosen: cipher_images([one] * len(chosen), chosen / 255.0)

        if fit == "collection":
            return lambda i: (oracle(codecs[i]), oracle(codecs[i]))
        return lambda i: (oracle(codecs[(i + 1) % len(codecs)]), oracle(codecs[i]))

    metrics, not_applicable = {}, {}
    for name in MATRIX_ATTACKS:
        reason = _reason(name, codec, fit, pixels)
        if reason is not None:
            not_applicable[f"attack/{name}"] = reason
            progress()
            continue
        if name == "inversion_blocks":
            result = block_inversion_attack(originals, ciphertexts, codec.block_size, splits=splits, seed=seed)
        elif name == "jigsaw":
            result = jigsaw_attack(originals, ciphertexts, codec.block_size, splits=splits, seed=seed)
        else:
            result = permutation_attack(originals, oracles, splits=splits, seed=seed)
        metrics.update({f"attack/{name}/{figure}": value for figure, value in result.items()})
        progress()
    return metrics, not_applicable
