"""AES-256-GCM of the pixels: the secure, lossless reference the ML methods are measured against."""

import os
import struct

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sklearn.utils.validation import check_is_fitted

from imgvault.basics.errors import IntegrityError

from .base import ImageCodec, check_images
from .preprocess import to_uint8

NONCE = 12
TAG = 16


class AESCodec(ImageCodec):
    """AES-256-GCM encryption of the 8-bit pixel array, with a key of its own.

    Fitting draws a fresh 256-bit key from the operating system; every image gets a fresh 96-bit nonce.
    There is deliberately no ``random_state``: a key derived from a seed would be a key anyone can guess.
    The image's shape is authenticated with the pixels. Decoding with another key raises
    :class:`~imgvault.store.IntegrityError`, never returns noise.

    Attributes
    ----------
    key_ : ndarray of uint8, shape (32,)
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, (2, 8, 8)) / 255
    >>> codec = AESCodec().fit(X)
    >>> bool((codec.decode(codec.encode(X)) == X).all())
    True
    """

    _model_attributes = ("key_",)
    randomized = True  # a fresh nonce per encoding: the same image encrypts differently every time
    lossless = True
    secret_attribute = "key_"

    def key_space_bits(self) -> float:
        return 256.0

    def measured_payload(self, encoded_one):
        """The ciphertext bytes without nonce and tag, in the image's shape (channels kept): 256 levels."""
        size = int(np.prod(self.image_shape_))
        return np.asarray(encoded_one, dtype=np.uint8)[NONCE : NONCE + size].reshape(self.image_shape_), 256

    def fit(self, X, y=None):
        X = check_images(X)
        self.key_ = np.frombuffer(AESGCM.generate_key(bit_length=256), dtype=np.uint8).copy()
        self.image_shape_ = X.shape[1:]
        return self

    def _aad(self) -> bytes:
        return struct.pack(f">{len(self.image_shape_)}I", *self.image_shape_)

    def encode(self, X) -> np.ndarray:
        return self._encode(X, fixed_nonce=None)

    def comparable_encoding(self, X) -> np.ndarray:
        """AES-GCM under an all-zero nonce: two keys compared on the same nonce (a measure, never stored)."""
        return self._encode(X, fixed_nonce=bytes(NONCE))

    def _encode(self, X, fixed_nonce: bytes | None) -> np.ndarray:
        check_is_fitted(self)
        X = check_images(X, self.image_shape_)
        aead, aad = AESGCM(self.key_.tobytes()), self._aad()
        out = []
        for image in to_uint8(X):
            nonce = fixed_nonce or os.urandom(NONCE)
            out.append(np.frombuffer(nonce + aead.encrypt(nonce, image.tobytes(), aad), dtype=np.uint8))
        return np.stack(out)

    def decode(self, encoded) -> np.ndarray:
        check_is_fitted(self)
        aead, aad = AESGCM(self.key_.tobytes()), self._aad()
        images = []
        for row in np.asarray(encoded, dtype=np.uint8):
            blob = row.tobytes()
            try:
                plain = aead.decrypt(blob[:NONCE], blob[NONCE:], aad)
            except InvalidTag:
                raise IntegrityError("AES-GCM: wrong key, or the encrypted image was altered") from None
            images.append(np.frombuffer(plain, dtype=np.uint8).reshape(self.image_shape_))
        return np.stack(images) / 255.0

    def encoded_from_bytes(self, data: bytes) -> np.ndarray:
        if len(data) != int(np.prod(self.image_shape_)) + NONCE + TAG:
            raise IntegrityError("a stored AES-encrypted image does not match its model's shape")
        return np.frombuffer(data, dtype=np.uint8)

    def _check_model(self) -> None:
        if self.key_.shape != (32,) or self.key_.dtype != np.uint8:
            raise ValueError("the key must be 32 bytes")
