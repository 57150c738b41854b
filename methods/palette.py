"""K-Means and Gaussian mixtures as image codecs: cluster the pixel values; the label map is the
"encrypted image" and the cluster centres (the palette) are the key. With RGB this is colour quantisation.
"""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from imgvault.basics.errors import IntegrityError, InvalidParameter

from .base import ImageCodec, check_images, check_k
from .payload import pack_labels, unpack_labels


class _PaletteCodec(ImageCodec):
    """Shared by K-Means and GMM: fit on pixel values, encode as labels, decode as the centres."""

    def _pixels(self, X: np.ndarray) -> np.ndarray:
        return X.reshape(-1, 1 if X.ndim == 3 else 3)

    def fit(self, X, y=None):
        X = check_images(X)
        pixels = self._pixels(X)
        distinct = len(np.unique(pixels, axis=0))
        k = check_k(self.k, distinct, f"the image(s) have only {distinct} distinct pixel values to cluster")
        if self.max_fit_pixels is not None and len(pixels) > self.max_fit_pixels:
            # A random sample fits the palette of a large collection in bounded time.
            rows = check_random_state(self.random_state).choice(len(pixels), self.max_fit_pixels, replace=False)
            pixels = pixels[rows]
        self._fit_pixels(pixels, k)
        self._sort_palette(np.argsort(self.centres_.sum(axis=1), kind="stable"))
        self.image_shape_ = X.shape[1:]
        return self

    def _sort_palette(self, order: np.ndarray) -> None:
        """Number the clusters from dark to light. scikit-learn numbers them arbitrarily; a fixed order
        makes models reproducible and label maps readable, and hides nothing: relabelling was never a key."""
        self.centres_ = self.centres_[order]

    def encode(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = check_images(X, self.image_shape_)
        labels = self._predict(self._pixels(X))
        return labels.astype(np.uint16 if len(self.centres_) > 256 else np.uint8).reshape(X.shape[:3])

    def decode(self, encoded) -> np.ndarray:
        check_is_fitted(self)
        labels = np.asarray(encoded)
        if labels.size and labels.max() >= len(self.centres_):
            raise ValueError(f"label {labels.max()} is not below k={len(self.centres_)}")
        pixels = self.centres_[labels]
        return np.clip(pixels.reshape(labels.shape[0], *self.image_shape_), 0.0, 1.0)

    def measured_payload(self, encoded_one):
        """The label map, ``size x size`` labels from 0 to k - 1: k levels (its entropy is at most log2 k)."""
        return np.asarray(encoded_one, dtype=np.int64), len(self.centres_)

    def encoded_to_bytes(self, encoded_one) -> bytes:
        return pack_labels(encoded_one, len(self.centres_))

    def encoded_from_bytes(self, data: bytes) -> np.ndarray:
        return unpack_labels(data, len(self.centres_), tuple(self.image_shape_[:2]))


class KMeansCodec(_PaletteCodec):
    """K-Means clustering of pixel values (1 feature for gray, 3 for RGB) into ``k`` clusters.

    Parameters
    ----------
    k : int, default=8
        Number of clusters; at most the number of distinct pixel values in the fitted images.
    max_fit_pixels : int or None, default=100_000
        Fit on a random sample of at most this many pixels (all pixels are encoded).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    centres_ : ndarray of float64, shape (k, n_channels)
        The cluster centres, the palette that decodes a label map.
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).integers(0, 256, (1, 16, 16)) / 255
    >>> codec = KMeansCodec(k=4, random_state=0).fit(X)
    >>> codec.encode(X).shape, sorted(set(codec.encode(X).ravel().tolist()))
    ((1, 16, 16), [0, 1, 2, 3])
    """

    _model_attributes = ("centres_",)

    def __init__(self, *, k=8, max_fit_pixels=100_000, random_state=None):
        self.k = k
        self.max_fit_pixels = max_fit_pixels
        self.random_state = random_state

    def _fit_pixels(self, pixels: np.ndarray, k: int) -> None:
        model = KMeans(n_clusters=k, n_init=1, random_state=self.random_state).fit(pixels)
        self.centres_ = model.cluster_centers_.astype(np.float64)

    def _predict(self, pixels: np.ndarray) -> np.ndarray:
        # Nearest centre, computed here so that a stored model needs only its centres.
        distances = ((pixels[:, None, :] - self.centres_[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1)

    def _check_model(self) -> None:
        if self.centres_.ndim != 2 or self.centres_.shape[1] not in (1, 3):
            raise ValueError("centres must be (k, 1) or (k, 3)")


class GMMCodec(_PaletteCodec):
    """A Gaussian mixture of pixel values with ``k`` components; decodes with the component means.

    Parameters
    ----------
    k : int, default=8
        Number of mixture components; at most the number of distinct pixel values in the fitted images.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    max_fit_pixels : int or None, default=100_000
        Fit on a random sample of at most this many pixels (all pixels are encoded).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    centres_ : ndarray of float64, shape (k, n_channels)
        The component means, the palette that decodes a label map.
    weights_, covariances_ : ndarray
        The rest of the mixture, kept so that a stored model can encode too.
    image_shape_ : tuple of int
    """

    _model_attributes = ("centres_", "weights_", "covariances_")

    def __init__(self, *, k=8, covariance_type="full", max_fit_pixels=100_000, random_state=None):
        self.k = k
        self.covariance_type = covariance_type
        self.max_fit_pixels = max_fit_pixels
        self.random_state = random_state

    def _fit_pixels(self, pixels: np.ndarray, k: int) -> None:
        if self.covariance_type not in ("full", "tied", "diag", "spherical"):
            raise InvalidParameter(
                f"covariance_type must be full, tied, diag or spherical, not {self.covariance_type!r}"
            )
        model = GaussianMixture(n_components=k, covariance_type=self.covariance_type, random_state=self.random_state)
        model.fit(pixels)
        self.centres_, self.weights_, self.covariances_ = model.means_, model.weights_, model.covariances_
        self._mixture = model

    def _sort_palette(self, order: np.ndarray) -> None:
        super()._sort_palette(order)
        self.weights_ = self.weights_[order]
        if self.covariance_type != "tied":
            self.covariances_ = self.covariances_[order]
        self._mixture = None  # rebuilt from the sorted parameters

    def _predict(self, pixels: np.ndarray) -> np.ndarray:
        mixture = getattr(self, "_mixture", None)
        if mixture is None:
            mixture = self._mixture = self._rebuild_mixture()
        return mixture.predict(pixels)

    def _rebuild_mixture(self) -> GaussianMixture:
        # scikit-learn has no public way to build a fitted mixture from its parameters; this private
        # helper has computed the precisions the same way since scikit-learn 0.18.
        from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

        mixture = GaussianMixture(n_components=len(self.centres_), covariance_type=self.covariance_type)
        mixture.weights_, mixture.means_, mixture.covariances_ = self.weights_, self.centres_, self.covariances_
        mixture.precisions_cholesky_ = _compute_precision_cholesky(self.covariances_, self.covariance_type)
        return mixture

    def _check_model(self) -> None:
        k = len(self.centres_)
        if self.centres_.ndim != 2 or self.weights_.shape != (k,):
            raise ValueError("means and weights disagree")
        if self.covariance_type not in ("full", "tied", "diag", "spherical"):
            raise IntegrityError(f"unknown covariance type {self.covariance_type!r}")
