"""A method plugin for imgvault: XOR of every pixel value with a keyed byte map (a reused one-time pad).

``XorCodec`` is the whole plugin; the other classes break the method contract on purpose, for the tests.
"""

import numpy as np

from imgvault.methods import ImageCipher, to_uint8
from imgvault.methods.base import ImageCodec


class XorCodec(ImageCipher):
    """Every pixel value XOR a byte of a keyed map of the image's shape."""

    def _key_space_bits(self, image_shape):
        return 8 * np.prod(image_shape)

    def _schedule(self):
        return self.generator("xor").integers(0, 256, self.image_shape_, dtype=np.uint8)

    def _encrypt(self, pixels):
        return pixels ^ self.schedule()

    _decrypt = _encrypt


class NotACodec:
    """Has the methods' names, but is no ImageCodec."""

    def fit(self, X):
        return self


class Lossy(XorCodec):
    """Claims to be lossless (as every ImageCipher does) but flips the lowest bit when decoding."""

    def _decrypt(self, pixels):
        return pixels ^ self.schedule() ^ 1


class Doubling(XorCodec):
    """encode gives two entries per image."""

    def encode(self, X):
        encoded = super().encode(X)
        return np.concatenate([encoded, encoded])


class Cropping(ImageCodec):
    """decode gives images one column short."""

    def fit(self, X, y=None):
        self.image_shape_ = np.asarray(X).shape[1:]
        return self

    def encode(self, X):
        return to_uint8(X)

    def decode(self, encoded):
        return np.asarray(encoded)[:, :, :-1] / 255.0

    def measured_payload(self, encoded_one):
        return encoded_one, 256

    def encoded_from_bytes(self, data):
        return np.frombuffer(data, dtype=np.uint8).reshape(self.image_shape_)
