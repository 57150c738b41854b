"""The methods by name (built-in, or plugins: :mod:`imgvault.methods.plugins`), and how one knob ``k`` and a
fit scope become a configured codec. Built-in names are checked without importing scikit-learn."""

from dataclasses import dataclass

from imgvault.basics.errors import InvalidParameter

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
    "le": Knob("block_size", 4, "block side"),
    "etc": Knob("block_size", 16, "block side"),
    "arnold": Knob("iterations", 10, "cat-map iterations"),
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


def available_methods() -> tuple[str, ...]:
    """The built-in methods, then the installed plugins' names."""
    from .plugins import plugin_entry_points

    return METHOD_NAMES + tuple(sorted(set(plugin_entry_points()) - set(METHOD_NAMES)))


def method_class(method: str) -> type:
    """The codec class of ``method``: a built-in name, an installed plugin's name or a ``module:Class``."""
    if method in METHOD_NAMES:
        return method_classes()[method]
    from .plugins import load_plugin

    found = load_plugin(method)
    if found is None:
        raise InvalidParameter(f"unknown method {method!r}; the methods are: {', '.join(available_methods())}")
    return found


def knob(method: str) -> Knob | None:
    """What ``-k`` sets for ``method``, or None if the method takes no k."""
    if method in METHOD_NAMES:
        return KNOBS.get(method)
    cls = method_class(method)
    name = getattr(cls, "knob", None)
    return None if name is None else Knob(name, cls().get_params()[name], f"{name} (a plugin's parameter)")


def check_method(method: str) -> str:
    """``method`` if it names a built-in method or a plugin that loads and is a method; else an error."""
    from .plugins import NAME_LIMIT

    if method in METHOD_NAMES:
        return method
    if len(method) > NAME_LIMIT:
        raise InvalidParameter(f"method {method!r} is {len(method)} characters; the store records at most "
                               f"{NAME_LIMIT}: give the plugin a short entry-point name instead")  # fmt: skip
    method_class(method)
    return method


def check_installed_method(method: str) -> str:
    """``method`` if it names a built-in method or an installed plugin (an entry point), else an error, without
    importing anything it names: what a request over the network may choose from. A ``module:Class``
    reference, which imports (and so runs) whatever module it names, is for the command line only."""
    if method in METHOD_NAMES:
        return method
    from .plugins import plugin_entry_points

    if method not in plugin_entry_points():
        raise InvalidParameter(f"unknown method {method!r}; the methods are: {', '.join(available_methods())}")
    return check_method(method)


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
    cls = method_class(method)
    setting = knob(method)
    if method not in METHOD_NAMES:  # a plugin: its knob and random_state, if it has them
        params = {"random_state": random_state} if "random_state" in cls().get_params() else {}
        if k is not None:
            if setting is None:
                raise InvalidParameter(f"{method} takes no k: it declares no knob")
            params[setting.name] = k
        return cls(**params)
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


def describe_methods() -> list[dict]:
    """Every method (built-in, then the installed plugins) with its knob, declared properties and origin; a
    plugin that does not load is listed with ``error`` instead."""
    from imgvault.basics.errors import PluginError

    from .plugins import plugin_entry_points

    points = plugin_entry_points()
    rows = []
    for name in available_methods():
        row = {"method": name, "source": "built-in" if name in METHOD_NAMES else f"plugin {points[name].value}"}
        try:
            cls, setting = method_class(name), knob(name)
        except PluginError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        rows.append({**row, "knob": None if setting is None else setting.name,
                     "knob_default": None if setting is None else setting.default,
                     "knob_meaning": None if setting is None else setting.meaning,
                     "lossless": bool(cls.lossless), "randomized": bool(cls.randomized),
                     "key": "fitted model" if cls.secret_attribute is None else "secret bit string"})  # fmt: skip
    return rows
