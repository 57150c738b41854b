"""The security measures against independent computations, their criteria at the sample size, and what
each method's payload is for them."""

from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import skimage.data
import skimage.measure

from imgvault.methods import load_pixels, make_codec
from imgvault.methods.criteria import chi2_critical, criteria, npcr_critical, uaci_interval, uniform_entropy
from imgvault.methods.encoding import measure
from imgvault.methods.security import (
    NOT_A_GRID,
    NOT_AN_IMAGE,
    RANDOMIZED,
    REAL_VALUED,
    adjacent_correlations,
    chi2,
    entropy,
    npcr_uaci,
)

CAMERA = (Path(skimage.data.__file__).parent / "camera.png").read_bytes()
ASTRONAUT = (Path(skimage.data.__file__).parent / "astronaut.png").read_bytes()

# -- the measures against independent computations ----------------------------------------------------


def test_entropy_chi2_and_correlations_equal_scikit_image_and_scipy():
    camera = skimage.data.camera()
    assert entropy(camera) == pytest.approx(skimage.measure.shannon_entropy(camera, base=2))
    counts = np.bincount(camera.ravel(), minlength=256)
    assert chi2(camera) == pytest.approx(scipy.stats.chisquare(counts).statistic)
    correlations = adjacent_correlations(camera)
    x = camera.astype(float)
    assert correlations["corr_h"] == pytest.approx(scipy.stats.pearsonr(x[:, :-1].ravel(), x[:, 1:].ravel())[0])
    assert correlations["corr_v"] == pytest.approx(scipy.stats.pearsonr(x[:-1].ravel(), x[1:].ravel())[0])
    assert correlations["corr_d"] == pytest.approx(scipy.stats.pearsonr(x[:-1, :-1].ravel(), x[1:, 1:].ravel())[0])
    assert all(value > 0.85 for value in correlations.values())
    labels = np.random.default_rng(0).integers(0, 8, (25, 25))
    assert entropy(labels, 8) == pytest.approx(skimage.measure.shannon_entropy(labels, base=2))
    assert entropy(labels, 8) <= 3


def test_identical_payloads_have_zero_npcr_and_uaci():
    image = np.arange(100, dtype=np.uint8).reshape(10, 10)
    assert npcr_uaci(image, image) == (0.0, 0.0)


# -- criteria at the sample size ------------------------------------------------------------------------


def wu_npcr(pixels, alpha, f=255):
    """Wu, Noonan & Agaian 2011, eq. (11), written out."""
    return (f - scipy.stats.norm.ppf(1 - alpha) * np.sqrt(f / pixels)) / (f + 1) * 100


def test_critical_values_match_wu_et_als_published_table():
    # Wu, Noonan & Agaian 2011, Tables 3 and 4, alpha = 0.05.
    assert npcr_critical(256 * 256) == pytest.approx(99.5693, abs=1e-4)
    assert uaci_interval(256 * 256) == pytest.approx((33.2824, 33.6447), abs=1e-4)
    assert npcr_critical(512 * 512) == pytest.approx(99.5893, abs=1e-4)
    assert uaci_interval(512 * 512) == pytest.approx((33.3730, 33.5541), abs=1e-4)
    for levels in (2, 8, 256):
        assert npcr_critical(625, levels=levels) == pytest.approx(wu_npcr(625, 0.05, levels - 1))


def test_the_criteria_at_25_by_25_are_far_from_the_infinite_sample_ideals():
    found = criteria(625, 256)
    assert found["entropy_expected"] == pytest.approx(7.671, abs=5e-4)
    assert found["entropy_sd"] == pytest.approx(0.028, abs=5e-4)
    assert found["npcr_critical"] == pytest.approx(99.199, abs=5e-4)
    assert (found["uaci_low"], found["uaci_high"]) == pytest.approx((31.61, 35.32), abs=5e-3)
    assert found["chi2_critical"] == pytest.approx(scipy.stats.chi2.ppf(0.95, 255))
    assert found["chi2_critical"] == pytest.approx(293.25, abs=0.01)


@pytest.mark.parametrize(("n", "levels"), [(625, 256), (625, 8), (2500, 2), (10_000, 256)])
def test_the_expected_entropy_and_its_sd_match_a_simulation_of_uniform_values(n, levels):
    rng = np.random.default_rng(n + levels)
    samples = [entropy(rng.integers(0, levels, n), levels) for _ in range(3000)]
    mean, sd = uniform_entropy(n, levels)
    assert mean == pytest.approx(np.mean(samples), abs=4 * sd / np.sqrt(3000))
    assert sd == pytest.approx(np.std(samples), rel=0.08)


def test_the_entropy_criterion_of_a_payload_size_is_computed_once_for_all_its_images():
    # The exact computation takes ~0.03 s, as long as measuring the image: a batch of 100 images of one
    # size must not repeat it for each.
    uniform_entropy.cache_clear()
    first = uniform_entropy(900, 8)
    for _ in range(3):
        pixels = load_pixels(CAMERA, size=30)
        measure(make_codec("kmeans", k=8).fit(pixels[None]), pixels, method="kmeans")
    assert uniform_entropy(900, 8) == first
    assert uniform_entropy.cache_info().misses == 1


def test_random_bytes_pass_every_test_at_their_size_most_of_the_time():
    rng = np.random.default_rng(2011)
    n, trials, passes = 625, 400, {"entropy": 0, "chi2": 0, "npcr": 0, "uaci": 0}
    found = criteria(n, 256)
    for _ in range(trials):
        first, second = (rng.integers(0, 256, (25, 25)) for _ in range(2))
        npcr, uaci = npcr_uaci(first, second)
        passes["entropy"] += found["entropy_low"] <= entropy(first) <= found["entropy_high"]
        passes["chi2"] += chi2(first) < chi2_critical()
        passes["npcr"] += npcr >= found["npcr_critical"]
        passes["uaci"] += found["uaci_low"] <= uaci <= found["uaci_high"]
    # Each test is built to pass a random payload 95 % of the time.
    assert all(0.9 <= count / trials <= 0.99 for count in passes.values()), passes


# -- what each method's payload is for the measures -----------------------------------------------------


def test_aes_is_randomized_so_npcr_and_uaci_are_not_applicable_and_never_a_pass():
    pixels = load_pixels(CAMERA, size=25)
    measured = measure(make_codec("aes").fit(pixels[None]), pixels, method="aes")
    assert measured.not_applicable["npcr"] == measured.not_applicable["uaci"] == RANDOMIZED
    assert not {"npcr", "npcr_pass", "uaci", "uaci_pass"} & set(measured.metrics)
    assert measured.criteria["entropy_expected"] == pytest.approx(7.671, abs=5e-4)
    assert abs(measured.metrics["entropy"] - 7.671) < 5 * 0.028


def test_aes_with_a_fixed_nonce_changes_one_byte_for_one_pixel_no_diffusion():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    pixels = skimage.data.camera()[:25, :25].copy()
    changed = pixels.copy()
    changed[12, 12] ^= 1
    aead, nonce = AESGCM(bytes(32)), bytes(12)
    first, second = (np.frombuffer(aead.encrypt(nonce, p.tobytes(), None)[:-16], np.uint8) for p in (pixels, changed))
    assert npcr_uaci(first, second)[0] == pytest.approx(100 / 625)  # exactly 1/N: CTR mode has no diffusion


def test_aes_on_rgb_gives_per_channel_values_beside_the_pooled_ones():
    pixels = load_pixels(ASTRONAUT, size=32, color="rgb")
    metrics = measure(make_codec("aes").fit(pixels[None]), pixels, method="aes").metrics
    for name in ("entropy", "chi2", "corr_h", "corr_v", "corr_d"):
        assert {f"{name}_r", f"{name}_g", f"{name}_b"} <= set(metrics), name
    assert metrics["entropy_r"] < metrics["entropy"]  # 1,024 bytes per channel against 3,072 pooled


def test_a_label_map_is_measured_on_its_k_levels_with_its_own_criteria():
    pixels = load_pixels(CAMERA, size=50)
    measured = measure(make_codec("kmeans", k=8).fit(pixels[None]), pixels, method="kmeans")
    metrics = measured.metrics
    assert measured.criteria["levels"] == 8 and measured.criteria["entropy_max"] == 3
    assert 0 < metrics["entropy"] <= 3 and metrics["entropy_pass"] == 0.0
    assert metrics["npcr"] < 1 and metrics["npcr_pass"] == 0.0 and metrics["uaci_pass"] == 0.0
    assert measured.criteria["npcr_critical"] == pytest.approx(wu_npcr(2500, 0.05, 7))
    assert all(metrics[c] > 0.85 for c in ("corr_h", "corr_v")) and metrics["visual_ssim"] > 0.5


def test_pca_scores_are_measured_as_data_not_as_their_drawing():
    pixels = load_pixels(CAMERA, size=25)
    codec = make_codec("pca", k=8).fit(pixels[None])
    measured = measure(codec, pixels, method="pca")
    for name in ("entropy", "chi2", "npcr", "uaci"):
        assert measured.not_applicable[name] == REAL_VALUED and name not in measured.metrics
    assert measured.not_applicable["visual_ssim"] == NOT_AN_IMAGE
    scores = codec.encode(pixels[None])[0]
    expected = scipy.stats.pearsonr(scores[:, :-1].ravel(), scores[:, 1:].ravel())[0]
    assert measured.metrics["corr_h"] == pytest.approx(expected, abs=1e-6)


def test_collection_pca_scores_have_no_adjacent_pixels():
    stack = np.stack([load_pixels(data, size=25) for data in (CAMERA, ASTRONAUT)] * 3)
    codec = make_codec("pca", k=4, fit="collection").fit(stack)
    measured = measure(codec, stack[0], method="pca")
    assert measured.not_applicable["corr_v"] == NOT_A_GRID and "corr_v" not in measured.metrics
