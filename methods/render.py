"""Showing an "encrypted image" to a person: its payload as 8-bit pixels, one documented way per method.

==========  ================================================================================
method      rendering
==========  ================================================================================
pca (rows)  the size x k score matrix, min-max scaled to 0-255, stretched to the image width
pca (imgs)  the k scores of the image, min-max scaled, as k vertical bands across the width
kmeans/gmm  the label map, labels scaled to 0-255 (label * 255 / (k - 1))
aes         the ciphertext bytes (without nonce and tag) reshaped to the image's shape
==========  ================================================================================

A figure puts side by side: original | encrypted | decrypted | error map (absolute error, x4).
"""

import numpy as np

from .aes import NONCE


def _scale(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    low, high = values.min(), values.max()
    if high == low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) / (high - low) * 255).astype(np.uint8)


def _stretch_columns(matrix: np.ndarray, width: int) -> np.ndarray:
    columns = np.minimum((np.arange(width) * matrix.shape[1]) // width, matrix.shape[1] - 1)
    return matrix[:, columns]


def render_encoded(method: str, encoded_one: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The encoded payload of one image as uint8 pixels of ``image_shape`` (see the table above)."""
    height, width = image_shape[:2]
    if method == "pca":
        scores = np.asarray(encoded_one)
        matrix = scores if scores.ndim == 2 else scores[None, :].repeat(height, axis=0)
        pixels = _stretch_columns(_scale(matrix), width)
    elif method in ("kmeans", "gmm"):
        labels = np.asarray(encoded_one, dtype=np.float64)
        top = max(labels.max(), 1)
        pixels = np.rint(labels / top * 255).astype(np.uint8)
    elif method == "aes":
        size = int(np.prod(image_shape))
        return np.asarray(encoded_one, dtype=np.uint8)[NONCE : NONCE + size].reshape(image_shape)
    else:
        raise ValueError(f"no rendering for method {method!r}")
    return pixels if len(image_shape) == 2 else np.repeat(pixels[:, :, None], 3, axis=2)


def figure(original: np.ndarray, encrypted: np.ndarray, reconstruction: np.ndarray, gap: int = 4) -> np.ndarray:
    """original | encrypted | decrypted | error map, as one RGB uint8 array."""
    error = np.clip(np.abs(original.astype(np.int16) - reconstruction.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    panels = [p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2) for p in (original, encrypted,
              reconstruction, error)]  # fmt: skip
    spacer = np.full((panels[0].shape[0], gap, 3), 255, dtype=np.uint8)
    parts = []
    for panel in panels:
        parts += [panel, spacer]
    return np.concatenate(parts[:-1], axis=1)
