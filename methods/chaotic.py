"""The chaotic image ciphers: logistic (permutation-diffusion) and arnold (permutation only)."""

import math

import numpy as np

from imgvault.basics.errors import InvalidParameter

from .cipher import SECRET_BITS, ImageCipher

ROUNDS = 2
CHAINS = 4096  # logistic orbits iterated side by side (a vector step instead of a per-value loop)
TRANSIENT = 100  # iterations dropped from each orbit, before it forgets its starting point's neighbourhood


def logistic_bytes(x0: np.ndarray, r: np.ndarray, count: int) -> np.ndarray:
    """``count`` bytes from the logistic map x -> r x (1 - x) iterated from ``x0`` (one orbit per entry).

    Each orbit's values after the transient become bytes through their bits 33-40 (floor(x 2^40) mod 256),
    well inside float64's 52-bit mantissa.
    """
    steps = math.ceil(count / x0.size)
    x, out = x0.astype(np.float64), np.empty((steps, x0.size), dtype=np.uint8)
    for step in range(TRANSIENT + steps):
        x = r * x * (1.0 - x)
        if step >= TRANSIENT:
            out[step - TRANSIENT] = (x * 2.0**40).astype(np.uint64) & 0xFF
    return out.ravel()[:count]


class LogisticCodec(ImageCipher):
    """A chaotic permutation-diffusion cipher on the logistic map, in Fridrich's structure.

    J. Fridrich, "Symmetric ciphers based on two-dimensional chaotic maps", International Journal of
    Bifurcation and Chaos 8(6), 1998: rounds of a keyed permutation of the pixels followed by a diffusion
    in which every encrypted value depends on the previous encrypted value, so on all preceding plaintext
    (the diffusion depends on the plaintext). The keystream comes from the logistic map x -> r x (1 - x)
    (R. May, "Simple mathematical models with very complicated dynamics", Nature 261, 1976), as in
    N. K. Pareek, V. Patidar, K. K. Sud, "Image encryption using chaotic logistic map", Image and Vision
    Computing 24(9), 2006.

    Each of the 2 rounds, on the image's bytes in row-major order (all channels): a keyed permutation (a
    Fisher-Yates shuffle by the keyed generator: sorting a chaotic orbit, as some papers do, gives a
    permutation no better and costs a sort); XOR with a logistic keystream; forward chaining
    c[i] = c[i-1] + v[i] + t[i] (mod 256); backward chaining c[i] = c[i+1] + v[i] + u[i] (mod 256). One
    changed pixel changes the whole encrypted image (NPCR near 99.6 %). The orbits' initial values and the
    map's parameter r in [3.99, 4) come from the 256-bit secret; the key space is that secret's.

    Attributes
    ----------
    key_ : ndarray of uint8, shape (32,)
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, (2, 6, 9)) / 255
    >>> codec = LogisticCodec().fit(X)
    >>> bool((codec.decode(codec.encode(X)) == X).all())
    True
    """

    def _key_space_bits(self, image_shape):
        return SECRET_BITS  # the orbits' starting points and r hold far more bits than the secret

    def _schedule(self):
        size = math.prod(self.image_shape_)
        rng = self.generator("logistic")
        orders = [rng.permutation(size) for _ in range(ROUNDS)]
        chains = min(CHAINS, size)
        x0 = rng.uniform(0.05, 0.95, chains)
        r = 3.99 + 0.01 * rng.random(chains)
        stream = logistic_bytes(x0, r, 3 * ROUNDS * size).reshape(ROUNDS, 3, size)
        return orders, stream

    def _encrypt(self, pixels):
        orders, stream = self.schedule()
        values = pixels.reshape(pixels.shape[0], -1)
        for order, (mask, forward, backward) in zip(orders, stream, strict=True):
            values = values[:, order]
            values ^= mask
            values += forward
            np.cumsum(values, axis=1, dtype=np.uint8, out=values)  # mod 256, in place
            values += backward
            backwards = values[:, ::-1]
            np.cumsum(backwards, axis=1, dtype=np.uint8, out=backwards)
        return values.reshape(pixels.shape)

    def _decrypt(self, pixels):
        orders, stream = self.schedule()
        values = pixels.reshape(pixels.shape[0], -1).copy()
        for order, (mask, forward, backward) in reversed(list(zip(orders, stream, strict=True))):
            values[:, :-1] -= values[:, 1:]
            values -= backward
            values[:, 1:] -= values[:, :-1].copy()
            values -= forward
            plain = np.empty_like(values)
            plain[:, order] = values ^ mask
            values = plain
        return values.reshape(pixels.shape)


class ArnoldCodec(ImageCipher):
    """Arnold cat-map scrambling: a permutation-only cipher on square images.

    V. I. Arnold, A. Avez, "Ergodic Problems of Classical Mechanics", Benjamin, 1968 (the cat map); its
    generalised, keyed form (x, y) -> (x + a y, b x + (a b + 1) y) mod N as an image cipher in G. Chen,
    Y. Mao, C. K. Chui, "A symmetric image encryption scheme based on 3D chaotic cat maps", Chaos,
    Solitons & Fractals 21(3), 2004. Every pixel (all its channels) moves to the position the map sends it
    to after ``iterations`` applications; values never change, so one changed pixel changes one pixel of
    the encrypted image (NPCR about 1/N^2), and a chosen-plaintext attack recovers the permutation.
    The key is (a, b), each from 1 to N - 1, drawn from the secret: 2 log2(N - 1) bits, small by design.
    A key whose map, iterated, is the identity (its period divides ``iterations``) is never drawn.

    Parameters
    ----------
    iterations : int, default=10
        How many times the map is applied (public, as in the literature: the key is a and b).

    Attributes
    ----------
    key_ : ndarray of uint8, shape (32,)
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)) / 255
    >>> codec = ArnoldCodec(iterations=3).fit(X)
    >>> bool((codec.decode(codec.encode(X)) == X).all())
    True
    """

    permutation_only = True  # open to the chosen-plaintext attack (imgvault.methods.attacks.permutation)

    def __init__(self, *, iterations=10):
        self.iterations = iterations

    def _check_shape(self, image_shape):
        it = self.iterations
        if isinstance(it, bool) or not isinstance(it, int | np.integer) or it < 1:
            raise InvalidParameter(f"arnold: iterations (-k) must be a whole number of at least 1, not {it!r}")
        if image_shape[0] != image_shape[1] or image_shape[0] < 3:
            raise InvalidParameter(f"arnold needs square images of at least 3x3; got {image_shape[1]}x{image_shape[0]}")

    def _key_space_bits(self, image_shape):
        return 2 * math.log2(image_shape[0] - 1)

    def _schedule(self):
        n = self.image_shape_[0]
        rng = self.generator("arnold")
        y0, x0 = np.divmod(np.arange(n * n, dtype=np.int64), n)
        while True:
            a, b = (int(v) for v in rng.integers(1, n, 2))
            x, y = x0, y0
            for _ in range(self.iterations):
                x, y = (x + a * y) % n, (b * x + (a * b + 1) * y) % n
            destination = y * n + x
            if (destination != np.arange(n * n)).any():
                break
        source = np.empty_like(destination)
        source[destination] = np.arange(n * n)
        return source, destination

    def _encrypt(self, pixels):
        source, _ = self.schedule()
        flat = pixels.reshape(pixels.shape[0], -1, *pixels.shape[3:])
        return flat[:, source].reshape(pixels.shape)

    def _decrypt(self, pixels):
        _, destination = self.schedule()
        flat = pixels.reshape(pixels.shape[0], -1, *pixels.shape[3:])
        return flat[:, destination].reshape(pixels.shape)
