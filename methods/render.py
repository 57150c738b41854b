"""Showing an "encrypted image" to a person: its payload as 8-bit pixels, one documented way per method.

These drawings are for the eye only (the figures in MLflow); no measure is taken on them: the security
measures work on the payload itself (:mod:`imgvault.methods.security`).

==========  ================================================================================
method      rendering
==========  ================================================================================
pca (rows)  the size x k score matrix, min-max scaled to 0-255, stretched to the image width
pca (imgs)  the k scores of the image, min-max scaled, as k vertical bands across the width
kmeans/gmm  the label map, labels scaled to 0-255 (label * 255 / (k - 1))
aes         the ciphertext bytes (without nonce and tag) reshaped to the image's shape
ciphers     the encrypted image itself (le, etc, pe, logistic, arnold), an 8-bit image of the same shape
plugins     the same if the payload is an 8-bit image; else its numbers min-max scaled, as a grid
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
    elif np.asarray(encoded_one).dtype == np.uint8 and np.asarray(encoded_one).shape == tuple(image_shape):
        return np.asarray(encoded_one)  # an image cipher's output is an image
    else:  # a plugin's payload: its numbers min-max scaled, as a grid (stretched to the width) or as bands
        values = np.asarray(encoded_one, dtype=np.float64)
        if values.shape[:2] == tuple(image_shape[:2]):
            values = values if values.ndim == 2 else values.reshape(height, width, -1).mean(axis=2)
            pixels = _scale(values)
        else:
            matrix = values.reshape(values.shape[0], -1) if values.ndim >= 2 else values.reshape(1, -1)
            rows = np.minimum((np.arange(height) * matrix.shape[0]) // height, matrix.shape[0] - 1)
            pixels = _stretch_columns(_scale(matrix[rows]), width)
    return pixels if len(image_shape) == 2 else np.repeat(pixels[:, :, None], 3, axis=2)


ENCRYPTED_LABEL = {"pca": "encrypted (PCA scores)", "kmeans": "encrypted (label map)",
                   "gmm": "encrypted (label map)", "aes": "encrypted (ciphertext)", "le": "encrypted (le)",
                   "etc": "encrypted (etc)", "pe": "encrypted (pe)", "logistic": "encrypted (logistic)",
                   "arnold": "encrypted (arnold)"}  # fmt: skip
MIN_PANEL = 128  # panels are enlarged (nearest neighbour, whole factors) to at least this height


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (ImportError, TypeError, OSError):
        return ImageFont.load_default()


def caption(method: str, k: int | None, metrics: dict, shape: tuple[int, ...]) -> str:
    """``kmeans k=8 · 100x100 gray · MSE 77.1 · PSNR 29.26 dB · SSIM 0.904 · 3.00 bpp``."""
    psnr = metrics.get("psnr")
    psnr_text = "inf" if psnr is None or not np.isfinite(psnr) else f"{psnr:.2f}"
    color = "rgb" if len(shape) == 3 else "gray"
    parts = [method if k is None else f"{method} k={k}", f"{shape[1]}x{shape[0]} {color}",
             f"MSE {metrics['mse']:.1f}", f"PSNR {psnr_text} dB", f"SSIM {metrics['ssim']:.3f}",
             f"{metrics['bpp']:.2f} bpp"]  # fmt: skip
    return " · ".join(parts)


def figure(original: np.ndarray, encrypted: np.ndarray, reconstruction: np.ndarray, *, method: str | None = None,
           title: str | None = None, gap: int = 6) -> np.ndarray:  # fmt: skip
    """original | encrypted | decrypted | error map (absolute error x4), labelled, as one RGB uint8 array.

    Small images are enlarged by a whole factor (nearest neighbour, so pixels stay visible as pixels);
    ``title`` (see :func:`caption`) goes under the panels.
    """
    from PIL import Image, ImageDraw

    error = np.clip(np.abs(original.astype(np.int16) - reconstruction.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
    factor = max(1, -(-MIN_PANEL // original.shape[0]))
    panels = [p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2) for p in (original, encrypted,
              reconstruction, error)]  # fmt: skip
    panels = [panel.repeat(factor, axis=0).repeat(factor, axis=1) for panel in panels]
    height, width = panels[0].shape[:2]
    font = _font(12)
    total_width = 4 * width + 3 * gap
    lines = _wrap(title, font, total_width) if title else []
    top = 18
    canvas = Image.new("RGB", (total_width, top + height + 4 + 16 * len(lines)), "white")
    draw = ImageDraw.Draw(canvas)
    labels = ("original", ENCRYPTED_LABEL.get(method, "encrypted"), "decrypted", "error x4")
    for n, (panel, label) in enumerate(zip(panels, labels, strict=True)):
        x = n * (width + gap)
        canvas.paste(Image.fromarray(panel), (x, top))
        draw.text((x + 2, 2), label, fill=(40, 40, 40), font=font)
    for n, line in enumerate(lines):
        draw.text((2, top + height + 4 + 16 * n), line, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def _wrap(text: str, font, width: int) -> list[str]:
    """``text`` in lines that fit ``width`` pixels, broken only between its `` · `` parts."""
    lines: list[str] = []
    for part in text.split(" · "):
        if lines and font.getlength(f"{lines[-1]} · {part}") <= width - 4:
            lines[-1] = f"{lines[-1]} · {part}"
        else:
            lines.append(part)
    return lines
