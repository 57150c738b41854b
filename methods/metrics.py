"""Quality and cost of an encoding, on one stated scale: 8-bit pixels, 0-255.

The study this project grew out of compared 0-255 originals with 0-1 reconstructions, so its MSE was about
mean(original**2) whatever the method (about 6302 for all three). :func:`quality` takes only 8-bit
arrays and refuses anything else, so that mistake cannot be made here.
"""

import math

import numpy as np


def _check_8bit(original: np.ndarray, reconstructed: np.ndarray) -> None:
    for name, array in (("original", original), ("reconstructed", reconstructed)):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
            dtype = getattr(array, "dtype", type(array).__name__)
            raise ValueError(
                f"quality metrics compare 8-bit images (uint8, 0-255); the {name} image is {dtype}. Convert"
                " both to the same scale first (imgvault.methods.to_uint8 for floats in [0, 1])"
            )
    if original.shape != reconstructed.shape:
        raise ValueError(f"images of different shapes: {original.shape} and {reconstructed.shape}")


#: SSIM as Wang, Bovik, Sheikh & Simoncelli 2004 define it: an 11x11 Gaussian window of sigma 1.5 and
#: population (not sample) covariances, with the constants K1 = 0.01 and K2 = 0.03 (scikit-image's defaults
#: are a 7x7 uniform window and sample covariances, which give other numbers).
WANG_SSIM = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "K1": 0.01, "K2": 0.03}
SSIM_WINDOW = 11  # the Gaussian window's side: images must be at least this large


def ssim(first: np.ndarray, second: np.ndarray) -> float:
    """SSIM of two uint8 images with Wang et al.'s settings (:data:`WANG_SSIM`), data range 255.

    For RGB, the mean over the channels.
    """
    from skimage.metrics import structural_similarity

    _check_8bit(first, second)
    channel_axis = -1 if first.ndim == 3 else None
    return float(structural_similarity(first, second, data_range=255, channel_axis=channel_axis, **WANG_SSIM))


def quality(original: np.ndarray, reconstructed: np.ndarray) -> dict[str, float]:
    """MSE, PSNR (dB) and SSIM (:func:`ssim`, Wang et al. 2004) of a reconstruction, on the 0-255 range.

    Both arrays must be uint8 with the same shape, ``(h, w)`` or ``(h, w, 3)``; for RGB, SSIM is the mean
    over channels. PSNR is ``inf`` for identical images.
    """
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

    _check_8bit(original, reconstructed)
    mse = float(mean_squared_error(original, reconstructed))
    psnr = math.inf if mse == 0 else float(peak_signal_noise_ratio(original, reconstructed, data_range=255))
    return {"mse": mse, "psnr": psnr, "ssim": ssim(original, reconstructed)}


def payload_cost(encoded_bytes: int, model_bytes: int, shape: tuple[int, ...], images_per_model: int = 1) -> dict:
    """What an encoding costs to keep.

    ``bpp`` is bits of the encoded image per pixel; ``bpp_with_model`` adds the model's bits, shared
    among the ``images_per_model`` images it serves; ``compression_ratio`` is the raw 8-bit pixel bytes
    over the encoded bytes plus that share of the model.
    """
    pixels = shape[0] * shape[1]
    raw = math.prod(shape)
    per_image = encoded_bytes + model_bytes / images_per_model
    return {
        "encoded_bytes": encoded_bytes,
        "model_bytes": model_bytes,
        "bpp": encoded_bytes * 8 / pixels,
        "bpp_with_model": per_image * 8 / pixels,
        "compression_ratio": raw / per_image,
    }
