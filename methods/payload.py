"""Turning fitted models and encoded images into bytes, and back, without pickle.

Models are npz archives of plain numeric arrays, loaded with ``allow_pickle=False``: even someone who
holds the key and can forge a sealed blob cannot make the store execute code by loading it. Label maps
are bit-packed to ceil(log2(k)) bits per pixel, so the size of an encoded image, and its bits per pixel,
are what the method really needs.
"""

import io
import math

import numpy as np

from imgvault.basics.errors import IntegrityError


def arrays_to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An npz archive (uncompressed) of ``arrays``; only numeric arrays are accepted."""
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise TypeError(f"array {name} has dtype {array.dtype}: only numbers go into a payload")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def bytes_to_arrays(data: bytes, expected: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays of an npz archive made by :func:`arrays_to_bytes`, which must hold ``expected``."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError) as exc:
        raise IntegrityError(f"a stored payload is not a valid array archive ({exc})") from None
    if set(arrays) != set(expected):
        raise IntegrityError(f"a stored payload holds arrays {sorted(arrays)}, expected {sorted(expected)}")
    return arrays


def label_bits(k: int) -> int:
    """Bits needed to write a label from 0 to k-1 (at least 1)."""
    return max(1, math.ceil(math.log2(k)))


def pack_labels(labels: np.ndarray, k: int) -> bytes:
    """Labels in [0, k) as ceil(log2(k)) bits each, most significant bit first."""
    bits = label_bits(k)
    flat = np.asarray(labels, dtype=np.uint32).ravel()
    if flat.size and flat.max() >= k:
        raise ValueError(f"label {flat.max()} is not below k={k}")
    # Each label as `bits` bits: shift every bit position down and keep the lowest bit.
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    return np.packbits(((flat[:, None] >> shifts) & 1).astype(np.uint8)).tobytes()


def unpack_labels(data: bytes, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """The labels :func:`pack_labels` wrote, as an array of ``shape``."""
    bits, count = label_bits(k), math.prod(shape)
    if len(data) != math.ceil(count * bits / 8):
        raise IntegrityError(f"a stored label map has {len(data)} bytes, expected {math.ceil(count * bits / 8)}")
    unpacked = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count * bits).reshape(count, bits)
    labels = unpacked.astype(np.uint32) @ (1 << np.arange(bits - 1, -1, -1, dtype=np.uint32))
    if labels.size and labels.max() >= k:
        raise IntegrityError(f"a stored label map has label {labels.max()}, not below k={k}")
    return labels.astype(np.uint16 if k > 256 else np.uint8).reshape(shape)
