"""A configuration's per-image values and their summary: the metrics of its run."""

import math

import numpy as np

SECURITY = ("entropy", "chi2", "corr_h", "corr_v", "corr_d", "npcr", "uaci", "visual_ssim", "key_ssim",
            "key_sensitivity", "key_sensitivity_bits", "key_space_bits")  # fmt: skip
QUALITY = ("mse", "psnr", "ssim", "bpp")
COSTS = ("bpp_with_model", "compression_ratio", "encode_seconds", "decode_seconds", "fit_seconds")
PASSED = ("entropy_pass", "chi2_pass", "npcr_pass", "uaci_pass")
CHANNELS = tuple(f"{name}_{c}" for name in ("entropy", "chi2", "corr_h", "corr_v", "corr_d") for c in "rgb")
#: every per-image value a run summarises (its mean under the value's own name)
SUMMARISED = (*QUALITY, *COSTS, *SECURITY, *PASSED, *CHANNELS)


def summarised_values(metrics: list[dict]) -> dict[str, list]:
    """Each summarised measure's per-image values (``metrics``: each image's), the measures no image has left out."""
    values = {name: [one.get(name) for one in metrics] for name in SUMMARISED}
    return {name: series for name, series in values.items() if any(value is not None for value in series)}


def summarise(values: dict[str, list[float]]) -> dict[str, float]:
    """Each metric's mean under its own name (``ssim``), and ``_median``, ``_std``, ``_min``, ``_max``, over
    its finite values; a pass/fail flag ``<measure>_pass`` gives ``<measure>_pass_rate`` only.

    An infinite PSNR (an exact reconstruction) is left out of the PSNR figures and counted by
    ``exact_fraction`` instead: MLflow would store it as 1.8e308 and ruin every mean.
    """
    out = {}
    for name, series in values.items():
        finite = np.array([v for v in series if v is not None and math.isfinite(v)], dtype=np.float64)
        if not finite.size:
            continue
        if name.endswith("_pass"):
            out[f"{name}_rate"] = float(finite.mean())
            continue
        out[name] = float(finite.mean())
        for stat, function in (("median", np.median), ("std", np.std), ("min", np.min), ("max", np.max)):
            out[f"{name}_{stat}"] = float(function(finite))
    mse = values.get("mse", [])
    if mse:
        out["exact_fraction"] = float(np.mean([v == 0 for v in mse]))
    return out
