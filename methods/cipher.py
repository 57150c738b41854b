"""What the literature's image ciphers share: a 256-bit secret from the OS, 8-bit pixels in and out.

Each cipher (:mod:`imgvault.methods.learnable`, :mod:`imgvault.methods.chaotic`) turns a stack of 8-bit
images into a stack of 8-bit images of the same shape and back, exactly. Its key is a 256-bit secret drawn
from the operating system at ``fit``, as AES's is (no ``random_state``: a key derived from a seed is a key
anyone can guess); everything the cipher needs (permutations, flip maps, chaotic initial values) is
derived from that secret through SHA-256 and a keyed numpy generator, once per key and image shape.
"""

import hashlib
import math
import os

import numpy as np
from sklearn.utils.validation import check_is_fitted

from imgvault.basics.errors import IntegrityError, InvalidParameter

from .base import ImageCodec, check_images
from .preprocess import to_uint8

SECRET_BITS = 256


def log2_factorial(n: int) -> float:
    """log2(n!), the bits needed to name one of n! permutations."""
    return math.lgamma(n + 1) / math.log(2)


class ImageCipher(ImageCodec):
    """Base of the 8-bit image ciphers: a 256-bit key, deterministic, lossless, payload = an 8-bit image.

    Subclasses define ``_check_shape(image_shape)`` (raise :class:`InvalidParameter` for what they do not
    support), ``_schedule()`` (what they derive from the key, for the fitted shape), ``_encrypt`` /
    ``_decrypt`` on uint8 stacks, and ``_key_space_bits(image_shape)``.

    Attributes
    ----------
    key_ : ndarray of uint8, shape (32,)
        The secret.
    image_shape_ : tuple of int
    """

    _model_attributes = ("key_",)
    randomized = False  # the same image under the same key encrypts the same way: NPCR/UACI apply
    lossless = True
    secret_attribute = "key_"

    def fit(self, X, y=None):
        X = check_images(X)
        self._check_shape(X.shape[1:])
        self.key_ = np.frombuffer(os.urandom(SECRET_BITS // 8), dtype=np.uint8).copy()
        self.image_shape_ = X.shape[1:]
        return self

    def check_shape(self, image_shape):
        self._check_shape(tuple(image_shape))

    def key_space_bits(self) -> float:
        """log2 of the number of distinct keys for the fitted image shape: what the cipher's structure allows,
        at most the 256 bits of the secret it is derived from."""
        check_is_fitted(self)
        return float(min(SECRET_BITS, self._key_space_bits(tuple(self.image_shape_))))

    def generator(self, purpose: str) -> np.random.Generator:
        """A numpy generator keyed by the secret and ``purpose`` (independent streams per purpose)."""
        digest = hashlib.sha256(self.key_.tobytes() + purpose.encode()).digest()
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(digest, "big"))))

    def schedule(self):
        """What the cipher derives from its key, computed once per key (cached on the codec)."""
        check_is_fitted(self)
        tag = (self.key_.tobytes(), tuple(self.image_shape_), tuple(sorted(self.get_params().items())))
        cached = self.__dict__.get("_cached_schedule")
        if cached is None or cached[0] != tag:
            cached = (tag, self._schedule())
            self.__dict__["_cached_schedule"] = cached
        return cached[1]

    def encode(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = check_images(X, self.image_shape_)
        return self._encrypt(to_uint8(X))

    def decode(self, encoded) -> np.ndarray:
        check_is_fitted(self)
        encoded = np.asarray(encoded)
        if encoded.shape[1:] != tuple(self.image_shape_) or encoded.dtype != np.uint8:
            raise ValueError(f"expected uint8 encrypted images of shape {tuple(self.image_shape_)}, got "
                             f"{encoded.dtype} {encoded.shape[1:]}")  # fmt: skip
        return self._decrypt(encoded) / 255.0

    def measured_payload(self, encoded_one):
        """The encrypted image itself, in the image's shape: 256 levels."""
        return np.asarray(encoded_one, dtype=np.uint8), 256

    def encoded_from_bytes(self, data: bytes) -> np.ndarray:
        if len(data) != math.prod(self.image_shape_):
            raise IntegrityError(f"a stored {type(self).__name__} image does not match its model's shape")
        return np.frombuffer(data, dtype=np.uint8).reshape(self.image_shape_)

    def _check_model(self) -> None:
        if self.key_.shape != (SECRET_BITS // 8,) or self.key_.dtype != np.uint8:
            raise ValueError("the key must be 32 bytes")
        try:
            self._check_shape(tuple(self.image_shape_))
        except InvalidParameter as exc:
            raise ValueError(str(exc)) from None

    # -- what each cipher defines --------------------------------------------------------------------

    def _check_shape(self, image_shape: tuple[int, ...]) -> None:
        """Raise InvalidParameter if the cipher (with its parameters) cannot encrypt images of this shape."""

    def _key_space_bits(self, image_shape: tuple[int, ...]) -> float:
        raise NotImplementedError

    def _schedule(self):
        raise NotImplementedError

    def _encrypt(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _decrypt(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def inverse(permutation: np.ndarray) -> np.ndarray:
    """The permutation that undoes ``permutation`` (``inverse(p)[p] == arange``)."""
    undone = np.empty_like(permutation)
    undone[permutation] = np.arange(permutation.size, dtype=permutation.dtype)
    return undone


def gather_and_mask(pixels: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each image's value ``i`` (row-major, channels last) taken from position ``source[i]``, XOR ``mask[i]``."""
    flat = pixels.reshape(pixels.shape[0], -1)
    return (flat[:, source] ^ mask).reshape(pixels.shape)


def unmask_and_scatter(pixels: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The inverse of :func:`gather_and_mask`, given ``target = inverse(source)``."""
    flat = pixels.reshape(pixels.shape[0], -1)
    return (flat ^ mask)[:, target].reshape(pixels.shape)


def check_block_size(block_size, image_shape: tuple[int, ...], method: str) -> int:
    """``block_size`` if it is a whole number that divides the image's height and width."""
    if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer) or block_size < 1:
        raise InvalidParameter(f"{method}: the block size must be a whole number of at least 1, not {block_size!r}")
    height, width = image_shape[:2]
    if height % block_size or width % block_size:
        raise InvalidParameter(
            f"{method}: block size {block_size} does not divide the {width}x{height} image (no padding: the "
            f"encrypted image keeps the image's shape); choose a size that is a multiple of {block_size}, "
            "or another block size (-k)"
        )
    return int(block_size)


def to_blocks(pixels: np.ndarray, m: int) -> np.ndarray:
    """(n, H, W[, C]) -> (n, H/m * W/m, m, m, C): the m x m blocks in row-major order."""
    n, height, width = pixels.shape[:3]
    c = pixels.shape[3] if pixels.ndim == 4 else 1
    blocks = pixels.reshape(n, height // m, m, width // m, m, c).transpose(0, 1, 3, 2, 4, 5)
    return blocks.reshape(n, (height // m) * (width // m), m, m, c)


def from_blocks(blocks: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`to_blocks`."""
    height, width = image_shape[:2]
    n, m, c = blocks.shape[0], blocks.shape[2], blocks.shape[4]
    pixels = blocks.reshape(n, height // m, width // m, m, m, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(pixels.reshape(n, *image_shape))
