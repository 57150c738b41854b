"""What a truly random payload of N values scores at that N: the criteria the security measures are held to.

The literature's ideals (entropy 8 bits, NPCR 99.61 %, UACI 33.46 %) are limits for N -> infinity. An
imgvault payload has 625 to 30,000 values, where a perfect cipher scores visibly less: the expected entropy
of 625 uniform bytes is 7.671 bits, not 8. Every criterion here is computed for the N and the number of
levels in use (256 for bytes, k for label maps), at a significance level ``alpha`` (0.05 by default):

- entropy: the exact mean and standard deviation of the histogram entropy of N uniform values (from the
  binomial counts of the multinomial histogram), and the interval mean +- z(1 - alpha/2) sd;
- chi-square: the (1 - alpha) quantile of chi-square with levels - 1 degrees of freedom;
- NPCR and UACI: Wu, Noonan & Agaian, "NPCR and UACI Randomness Tests for Image Encryption" (2011),
  eqs. (8)-(13), with F = levels - 1 the largest value.
"""

import functools
import math

import numpy as np

ALPHA = 0.05


# Every image of a batch has the same payload size, and the exact sum costs as much as measuring one image.
@functools.lru_cache(maxsize=256)
def uniform_entropy(n: int, levels: int = 256) -> tuple[float, float]:
    """Mean and standard deviation (bits) of the plug-in entropy of ``n`` values drawn uniformly from ``levels``.

    Exact: each histogram count is Binomial(n, 1/levels), and a pair of counts is a binomial and, given it,
    Binomial(n - a, 1/(levels - 1)); tails below 1e-13 are left out.
    """
    from scipy.stats import binom

    if levels < 2 or n < 1:
        raise ValueError(f"need at least 2 levels and 1 value, not levels={levels}, n={n}")
    p = 1 / levels
    counts = np.arange(int(binom.ppf(1e-13, n, p)), int(binom.isf(1e-13, n, p)) + 1)
    if len(counts) > 4000:
        # Large n: the asymptotic form (the plug-in entropy is log2 levels - chi-square/(2 n ln 2)) is exact
        # to far below the sd, and the pairwise sum would not fit in memory.
        scale = 2 * n * math.log(2)
        return math.log2(levels) - (levels - 1) / scale, math.sqrt(2 * (levels - 1)) / scale
    share = counts / n
    g = np.where(counts > 0, share * np.log2(np.where(counts > 0, share, 1)), 0.0)  # one bin's -entropy term
    pmf = binom.pmf(counts, n, p)
    e1, e2 = float(pmf @ g), float(pmf @ g**2)
    if levels == 2:
        joint = float(pmf @ (g * np.where(counts > 0, ((n - counts) / n) * np.log2(np.maximum(n - counts, 1) / n), 0)))
    else:
        given = binom.pmf(counts[None, :], n - counts[:, None], 1 / (levels - 1))
        joint = float(pmf @ (g * (given @ g)))
    variance = levels * (e2 - e1**2) + levels * (levels - 1) * (joint - e1**2)
    return -levels * e1, math.sqrt(max(variance, 0.0))


def entropy_interval(n: int, levels: int = 256, alpha: float = ALPHA) -> tuple[float, float]:
    """The entropy interval (bits) that ``n`` uniform values fall in with probability about 1 - alpha."""
    from scipy.stats import norm

    mean, sd = uniform_entropy(n, levels)
    half = norm.ppf(1 - alpha / 2) * sd
    return mean - half, min(mean + half, math.log2(levels))


def chi2_critical(alpha: float = ALPHA, levels: int = 256) -> float:
    """The chi-square value a uniform histogram of ``levels`` bins stays under with probability 1 - alpha."""
    from scipy.stats import chi2

    return float(chi2.ppf(1 - alpha, levels - 1))


def npcr_critical(pixels: int, alpha: float = ALPHA, levels: int = 256) -> float:
    """NPCR (%) below which two images of ``pixels`` values fail Wu et al.'s randomness test."""
    from scipy.stats import norm

    f = levels - 1
    return float((f - norm.ppf(1 - alpha) * math.sqrt(f / pixels)) / (f + 1) * 100)


def uaci_interval(pixels: int, alpha: float = ALPHA, levels: int = 256) -> tuple[float, float]:
    """The UACI interval (%) that two random images of ``pixels`` values fall in with probability 1 - alpha."""
    from scipy.stats import norm

    f = levels - 1
    mean = (f + 2) / (3 * f + 3)
    variance = (f + 2) * (f**2 + 2 * f + 3) / (18 * (f + 1) ** 2 * pixels * f)
    half = norm.ppf(1 - alpha / 2) * math.sqrt(variance)
    return float((mean - half) * 100), float((mean + half) * 100)


def criteria(n: int, levels: int, alpha: float = ALPHA) -> dict[str, float]:
    """Every criterion for a payload of ``n`` values on ``levels`` levels, by the names runs log them under
    (``criterion/<name>``)."""
    mean, sd = uniform_entropy(n, levels)
    low, high = entropy_interval(n, levels, alpha)
    uaci_low, uaci_high = uaci_interval(n, alpha, levels)
    return {"n": n, "levels": levels, "alpha": alpha, "entropy_max": math.log2(levels), "entropy_expected": mean,
            "entropy_sd": sd, "entropy_low": low, "entropy_high": high, "chi2_critical": chi2_critical(alpha, levels),
            "npcr_critical": npcr_critical(n, alpha, levels), "uaci_low": uaci_low, "uaci_high": uaci_high}  # fmt: skip
