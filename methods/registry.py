"""The methods by name, and how one knob ``k`` and a fit scope become a configured codec."""

from dataclasses import dataclass

from imgvault.store.errors import InvalidParameter

FIT_SCOPES = ("image", "collection")


@dataclass(frozen=True)
class Knob:
    """A method's one setting that ``-k`` sets: its parameter's name, default and meaning."""

    name: str
    default: int
    meaning: str


DEFAULT_K = 8
KNOBS = {
    "pca": Knob("k", DEFAULT_K, "principal components"),
    "kmeans": Knob("k", DEFAULT_K, "clusters"),
    "gmm": Knob("k", DEFAULT_K, "mixture components"),
    "le": Knob("block_size", 4, "block size M (M x M blocks)"),
    "etc": Knob("block_size", 16, "block size M (M x M blocks)"),
    "arnold": Knob("iterations", 10, "iterations of the cat map"),
}

METHOD_NAMES = ("pca", "kmeans", "gmm", "aes", "le", "etc", "pe", "logistic", "arnold")


def method_classes() -> dict:
    from .aes import AESCodec
    from .chaotic import ArnoldCodec, LogisticCodec
    from .learnable import ETCCodec, LECodec, PECodec
    from .palette import GMMCodec, KMeansCodec
    from .pca import PCACodec

    return {"pca": PCACodec, "kmeans": KMeansCodec, "gmm": GMMCodec, "aes": AESCodec, "le": LECodec,
            "etc": ETCCodec, "pe": PECodec, "logistic": LogisticCodec, "arnold": ArnoldCodec}  # fmt: skip


def knob(method: str) -> Knob | None:
    """What ``-k`` sets for ``method``, or None if the method takes no k."""
    return KNOBS.get(method)


def check_method(method: str) -> str:
    if method not in METHOD_NAMES:
        raise InvalidParameter(f"unknown method {method!r}; the methods are: {', '.join(METHOD_NAMES)}")
    return method


def make_codec(method: str, *, k: int | None = None, fit: str = "image", random_state=0):
    """A configured, unfitted codec for ``method``.

    ``k`` is the method's one knob (:data:`KNOBS`): the number of components (PCA) or clusters (K-Means,
    GMM), the block size (le, etc), the iterations (arnold); aes, pe and logistic take none. ``fit`` is
    the scope one model serves: ``"image"`` or ``"collection"`` (PCA then works on whole images,
    eigen-images, instead of on rows).
    """
    check_method(method)
    if fit not in FIT_SCOPES:
        raise InvalidParameter(f"fit must be one of {', '.join(FIT_SCOPES)}, not {fit!r}")
    cls = method_classes()[method]
    setting = knob(method)
    if setting is None:
        if k is not None:
            why = "it encrypts every pixel, losslessly" if method == "aes" else "its key is all it has"
            raise InvalidParameter(f"{method} takes no k: {why}")
        return cls()
    k = setting.default if k is None else k
    if method == "pca":
        return cls(k=k, samples="rows" if fit == "image" else "images", random_state=random_state)
    if setting.name != "k":
        return cls(**{setting.name: k})
    return cls(k=k, random_state=random_state)
