"""The methods by name, and how one knob ``k`` and a fit scope become a configured codec."""

from imgvault.store.errors import InvalidParameter

FIT_SCOPES = ("image", "collection")


def method_classes() -> dict:
    from .aes import AESCodec
    from .palette import GMMCodec, KMeansCodec
    from .pca import PCACodec

    return {"pca": PCACodec, "kmeans": KMeansCodec, "gmm": GMMCodec, "aes": AESCodec}


METHOD_NAMES = ("pca", "kmeans", "gmm", "aes")
DEFAULT_K = 8


def check_method(method: str) -> str:
    if method not in METHOD_NAMES:
        raise InvalidParameter(f"unknown method {method!r}; the methods are: {', '.join(METHOD_NAMES)}")
    return method


def make_codec(method: str, *, k: int | None = None, fit: str = "image", random_state=0):
    """A configured, unfitted codec for ``method``.

    ``k`` is the number of components (PCA) or clusters (K-Means, GMM); AES takes none. ``fit`` is the
    scope one model serves: ``"image"`` or ``"collection"`` (PCA then works on whole images,
    eigen-images, instead of on rows).
    """
    check_method(method)
    if fit not in FIT_SCOPES:
        raise InvalidParameter(f"fit must be one of {', '.join(FIT_SCOPES)}, not {fit!r}")
    cls = method_classes()[method]
    if method == "aes":
        if k is not None:
            raise InvalidParameter("aes takes no k: it encrypts every pixel, losslessly")
        return cls()
    k = DEFAULT_K if k is None else k
    if method == "pca":
        return cls(k=k, samples="rows" if fit == "image" else "images", random_state=random_state)
    return cls(k=k, random_state=random_state)
