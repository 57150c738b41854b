"""How much an "encrypted image" leaks: the standard measures of the image-encryption literature.

Every measure works on the encrypted image rendered as 8-bit pixels (:func:`render_encoded`). NPCR and UACI
follow Wu, Noonan & Agaian, "NPCR and UACI Randomness Tests for Image Encryption" (2011): for two
independent uniformly random 8-bit images, NPCR is about 99.6094 % and UACI about 33.4635 %, and their
critical values depend on the image size (:func:`npcr_critical`, :func:`uaci_interval`).
"""

import math

import numpy as np

F = 255  # largest 8-bit value


def entropy(pixels: np.ndarray) -> float:
    """Shannon entropy of the 256-bin histogram, in bits per pixel value (8 for a uniform histogram)."""
    counts = np.bincount(np.asarray(pixels, dtype=np.uint8).ravel(), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def chi2(pixels: np.ndarray) -> float:
    """Chi-square statistic of the histogram against a uniform one (255 degrees of freedom)."""
    counts = np.bincount(np.asarray(pixels, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    expected = counts.sum() / 256
    return float(((counts - expected) ** 2 / expected).sum())


def chi2_critical(alpha: float = 0.05) -> float:
    """The chi-square value a uniform histogram stays under with probability 1 - alpha (about 293.25)."""
    from scipy.stats import chi2 as chi2_distribution

    return float(chi2_distribution.ppf(1 - alpha, 255))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return float("nan")  # a flat image: no correlation to speak of
    return float(np.corrcoef(a, b)[0, 1])


def adjacent_correlations(pixels: np.ndarray) -> dict[str, float]:
    """Correlation of every pixel with its right (``corr_h``), lower (``corr_v``) and lower-right
    (``corr_d``) neighbour, over all pixels and channels (natural images: 0.85-0.95; a cipher: about 0)."""
    x = np.asarray(pixels)
    return {
        "corr_h": _correlation(x[:, :-1], x[:, 1:]),
        "corr_v": _correlation(x[:-1, :], x[1:, :]),
        "corr_d": _correlation(x[:-1, :-1], x[1:, 1:]),
    }


def npcr_uaci(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """NPCR (% of pixels that differ) and UACI (mean absolute difference, % of 255) of two 8-bit images."""
    a, b = np.asarray(first, dtype=np.int16), np.asarray(second, dtype=np.int16)
    if a.shape != b.shape:
        raise ValueError(f"images of different shapes: {a.shape} and {b.shape}")
    return float((a != b).mean() * 100), float((np.abs(a - b) / F).mean() * 100)


def npcr_critical(pixels: int, alpha: float = 0.05) -> float:
    """NPCR below which two images of ``pixels`` pixels fail Wu et al.'s randomness test (in %)."""
    from scipy.stats import norm

    return float((F - norm.ppf(1 - alpha) * math.sqrt(F / pixels)) / (F + 1) * 100)


def uaci_interval(pixels: int, alpha: float = 0.05) -> tuple[float, float]:
    """The UACI interval (in %) that two random images of ``pixels`` pixels fall in with probability 1 - alpha."""
    from scipy.stats import norm

    mean = (F + 2) / (3 * F + 3)
    variance = (F + 2) * (F**2 + 2 * F + 3) / (18 * (F + 1) ** 2 * pixels * F)
    half = norm.ppf(1 - alpha / 2) * math.sqrt(variance)
    return float((mean - half) * 100), float((mean + half) * 100)


def visual_ssim(original: np.ndarray, rendered: np.ndarray) -> float:
    """SSIM (0-255) between the original and its rendered encrypted image: how recognisable it is."""
    from skimage.metrics import structural_similarity

    channel_axis = -1 if original.ndim == 3 else None
    return float(structural_similarity(original, rendered, data_range=255, channel_axis=channel_axis))


def one_level_change(pixels: np.ndarray) -> np.ndarray:
    """The image (floats in [0, 1]) with its centre pixel changed by one grey level, for NPCR and UACI."""
    changed = np.array(pixels, copy=True)
    index = (pixels.shape[0] // 2, pixels.shape[1] // 2) + ((0,) if pixels.ndim == 3 else ())
    value = round(changed[index] * 255)
    changed[index] = (value + 1 if value < 255 else value - 1) / 255
    return changed


def evaluate(method: str, codec, pixels: np.ndarray, encoded_one: np.ndarray, original: np.ndarray) -> dict:
    """The per-image security measures of one encoding (``codec`` fitted; ``pixels`` floats in [0, 1]).

    NPCR and UACI compare the encrypted image with that of the same image changed by one grey level at
    its centre, encoded with the same model (key).
    """
    from .render import render_encoded

    rendered = render_encoded(method, encoded_one, pixels.shape)
    changed = render_encoded(method, codec.encode(one_level_change(pixels)[None])[0], pixels.shape)
    npcr, uaci = npcr_uaci(rendered, changed)
    return {
        "entropy": entropy(rendered),
        **adjacent_correlations(rendered),
        "chi2": chi2(rendered),
        "npcr": npcr,
        "uaci": uaci,
        "visual_ssim": visual_ssim(original, rendered),
    }


def wrong_key_reconstruction(method: str, wrong_codec, payload: bytes) -> np.ndarray:
    """What decoding ``payload`` with another model (key) gives, as uint8 pixels.

    For AES the authentication refuses a wrong key outright; what an attacker would see by decrypting
    anyway (AES-CTR, the cipher inside GCM, without the tag check) is computed instead.
    """
    from .preprocess import to_uint8

    if method != "aes":
        return to_uint8(wrong_codec.decode(wrong_codec.encoded_from_bytes(payload)[None])[0])
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from .aes import NONCE

    nonce, body = payload[:NONCE], payload[NONCE:-16]
    # GCM encrypts with CTR mode from counter 2 for a 96-bit nonce.
    decryptor = Cipher(algorithms.AES(wrong_codec.key_.tobytes()), modes.CTR(nonce + b"\x00\x00\x00\x02")).decryptor()
    plain = decryptor.update(body) + decryptor.finalize()
    return np.frombuffer(plain, dtype=np.uint8).reshape(wrong_codec.image_shape_)
