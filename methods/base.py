"""What every image "encryption" method shares: the scikit-learn estimator contract on image stacks.

A method is fitted on a stack of images, shape ``(n_images, height, width)`` (gray) or
``(n_images, height, width, 3)`` (RGB), with floats in [0, 1] as :func:`load_pixels` makes them. One
image is a stack of one: fitting on one image is the study's setting (``--fit image``), and fitting on
a whole collection shares one model among its images (``--fit collection``). The fitted model is the
"key"; :meth:`encode` gives the "encrypted images" and :meth:`decode` the reconstructions.
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from imgvault.basics.errors import IntegrityError, InvalidParameter

from .payload import arrays_to_bytes, bytes_to_arrays


def check_images(X, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``X`` as a float64 stack of images in [0, 1], checked (and against ``shape``, once fitted)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim not in (3, 4) or (X.ndim == 4 and X.shape[3] != 3) or X.shape[0] == 0:
        raise ValueError(
            f"expected a stack of images, shape (n, height, width) or (n, height, width, 3); got {X.shape}"
        )
    if not np.isfinite(X).all() or X.min() < 0 or X.max() > 1:
        raise ValueError("pixel values must be floats in [0, 1] (see imgvault.methods.load_pixels)")
    if shape is not None and X.shape[1:] != tuple(shape):
        raise ValueError(f"images of shape {X.shape[1:]} given to a model fitted on images of shape {tuple(shape)}")
    return X


def check_k(k, limit: int, what: str) -> int:
    """``k`` if it is a whole number from 1 to ``limit``, else an error that names the limit and why."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidParameter(f"k must be a whole number of at least 1, not {k!r}")
    if k > limit:
        raise InvalidParameter(f"k={k} is too large: {what}, so k can be at most {limit}")
    return int(k)


class ImageCodec(BaseEstimator):
    """Base class of the methods. Subclasses define ``fit``, ``encode``, ``decode`` and their model arrays.

    Fitted attributes common to all: ``image_shape_`` (the shape of one image the model works on).
    """

    #: names of the fitted attributes that make up the model, persisted as arrays
    _model_attributes: tuple[str, ...] = ()
    #: True if encoding the same image twice with the same model gives different outputs (a fresh nonce):
    #: then no diffusion test (NPCR, UACI) applies, since two encodings differ whatever the input.
    randomized: bool = False
    #: The side M of the square blocks a block-based cipher works on (each MxM block transformed as a unit;
    #: 1 for a pixel-based one), or None. Block-based ciphers are open to the per-block inversion attack.
    block_size: int | None = None
    #: True if the cipher moves whole MxM blocks to other positions (block scrambling): open to the jigsaw
    #: solver, which reassembles blocks from the ciphertext alone.
    scrambles_blocks: bool = False
    #: True if encoding only moves values to other positions and never changes them: open to the
    #: chosen-plaintext attack that reads the permutation back from ceil(log_256 N) chosen images.
    permutation_only: bool = False
    #: True if decode(encode(X)) gives back X's 8-bit pixels exactly (AES and the image ciphers)
    lossless: bool = False
    #: the fitted attribute that holds the secret key as a uint8 array, for methods whose key is a bit
    #: string (AES, the image ciphers); None when the key is a model learned from the images (PCA, K-Means)
    secret_attribute: str | None = None

    def check_shape(self, image_shape: tuple[int, ...]) -> None:
        """Raise InvalidParameter if the method, with its parameters, cannot work on images of this shape
        (one image's shape, e.g. ``(96, 96, 3)``): a batch asks before any work."""

    def check_fit_shape(self, stack_shape: tuple[int, ...]) -> None:
        """Raise InvalidParameter if a fit on a stack of images of ``stack_shape`` (``(n, height, width[, 3])``)
        cannot succeed whatever the pixels: a batch asks for every configuration before its first run. By
        default, :meth:`check_shape` of one image."""
        self.check_shape(tuple(stack_shape[1:]))

    def key_space_bits(self) -> float | None:
        """log2 of the number of keys, or None where that is not a meaningful number (a fitted model)."""
        return None

    def comparable_encoding(self, X) -> np.ndarray:
        """``encode(X)``, except that a randomized method fixes its randomness (a nonce) so that two keys can
        be compared on the same input: used by the key-sensitivity measure only, never stored."""
        return self.encode(X)

    def measured_payload(self, encoded_one: np.ndarray) -> tuple[np.ndarray, int | None]:
        """What the security measures work on for one image's encoding, and how many values it can take.

        ``(values, levels)``: the payload as data (never a picture drawn from it), with ``levels`` the
        number of distinct values a payload entry can take (256 for bytes, k for labels), or None for
        real-valued payloads, on which the byte-histogram measures (entropy, chi-square, NPCR, UACI) do
        not apply.
        """
        raise NotImplementedError

    def encode(self, X) -> np.ndarray:
        """The "encrypted" images: one entry per image of ``X`` along the first axis."""
        raise NotImplementedError

    def decode(self, encoded) -> np.ndarray:
        """Reconstructions of the images ``encoded`` came from, floats in [0, 1]."""
        raise NotImplementedError

    # scikit-learn's names, so that the methods fit in pipelines.
    def transform(self, X) -> np.ndarray:
        return self.encode(X)

    def inverse_transform(self, encoded) -> np.ndarray:
        return self.decode(encoded)

    # -- persistence: plain arrays, never pickle ----------------------------------------------------

    def encoded_to_bytes(self, encoded_one: np.ndarray) -> bytes:
        """The stored form of one image's encoding (its size is what ``bpp`` counts)."""
        return np.ascontiguousarray(encoded_one).tobytes()

    def encoded_from_bytes(self, data: bytes) -> np.ndarray:
        """The inverse of :meth:`encoded_to_bytes`."""
        raise NotImplementedError

    def model_to_bytes(self) -> bytes:
        check_is_fitted(self)
        arrays = {name: np.asarray(getattr(self, name)) for name in self._model_attributes}
        arrays["image_shape_"] = np.asarray(self.image_shape_, dtype=np.int64)
        return arrays_to_bytes(arrays)

    @classmethod
    def from_model_bytes(cls, params: dict, data: bytes) -> "ImageCodec":
        """A fitted codec from its parameters and :meth:`model_to_bytes`' output."""
        codec = cls(**params)
        arrays = bytes_to_arrays(data, (*cls._model_attributes, "image_shape_"))
        codec.image_shape_ = tuple(int(v) for v in arrays.pop("image_shape_"))
        for name, array in arrays.items():
            setattr(codec, name, array)
        try:
            codec._check_model()
        except (ValueError, TypeError) as exc:
            raise IntegrityError(f"a stored {cls.__name__} model is inconsistent ({exc})") from None
        return codec

    def _check_model(self) -> None:
        """Raise ValueError if the loaded model arrays do not fit together."""
