"""Methods from other packages: found through the ``imgvault.methods`` entry points, held to the contract.

A plugin is an :class:`~imgvault.methods.base.ImageCodec` subclass in any installed package, named by an
entry point in the group ``imgvault.methods`` (``myplugin = mypackage.codec:MyCodec``), or, for a quick try,
by its reference ``mypackage.codec:MyCodec`` given as the method. The name is what the store records with
every encoding and model, and what decoding looks up again: a plugin must stay installed to decode what it
encoded. A built-in method's name cannot be taken by a plugin.

The contract (checked when the plugin loads, and on every image it encodes):

- ``__init__`` takes keyword parameters with defaults and stores them unchanged (scikit-learn's rule):
  ``get_params()`` gives what the store records, and ``cls(**params)`` re-creates the codec to decode.
- ``fit(X)`` on a stack of images (n, height, width[, 3]) of floats in [0, 1] returns ``self``; fitted
  attributes end in ``_``; the model is the arrays named by ``_model_attributes`` (numbers only, no
  pickle), with ``image_shape_`` set by ``fit``.
- ``encode(X)`` gives one entry per image; ``encoded_to_bytes`` / ``encoded_from_bytes`` store one entry
  and read it back; ``decode`` gives the images back, floats in [0, 1] of the fitted shape.
- ``measured_payload(encoded_one)`` gives ``(values, levels)``: what the security measures work on.
- Declared properties: ``randomized`` (a fresh nonce per encoding), ``lossless`` (decode gives back the
  8-bit pixels exactly: checked), ``secret_attribute`` (the fitted attribute holding the key as uint8, for
  the key sensitivity), ``key_space_bits()``, and ``knob`` (the parameter ``-k`` sets, or None).
"""

import functools
import importlib
import inspect
from importlib.metadata import EntryPoint, entry_points

import numpy as np

from imgvault.basics.errors import PluginError

GROUP = "imgvault.methods"
NAME_LIMIT = 32  # characters: the store's method column
REQUIRED = ("fit", "encode", "decode", "measured_payload", "encoded_from_bytes")


def is_reference(method: str) -> bool:
    """True for ``package.module:Class``, a plugin named by where it is rather than by an entry point."""
    return ":" in method


def plugin_entry_points() -> dict[str, EntryPoint]:
    """The installed plugins by name (entry points of the group ``imgvault.methods``)."""
    return {point.name: point for point in entry_points(group=GROUP)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@functools.cache  # once per process: a batch makes a codec per image, and scanning entry points takes ms
def load_plugin(method: str) -> type | None:
    """The codec class of plugin ``method`` (an entry point's name or a reference), checked; None if no
    plugin has that name. Raises :class:`PluginError` if it does not load or is not a method."""
    if is_reference(method):
        module_name, _, attribute = method.partition(":")
        where = method
        try:
            found = importlib.import_module(module_name)
            for part in attribute.split("."):
                found = getattr(found, part)
        except Exception as exc:  # a plugin's import can fail in any way; its user sees one line
            raise PluginError(f'method plugin "{method}" does not load: {_first_line(exc)}') from None
    else:
        point = plugin_entry_points().get(method)
        if point is None:
            return None
        where = f"{point.value}, from {point.dist.name}" if point.dist is not None else point.value
        try:
            found = point.load()
        except Exception as exc:
            raise PluginError(f'method plugin "{method}" ({where}) does not load: {_first_line(exc)}') from None
    check_class(found, f'method plugin "{method}"' + ("" if is_reference(method) else f" ({where})"))
    return found


def check_class(found, who: str) -> None:
    """Raise :class:`PluginError` unless ``found`` is an ImageCodec subclass that defines the contract."""
    from .base import ImageCodec

    if not inspect.isclass(found) or not issubclass(found, ImageCodec):
        what = f"the class {found.__qualname__}" if inspect.isclass(found) else f"a {type(found).__name__}"
        raise PluginError(f"{who} is not an ImageCodec subclass (imgvault.methods.base.ImageCodec) but {what}")
    missing = [name for name in REQUIRED if getattr(found, name, None) is getattr(ImageCodec, name, None)]
    if missing:
        raise PluginError(f"{who} does not define {', '.join(missing)} (the method contract needs them)")
    try:
        params = found().get_params()
    except Exception as exc:
        raise PluginError(f"{who} cannot be made with its defaults ({_first_line(exc)}): __init__ must take "
                          "keyword parameters with defaults") from None  # fmt: skip
    knob = getattr(found, "knob", None)
    if knob is not None and knob not in params:
        raise PluginError(f'{who} declares knob = "{knob}", which is not one of its parameters ({", ".join(params)})')


def describe(codec) -> str:
    cls = type(codec)
    return f"{cls.__module__}:{cls.__qualname__}"


def check_outputs(codec, pixels: np.ndarray, encoded: np.ndarray, decoded: np.ndarray, method: str | None) -> None:
    """Raise :class:`PluginError` if one image's encoding and decoding break the contract.

    ``pixels``: the image (floats in [0, 1]); ``encoded``: ``encode`` of a stack of it alone; ``decoded``:
    ``decode`` of its stored form. Built-in methods pass these checks by construction; they catch a plugin's
    mistakes before anything is stored.
    """
    who = f'method "{method or describe(codec)}" ({describe(codec)})'
    if len(encoded) != 1:
        raise PluginError(f"{who} breaks the method contract: encode gave {len(encoded)} entries for 1 image")
    decoded = np.asarray(decoded)
    if decoded.shape != (1, *pixels.shape):
        raise PluginError(f"{who} breaks the method contract: decode gave shape {decoded.shape[1:]} for images "
                          f"of shape {pixels.shape}")  # fmt: skip
    if not np.isfinite(decoded).all() or decoded.min() < -1e-9 or decoded.max() > 1 + 1e-9:
        raise PluginError(f"{who} breaks the method contract: decode gave values outside [0, 1]")
    if codec.lossless:
        from .preprocess import to_uint8

        if not np.array_equal(to_uint8(decoded[0]), to_uint8(pixels)):
            raise PluginError(f"{who} breaks the method contract: decode is not exact, though it declares "
                              "lossless = True")  # fmt: skip
    payload = codec.measured_payload(encoded[0])
    if not (isinstance(payload, tuple) and len(payload) == 2 and (payload[1] is None or int(payload[1]) >= 1)):
        raise PluginError(f"{who} breaks the method contract: measured_payload must give (values, levels)")
