"""How much an "encrypted image" leaks: the standard measures of the image-encryption literature.

The measures work on the payload as data, as each method's ``measured_payload`` gives it, never on a
picture drawn from it:

==========  ==========================================  ======  =================================================
method      payload measured                            levels  measures that apply
==========  ==========================================  ======  =================================================
pca         the scores (size x k, or k for collection)  real    adjacent correlations (on a size x k matrix only)
kmeans/gmm  the label map, labels 0 .. k-1              k       all; entropy against log2(k), NPCR/UACI with F=k-1
aes         the ciphertext bytes in the image's shape   256     all but NPCR/UACI (randomized: IND-CPA)
ciphers     the encrypted image (le, etc, pe, ...)       256     all
==========  ==========================================  ======  =================================================

Key sensitivity (:func:`key_sensitivity`) applies to methods whose key is a bit string (AES, the image
ciphers, a plugin that names its ``secret_attribute``): one bit of the key flipped, the same image encoded
again (AES with the same nonce), the share of payload values that differ (``key_sensitivity``, ideally
(levels - 1) / levels, 0.996 for bytes) and, for byte payloads, of payload bits (``key_sensitivity_bits``,
ideally 0.5). It is averaged over :data:`KEY_BITS_FLIPPED` bits spread over the key. For a key that is a
model fitted to the images (PCA, K-Means, GMM) there is no key bit to flip: not applicable.

Each measure that passes or fails is judged against its criterion at the payload's size
(:mod:`imgvault.methods.criteria`), and gives a 0/1 ``<measure>_pass``. A measure that does not apply is
left out, and :func:`not_applicable` says why. For an RGB payload, per-channel values (``_r``, ``_g``,
``_b``) come beside the pooled ones.
"""

from dataclasses import dataclass

import numpy as np

from .criteria import ALPHA, chi2_critical, criteria, entropy_interval, npcr_critical, uaci_interval

__all__ = ["Security", "adjacent_correlations", "chi2", "chi2_critical", "entropy", "evaluate", "key_sensitivity",
           "not_applicable", "npcr_critical", "npcr_uaci", "uaci_interval"]  # fmt: skip

RANDOMIZED = "randomized encryption: IND-CPA, no diffusion test"
REAL_VALUED = "real-valued scores: entropy, chi-square, NPCR and UACI are defined on discrete levels"
NOT_A_GRID = "the payload is k numbers, not a grid: no adjacent pixels"
NOT_AN_IMAGE = "the payload is not an image of the original's shape"
ONE_LEVEL = "k=1: a payload with one level carries nothing to measure"
NO_SECRET = (
    "the key is a model fitted to the images, not a bit string: no key bit to flip (key_ssim compares "
    "with another fitted model instead)"
)
CHANNELS = "rgb"
KEY_BITS_FLIPPED = 4


def entropy(values: np.ndarray, levels: int = 256) -> float:
    """Shannon entropy of the histogram of ``values`` (whole numbers 0 .. levels-1), in bits (at most log2 levels)."""
    counts = np.bincount(np.asarray(values, dtype=np.int64).ravel(), minlength=levels)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def chi2(values: np.ndarray, levels: int = 256) -> float:
    """Chi-square statistic of the histogram against a uniform one (levels - 1 degrees of freedom)."""
    counts = np.bincount(np.asarray(values, dtype=np.int64).ravel(), minlength=levels).astype(np.float64)
    expected = counts.sum() / levels
    return float(((counts - expected) ** 2 / expected).sum())


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return float("nan")  # a flat payload: no correlation to speak of
    return float(np.corrcoef(a, b)[0, 1])


def adjacent_correlations(values: np.ndarray) -> dict[str, float]:
    """Correlation of every entry with its right (``corr_h``), lower (``corr_v``) and lower-right (``corr_d``)
    neighbour, over all entries and channels (natural images: 0.85-0.95; a cipher: about 0)."""
    x = np.asarray(values)
    return {
        "corr_h": _correlation(x[:, :-1], x[:, 1:]),
        "corr_v": _correlation(x[:-1, :], x[1:, :]),
        "corr_d": _correlation(x[:-1, :-1], x[1:, 1:]),
    }


def npcr_uaci(first: np.ndarray, second: np.ndarray, levels: int = 256) -> tuple[float, float]:
    """NPCR (% of entries that differ) and UACI (mean absolute difference, % of levels - 1) of two payloads."""
    a, b = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"payloads of different shapes: {a.shape} and {b.shape}")
    return float((a != b).mean() * 100), float((np.abs(a - b) / (levels - 1)).mean() * 100)


def one_level_change(pixels: np.ndarray) -> np.ndarray:
    """The image (floats in [0, 1]) with its centre pixel changed by one grey level, for NPCR and UACI."""
    changed = np.array(pixels, copy=True)
    index = (pixels.shape[0] // 2, pixels.shape[1] // 2) + ((0,) if pixels.ndim == 3 else ())
    value = round(changed[index] * 255)
    changed[index] = (value + 1 if value < 255 else value - 1) / 255
    return changed


def flipped_key(codec, bit: int):
    """A copy of the fitted ``codec`` whose secret differs from its own in key bit ``bit`` alone."""
    import copy

    twin = copy.copy(codec)
    key = np.array(getattr(codec, codec.secret_attribute), dtype=np.uint8, copy=True)
    key.reshape(-1)[bit // 8] ^= np.uint8(1 << (bit % 8))
    setattr(twin, codec.secret_attribute, key)
    return twin


def key_sensitivity(codec, pixels: np.ndarray) -> dict[str, float]:
    """How much of the payload of ``pixels`` (one image, floats in [0, 1]) changes when one key bit changes.

    ``key_sensitivity``: share of payload values that differ; ``key_sensitivity_bits`` (byte payloads):
    share of payload bits; both the mean over :data:`KEY_BITS_FLIPPED` bits spread over the key (its first
    and last bit among them). Empty if the codec has no secret bit string (see :data:`NO_SECRET`).
    """
    if codec.secret_attribute is None:
        return {}
    values, levels = codec.measured_payload(codec.comparable_encoding(pixels[None])[0])
    key_bits = np.asarray(getattr(codec, codec.secret_attribute)).size * 8
    changed, bits = [], []
    for bit in np.linspace(0, key_bits - 1, KEY_BITS_FLIPPED).round().astype(int):
        twin = flipped_key(codec, int(bit))
        other, _ = twin.measured_payload(twin.comparable_encoding(pixels[None])[0])
        changed.append(float(np.mean(np.asarray(values) != np.asarray(other))))
        if levels == 256:
            xor = np.asarray(values, dtype=np.uint8) ^ np.asarray(other, dtype=np.uint8)
            bits.append(float(np.unpackbits(xor).mean()))
    out = {"key_sensitivity": float(np.mean(changed))}
    if bits:
        out["key_sensitivity_bits"] = float(np.mean(bits))
    return out


def not_applicable(codec, encoded_one: np.ndarray) -> dict[str, str]:
    """The measures that do not apply to ``codec``'s payloads, each with the reason shown for it."""
    values, levels = codec.measured_payload(encoded_one)
    out = {}
    if levels is None:
        out.update(dict.fromkeys(("entropy", "chi2", "npcr", "uaci"), REAL_VALUED))
    elif levels < 2:
        out.update(dict.fromkeys(("entropy", "chi2", "npcr", "uaci"), ONE_LEVEL))
    if codec.randomized:
        out.update(dict.fromkeys(("npcr", "uaci"), RANDOMIZED))
    if values.ndim < 2:
        out.update(dict.fromkeys(("corr_h", "corr_v", "corr_d"), NOT_A_GRID))
    if levels is None or values.shape[:2] != tuple(codec.image_shape_[:2]):
        out["visual_ssim"] = NOT_AN_IMAGE
    if codec.secret_attribute is None:
        out["key_sensitivity"] = NO_SECRET
    return out


@dataclass(frozen=True)
class Security:
    """The measures of one image (``metrics``), those that do not apply and why, and the criteria at its N."""

    metrics: dict
    not_applicable: dict
    criteria: dict


def _histogram_measures(values: np.ndarray, levels: int, alpha: float, suffix: str = "") -> dict:
    low, high = entropy_interval(values.size, levels, alpha)
    h, c = entropy(values, levels), chi2(values, levels)
    return {f"entropy{suffix}": h, f"entropy{suffix}_pass": float(low <= h <= high), f"chi2{suffix}": c,
            f"chi2{suffix}_pass": float(c < chi2_critical(alpha, levels))}  # fmt: skip


def evaluate(codec, pixels: np.ndarray, encoded_one: np.ndarray, original: np.ndarray,
             alpha: float = ALPHA) -> Security:  # fmt: skip
    """The per-image security measures of one encoding (``codec`` fitted; ``pixels`` floats in [0, 1]).

    NPCR and UACI are the literature's setting: the same image changed by one grey level at its centre,
    encoded with the same model (key), payloads compared; they apply to deterministic methods only.
    """
    from .metrics import ssim

    values, levels = codec.measured_payload(encoded_one)
    skip = not_applicable(codec, encoded_one)
    metrics: dict[str, float] = {}
    if "entropy" not in skip:
        metrics.update(_histogram_measures(values, levels, alpha))
    if "corr_h" not in skip:
        metrics.update(adjacent_correlations(values))
    if values.ndim == 3:  # RGB payloads: each channel beside the pooled values
        for c, name in enumerate(CHANNELS):
            channel = values[..., c]
            metrics.update({f"{key}_{name}": value for key, value in adjacent_correlations(channel).items()})
            if "entropy" not in skip:
                metrics.update(_histogram_measures(channel, levels, alpha, f"_{name}"))
    if "npcr" not in skip:
        changed, _ = codec.measured_payload(codec.encode(one_level_change(pixels)[None])[0])
        npcr, uaci = npcr_uaci(values, changed, levels)
        low, high = uaci_interval(values.size, alpha, levels)
        metrics.update({"npcr": npcr, "npcr_pass": float(npcr >= npcr_critical(values.size, alpha, levels)),
                        "uaci": uaci, "uaci_pass": float(low <= uaci <= high)})  # fmt: skip
    if "visual_ssim" not in skip:
        # The payload seen as a picture: labels spread over 0-255, bytes as they are.
        picture = np.rint(values * (255 / max(levels - 1, 1))).astype(np.uint8)
        if picture.ndim < original.ndim:
            picture = np.repeat(picture[..., None], original.shape[-1], axis=-1)
        metrics["visual_ssim"] = ssim(original, picture)
    if "key_sensitivity" not in skip:
        metrics.update(key_sensitivity(codec, pixels))
    bits = codec.key_space_bits()
    if bits is not None:
        metrics["key_space_bits"] = float(bits)
    found = criteria(values.size, levels, alpha) if levels is not None and levels >= 2 else {}
    return Security(metrics, skip, found)


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
