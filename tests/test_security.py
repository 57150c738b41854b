"""The security measures against their theory, and on real images."""

import numpy as np
import pytest

from imgvault.methods.security import (
    adjacent_correlations,
    chi2,
    chi2_critical,
    entropy,
    npcr_critical,
    npcr_uaci,
    uaci_interval,
)


def test_npcr_and_uaci_of_two_independent_random_images_pass_wu_et_als_tests():
    rng = np.random.default_rng(2011)
    for shape in ((100, 100), (256, 256)):
        first, second = (rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2))
        npcr, uaci = npcr_uaci(first, second)
        pixels = shape[0] * shape[1]
        low, high = uaci_interval(pixels)
        assert npcr >= npcr_critical(pixels)
        assert low <= uaci <= high


def test_critical_values_match_the_published_table_for_256_by_256():
    # Wu, Noonan & Agaian 2011, Tables: alpha = 0.05, 256x256.
    assert npcr_critical(256 * 256) == pytest.approx(99.5693, abs=1e-4)
    assert uaci_interval(256 * 256) == pytest.approx((33.2824, 33.6447), abs=1e-4)


def test_identical_images_have_zero_npcr_and_uaci():
    image = np.arange(100, dtype=np.uint8).reshape(10, 10)
    assert npcr_uaci(image, image) == (0.0, 0.0)


def test_random_bytes_have_the_entropy_and_uniformity_of_a_cipher():
    noise = np.random.default_rng(7).integers(0, 256, (100, 100), dtype=np.uint8)
    # The expected entropy of 10,000 uniform samples is 8 - 255 / (2 * 10000 * ln 2) = 7.9816.
    assert entropy(noise) == pytest.approx(7.9816, abs=0.006)
    assert chi2(noise) < chi2_critical() == pytest.approx(293.25, abs=0.01)
    assert all(abs(value) < 0.05 for value in adjacent_correlations(noise).values())


def test_a_constant_image_has_no_entropy_and_a_natural_image_high_correlation():
    import skimage.data

    assert entropy(np.zeros((10, 10), dtype=np.uint8)) == 0.0
    correlations = adjacent_correlations(skimage.data.camera())
    assert all(value > 0.85 for value in correlations.values())
