"""The chosen-plaintext attack on permutation-only ciphers: the permutation read back exactly.

A cipher that only moves values (Arnold's cat map, pixel scrambling) keeps every value and changes its
place. An attacker who can have images of their choice encrypted under the key writes each value's index
(0 to N - 1) in base 256 across ``ceil(log_256 N)`` chosen images, one digit per image, and reads at every
ciphertext position the index of the value that landed there (Li, Li, Chen & Bourbakis 2008, "A general
quantitative cryptanalysis of permutation-only multimedia ciphers against plaintext attacks"). Two more
chosen images of random values check the recovered permutation: a position counts as recovered when both
come back through it unchanged.
"""

import math
from collections.abc import Callable

import numpy as np

#: An encryption oracle under one key: a uint8 stack of images in, their ciphertexts out (any shape with
#: the images' number of values each).
Oracle = Callable[[np.ndarray], np.ndarray]


def chosen_images(shape: tuple[int, ...]) -> np.ndarray:
    """The ``ceil(log_256 N)`` chosen images: image ``d`` holds digit ``d`` (base 256) of each value's index."""
    n = math.prod(shape)
    digits = max(1, math.ceil(math.log(n, 256)))
    index = np.arange(n, dtype=np.int64)
    return np.stack([((index >> (8 * d)) & 255).astype(np.uint8).reshape(shape) for d in range(digits)])


def recover_permutation(encrypt: Oracle, shape: tuple[int, ...]) -> np.ndarray:
    """``source``: for each ciphertext position, the index of the plain value the cipher put there.

    Positions whose read-back index is out of range (a cipher that changes values) hold -1.
    """
    chosen = chosen_images(shape)
    cipher = np.asarray(encrypt(chosen)).reshape(len(chosen), -1).astype(np.int64)
    source = np.zeros(cipher.shape[1], dtype=np.int64)
    for d, digit in enumerate(cipher):
        source |= digit << (8 * d)
    source[source >= math.prod(shape)] = -1
    return source


def decrypt(cipher: np.ndarray, source: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """One ciphertext put back by ``source``; positions no ciphertext value maps to stay 0."""
    plain = np.zeros(math.prod(shape), dtype=np.uint8)
    known = source >= 0
    plain[source[known]] = np.asarray(cipher).ravel()[known]
    return plain.reshape(shape)


def recovered_fraction(encrypt: Oracle, source: np.ndarray, shape: tuple[int, ...], seed: int = 0) -> float:
    """The fraction of positions through which two random probe images come back unchanged."""
    probes = np.random.default_rng(seed).integers(0, 256, (2, *shape), dtype=np.uint8)
    back = np.stack([decrypt(c, source, shape) for c in np.asarray(encrypt(probes))])
    return float(np.mean((back == probes).all(axis=0)))


def permutation_attack(originals: np.ndarray, oracles: Callable, *, splits: int, seed: int = 0) -> dict:
    """The attack over repeated splits (:func:`imgvault.methods.attacks.score_splits`).

    ``oracles(train)`` gives, for that split, a function ``(i) -> (attacker's, target's)``: the encryption
    oracle the attacker holds against image ``i``, and the oracle of the key that encrypted image ``i``
    (the same one when the key is shared). Adds ``recovered_fraction``: the fraction of positions of the
    target's key the attacker's permutation gets right (mean over the attacked images).
    """
    from . import score_splits

    shape = originals.shape[1:]

    def recover(train, test):
        target = oracles(train)
        images, fractions = [], []
        for i in test:
            attackers, targets = target(i)
            source = recover_permutation(attackers, shape)
            images.append(decrypt(targets(originals[i][None])[0], source, shape))
            fractions.append(recovered_fraction(targets, source, shape, seed))
        return images, {"recovered_fraction": float(np.mean(fractions))}

    return score_splits(originals, recover, splits=splits, seed=seed)
