"""Per-block inversion: a known-plaintext attack on block-based ciphers.

Learnable encryption transforms every MxM block with a key that the blocks share (Tanaka 2018), and the
inverse-transformation attacks on it learn that block map from known (cipher, plain) pairs (e.g. Chang,
Maungmaung, Kiya et al.'s attacks on block-wise encryption; Ito et al. 2021). Here the attacker learns a
linear map from the *bits* of a cipher block (all its channels) to the plain block's values, by ridge
regression on the blocks of the training images. A map on the bits can express any shuffle of bits or
4-bit halves and any negative-positive transform (``255 - x`` is linear in the bits), which is what
``le`` and ``pe`` do to a block.

Several forms are tried: one map on the bits shared by every block position (right when the key is the
same for every block, as in ``le``; on the values instead for blocks of more than :data:`SHARED_FEATURES`
bits, none above that many values), and one map per block position, on the bits (while a block has at
most :data:`PER_POSITION_FEATURES` bits) or on the values (while it has at most that many values): right
when each position has its own key, as ``pe`` has for each pixel, a 1x1 block (a channel shuffle and
``255 - x`` are linear in the values). Each position's map learns from one block per training image, so
it must have few coefficients. Which form and which ridge penalty is chosen on a validation fifth of the
training images only.
"""

import numpy as np

ALPHAS = (1e-2, 10.0)
PER_POSITION_FEATURES = 96
SHARED_FEATURES = 2048  # the shared map's normal equations are features^2 floats
VALIDATION = 0.2


def forms(values: int) -> list[str]:
    """The forms of the map that fit a block of ``values`` 8-bit values (none for very large blocks)."""
    out = []
    if values * 8 <= SHARED_FEATURES:
        out.append("shared")
    elif values <= SHARED_FEATURES:
        out.append("shared, values")
    if values <= PER_POSITION_FEATURES:
        out.append("per position, values")
    if values * 8 <= PER_POSITION_FEATURES:
        out.append("per position, bits")
    return out


def to_blocks(images: np.ndarray, size: int) -> np.ndarray:
    """``(n, H, W, C)`` as ``(n, positions, size * size * C)``: the MxM blocks in raster order (edges cropped)."""
    n, height, width, channels = images.shape
    rows, cols = height // size, width // size
    blocks = images[:, : rows * size, : cols * size].reshape(n, rows, size, cols, size, channels)
    return blocks.transpose(0, 1, 3, 2, 4, 5).reshape(n, rows * cols, size * size * channels)


def from_blocks(blocks: np.ndarray, shape: tuple[int, int, int], size: int, fill: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_blocks`; pixels outside the block grid are taken from ``fill`` ``(H, W, C)``."""
    height, width, channels = shape
    rows, cols = height // size, width // size
    n = len(blocks)
    out = np.broadcast_to(fill, (n, *shape)).copy()
    grid = blocks.reshape(n, rows, cols, size, size, channels).transpose(0, 1, 3, 2, 4, 5)
    out[:, : rows * size, : cols * size] = grid.reshape(n, rows * size, cols * size, channels)
    return out


def _features(blocks: np.ndarray, form: str) -> np.ndarray:
    """Each block's bits (or values, for the forms on values) as floats, and a constant 1.

    The shared map's bits are float32 (0 and 1 are exact; its normal equations' ``X'X`` is made in float32),
    everything else float64.
    """
    if form.endswith("values"):
        x = blocks.astype(np.float64) / 255
    else:
        bits = np.unpackbits(blocks[..., None], axis=-1).reshape(*blocks.shape[:-1], -1)
        x = bits.astype(np.float32 if form == "shared" else np.float64)
    out = np.empty((*x.shape[:-1], x.shape[-1] + 1), dtype=x.dtype)
    out[..., :-1], out[..., -1] = x, 1
    return out


def _solve(gram: np.ndarray, cross: np.ndarray, alpha: float) -> np.ndarray:
    eye = np.eye(gram.shape[-1])
    eye[-1, -1] = 0  # the intercept is not penalised
    if gram.ndim == 2:  # symmetric positive definite (alpha > 0, and the intercept's row counts the blocks)
        from scipy.linalg import cho_factor, cho_solve

        return cho_solve(cho_factor(gram + alpha * eye, check_finite=False), cross, check_finite=False)
    return np.linalg.solve(gram + alpha * eye, cross)


class BlockInversion:
    """The learned inverse of a block cipher: fit on (cipher, plain) uint8 stacks, predict plain from cipher.

    Parameters
    ----------
    block_size : int
        The cipher's M.

    Attributes
    ----------
    form_ : str
        ``"shared"`` (one map on the bits for all positions), ``"shared, values"``, ``"per position, bits"``
        or ``"per position, values"``.
    alpha_ : float
    weights_ : ndarray
        ``(features, values)`` for shared, ``(positions, features, values)`` per position.
    """

    def __init__(self, block_size: int):
        self.block_size = block_size

    @staticmethod
    def _normal(X: np.ndarray, Y: np.ndarray, form: str) -> tuple[np.ndarray, np.ndarray]:
        """The normal equations' ``X'X`` and ``X'Y`` (per position for the per-position forms): sums over
        images, so that those of two sets of images add up."""
        if form.startswith("shared"):
            flat, targets = X.reshape(-1, X.shape[-1]).astype(np.float32, copy=False), Y.reshape(-1, Y.shape[-1])
            return (flat.T @ flat).astype(np.float64), flat.T.astype(np.float64) @ targets
        # Batched matrix products, one per position (numpy's einsum would loop over them without BLAS).
        by_position = X.transpose(1, 2, 0)  # (positions, features, images)
        return by_position @ by_position.transpose(0, 2, 1), by_position @ Y.transpose(1, 0, 2)

    @staticmethod
    def _apply(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if weights.ndim == 2:
            return X.astype(np.float64, copy=False) @ weights
        return (X.transpose(1, 0, 2) @ weights).transpose(1, 0, 2)  # per position, as in _normal

    def fit(self, cipher: np.ndarray, plain: np.ndarray, seed: int = 0) -> "BlockInversion":
        blocks = to_blocks(cipher, self.block_size)
        Y = to_blocks(plain, self.block_size).astype(np.float64) / 255
        order = np.random.default_rng(seed).permutation(len(blocks))
        held = order[: max(1, round(VALIDATION * len(blocks)))]
        kept = order[len(held) :]
        best = None
        for form in forms(blocks.shape[-1]):
            # The features of each part apart: no copies of a large feature array by index.
            X_kept, X_held = _features(blocks[kept], form), _features(blocks[held], form)
            kept_normal, held_normal = self._normal(X_kept, Y[kept], form), self._normal(X_held, Y[held], form)
            del X_kept
            for alpha in ALPHAS:
                weights = _solve(*kept_normal, alpha)
                error = float(np.mean((self._apply(X_held, weights) - Y[held]) ** 2))
                if best is None or error < best[0]:
                    best = (error, form, alpha, [a + b for a, b in zip(kept_normal, held_normal, strict=True)])
        _, self.form_, self.alpha_, normal = best
        self.weights_ = _solve(*normal, self.alpha_)
        self.fill_ = np.rint(plain.astype(np.float64).mean(axis=0)).astype(np.uint8)
        return self

    def predict(self, cipher: np.ndarray) -> np.ndarray:
        """The plain images the map recovers, uint8 ``(n, H, W, C)``."""
        guesses = self._apply(_features(to_blocks(cipher, self.block_size), self.form_), self.weights_)
        guesses = np.clip(np.rint(guesses * 255), 0, 255).astype(np.uint8)
        return from_blocks(guesses, self.fill_.shape, self.block_size, self.fill_)


def block_inversion_attack(originals: np.ndarray, ciphertexts, block_size: int, *, splits: int, seed: int = 0) -> dict:
    """The attack over repeated splits (:func:`imgvault.methods.attacks.score_splits`).

    ``originals``: uint8 ``(n, H, W[, C])``; ``ciphertexts(train)``: the cipher images of every image under
    that split's keys, uint8 ``(n, H, W, C')``. Adds ``shared_form`` (the fraction of splits in which the
    shared map was chosen) to the scores.
    """
    from threadpoolctl import threadpool_limits

    from . import score_splits

    plain = originals.reshape(*originals.shape[:3], -1)

    def recover(train, test):
        cipher = ciphertexts(train)
        inverse = BlockInversion(block_size).fit(cipher[train], plain[train], seed=seed)
        guesses = inverse.predict(cipher[test])
        return guesses.reshape(len(test), *originals.shape[1:]), {"shared_form": inverse.form_.startswith("shared")}

    # One BLAS thread: on a 2-core machine shared with other work, two BLAS threads that wait on each other
    # took three times as long over these systems of some 1,500 unknowns (and as much CPU time). The splits
    # are independent (each fits its own map), so they run side by side instead.
    with threadpool_limits(1):
        return score_splits(originals, recover, splits=splits, seed=seed, side_by_side=True)
