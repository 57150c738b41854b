"""PCA as an image codec: keep k principal components, the scores are the "encrypted image"."""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from imgvault.basics.errors import IntegrityError, InvalidParameter

from .base import ImageCodec, check_images, check_k


class PCACodec(ImageCodec):
    """Principal component analysis of images, keeping ``k`` components.

    Parameters
    ----------
    k : int, default=8
        Number of principal components kept.
    samples : {"rows", "images"}, default="rows"
        What PCA treats as a sample. ``"rows"``: every row of every image is a sample (features: the
        row's pixels and channels), so one image of ``size x size`` gives scores of ``size x k`` and
        ``k <= size`` (the per-image setting). ``"images"``: every flattened image is a sample, so the
        components are eigen-images, each image's scores are ``k`` numbers and ``k`` is at most the
        number of images (the collection setting). The study flattened one image into a single
        10,000-value sample, a PCA with nothing to learn; neither setting copies that.
    random_state : int, RandomState instance or None, default=None
        Passed to scikit-learn's PCA (the full SVD used here is deterministic).

    Attributes
    ----------
    mean_ : ndarray of float32, shape (n_features,)
    components_ : ndarray of float32, shape (k, n_features)
    image_shape_ : tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).random((1, 16, 16))
    >>> codec = PCACodec(k=16).fit(X)
    >>> bool(np.abs(codec.decode(codec.encode(X)) - X).max() < 1e-4)
    True
    """

    _model_attributes = ("mean_", "components_")

    def __init__(self, *, k=8, samples="rows", random_state=None):
        self.k = k
        self.samples = samples
        self.random_state = random_state

    def _matrix(self, X: np.ndarray) -> np.ndarray:
        n, height = X.shape[0], X.shape[1]
        return X.reshape(n * height, -1) if self.samples == "rows" else X.reshape(n, -1)

    def fit(self, X, y=None):
        if self.samples not in ("rows", "images"):
            raise InvalidParameter(f'samples must be "rows" or "images", not {self.samples!r}')
        X = check_images(X)
        data = self._matrix(X)
        k = self.check_fit_shape(X.shape)
        if not np.ptp(data, axis=0).any():
            # Every sample alike (a blank image): no direction of variance to find, and scikit-learn's PCA would
            # divide by the zero total variance. The mean reproduces the data; any orthonormal basis does.
            mean, components = data[0], np.eye(k, data.shape[1])
        else:
            pca = PCA(n_components=k, svd_solver="full", random_state=self.random_state).fit(data)
            mean, components = pca.mean_, pca.components_
        # float32 from the start: the model that is stored is exactly the one that measured the metrics.
        self.mean_ = mean.astype(np.float32)
        self.components_ = components.astype(np.float32)
        self.image_shape_ = X.shape[1:]
        return self

    def check_fit_shape(self, stack_shape: tuple[int, ...]) -> int:
        """k, checked against what a fit on a stack of this shape allows (see :meth:`ImageCodec.check_fit_shape`)."""
        if self.samples not in ("rows", "images"):
            raise InvalidParameter(f'samples must be "rows" or "images", not {self.samples!r}')
        n, height, width = stack_shape[:3]
        features = int(np.prod(stack_shape[2:]))
        if self.samples == "rows":
            limit = min(n * height, features)
            what = f"PCA on the rows of {n} image(s) of {height}x{width} has {limit} dimensions"
        else:
            limit = min(n, height * features)
            what = f"PCA of {n} whole image(s) (eigen-images) has at most {limit} components"
        return check_k(self.k, limit, what)

    def encode(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = check_images(X, self.image_shape_)
        scores = (self._matrix(X).astype(np.float32) - self.mean_) @ self.components_.T
        return scores.reshape(X.shape[0], X.shape[1], -1) if self.samples == "rows" else scores

    def decode(self, encoded) -> np.ndarray:
        check_is_fitted(self)
        scores = np.asarray(encoded, dtype=np.float32)
        pixels = scores @ self.components_ + self.mean_
        return np.clip(pixels.reshape(scores.shape[0], *self.image_shape_).astype(np.float64), 0.0, 1.0)

    def measured_payload(self, encoded_one):
        """The scores as numbers: ``size x k`` (rows; neighbours are adjacent rows and components) or ``k``
        (images). Real-valued, so no byte-histogram measure applies."""
        return np.asarray(encoded_one, dtype=np.float64), None

    def encoded_to_bytes(self, encoded_one) -> bytes:
        return np.ascontiguousarray(encoded_one, dtype="<f4").tobytes()

    def encoded_from_bytes(self, data: bytes) -> np.ndarray:
        scores = np.frombuffer(data, dtype="<f4")
        k = self.components_.shape[0]
        if scores.size != (self.image_shape_[0] * k if self.samples == "rows" else k):
            raise IntegrityError("a stored encoded image does not match its PCA model")
        return scores.reshape(self.image_shape_[0], k) if self.samples == "rows" else scores

    def _check_model(self) -> None:
        if self.components_.ndim != 2 or self.mean_.shape != (self.components_.shape[1],):
            raise ValueError("mean and components disagree")
        self.mean_ = self.mean_.astype(np.float32)
        self.components_ = self.components_.astype(np.float32)
