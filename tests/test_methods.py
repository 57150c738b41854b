"""The methods as estimators: round trips on real images, the k knob, fit scopes, metrics, persistence."""

import io

import numpy as np
import pytest
import skimage.data
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from imgvault.methods import (
    AESCodec,
    ArnoldCodec,
    ETCCodec,
    GMMCodec,
    KMeansCodec,
    LECodec,
    LogisticCodec,
    PCACodec,
    PECodec,
    load_pixels,
    make_codec,
    quality,
    to_uint8,
)
from imgvault.methods.payload import arrays_to_bytes, bytes_to_arrays, pack_labels, unpack_labels
from imgvault.store import IntegrityError, InvalidParameter


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


ASTRONAUT = png(skimage.data.astronaut())
COFFEE = png(skimage.data.coffee())
CAMERA = png(skimage.data.camera())
CHELSEA = png(skimage.data.chelsea())


def pixels(data=ASTRONAUT, color="gray", size=64):
    return load_pixels(data, size=size, color=color)[None]


ALL = ["pca", "kmeans", "gmm", "aes", "le", "etc", "pe", "logistic", "arnold"]
LEARNED = ("pca", "kmeans", "gmm")  # k is what they learn; the others' knob, if any, keeps its default here


def knob(method: str, k: int):
    return k if method in LEARNED else None


# -- preprocessing -------------------------------------------------------------------------------------


def test_load_pixels_gives_size_by_size_floats_in_0_1_gray_or_rgb():
    gray, rgb = load_pixels(ASTRONAUT), load_pixels(ASTRONAUT, color="rgb")
    assert gray.shape == (100, 100) and rgb.shape == (100, 100, 3)
    assert gray.dtype == np.float64 and gray.min() >= 0 and gray.max() <= 1
    assert np.array_equal(to_uint8(gray) / 255.0, gray)


def test_an_image_already_at_the_size_is_not_resampled():
    camera = skimage.data.camera()[:100, :100]
    assert np.array_equal(to_uint8(load_pixels(png(camera), size=100)), camera)


def test_exif_orientation_is_applied():
    tall = np.zeros((40, 20), dtype=np.uint8)
    tall[:10] = 255  # white at the top
    image = Image.fromarray(tall)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif)
    shown = to_uint8(load_pixels(buffer.getvalue(), size=40))
    # Displayed upright, the white band is on the right side, not at the top.
    assert shown[:, -8:].mean() > 200 and shown[:8, :].mean() < 128


def test_sixteen_bit_images_are_scaled_not_clipped():
    camera = skimage.data.camera()[:64, :64]
    wide = png(camera.astype(np.uint16) * 257)
    assert np.abs(to_uint8(load_pixels(wide, size=64)).astype(int) - camera).max() <= 1


def test_bad_size_and_color_are_clear_errors():
    with pytest.raises(InvalidParameter, match="size must be a whole number from 11"):
        load_pixels(ASTRONAUT, size=4)
    with pytest.raises(InvalidParameter, match="color must be one of gray, rgb"):
        load_pixels(ASTRONAUT, color="cmyk")


# -- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("color", ["gray", "rgb"])
@pytest.mark.parametrize("method", ALL)
def test_every_method_round_trips_a_real_image(method, color):
    X = pixels(COFFEE, color)
    codec = make_codec(method, k=knob(method, 8)).fit(X)
    reconstruction = codec.decode(codec.encode(X))
    assert reconstruction.shape == X.shape
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    metrics = quality(to_uint8(X[0]), to_uint8(reconstruction[0]))
    assert metrics["ssim"] > 0.5, metrics


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_pca_with_k_equal_to_size_and_aes_reconstruct_exactly(color):
    X = pixels(ASTRONAUT, color, size=64)
    for codec in (PCACodec(k=64), AESCodec()):
        codec.fit(X)
        assert np.array_equal(to_uint8(codec.decode(codec.encode(X))), to_uint8(X)), type(codec).__name__


@pytest.mark.parametrize("codec_class", [KMeansCodec, GMMCodec])
def test_ssim_rises_with_k_on_a_natural_image(codec_class):
    X = pixels(CHELSEA, size=64)
    ssim = [
        quality(to_uint8(X[0]), to_uint8(codec.decode(codec.encode(X))[0]))["ssim"]
        for codec in (codec_class(k=k, random_state=0).fit(X) for k in (2, 4, 8, 16))
    ]
    assert ssim == sorted(ssim) and ssim[-1] - ssim[0] > 0.2, ssim


def test_kmeans_on_rgb_is_colour_quantisation_to_k_colours():
    X = pixels(COFFEE, "rgb")
    codec = KMeansCodec(k=6, random_state=0).fit(X)
    colours = np.unique(codec.decode(codec.encode(X)).reshape(-1, 3), axis=0)
    assert codec.centres_.shape == (6, 3) and len(colours) <= 6


# -- the k knob --------------------------------------------------------------------------------------


def test_k_beyond_what_the_data_allows_is_an_error_naming_the_limit():
    X = pixels(size=32)
    with pytest.raises(InvalidParameter, match="k can be at most 32"):
        PCACodec(k=33).fit(X)
    two_values = (np.arange(32 * 32).reshape(1, 32, 32) % 2) / 1.0
    with pytest.raises(InvalidParameter, match=r"only 2 distinct pixel values.*at most 2"):
        KMeansCodec(k=3).fit(two_values)
    with pytest.raises(InvalidParameter, match="only 2 distinct pixel values"):
        GMMCodec(k=5).fit(two_values)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidParameter, match="k must be a whole number of at least 1"):
            KMeansCodec(k=bad).fit(X)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(InvalidParameter, match=r"unknown method 'dct'; the methods are: pca, .*, arnold"):
        make_codec("dct")


# -- fit scope: one model for a collection -----------------------------------------------------------------


def collection(size=32, color="gray"):
    return np.concatenate([pixels(d, color, size) for d in (ASTRONAUT, COFFEE, CAMERA, CHELSEA)])


def test_collection_pca_learns_eigen_images_and_k_is_at_most_the_number_of_images():
    X = collection()
    codec = make_codec("pca", k=4, fit="collection").fit(X)
    assert codec.components_.shape == (4, 32 * 32)
    assert codec.encode(X).shape == (4, 4)
    # As many eigen-images as images: every image of the collection is rebuilt exactly.
    assert np.array_equal(to_uint8(codec.decode(codec.encode(X))), to_uint8(X))
    with pytest.raises(InvalidParameter, match=r"whole image.*at most 4"):
        make_codec("pca", k=5, fit="collection").fit(X)


def test_a_collection_palette_and_a_collection_key_serve_every_image():
    X = collection(color="rgb")
    palette = make_codec("kmeans", k=8, fit="collection").fit(X)
    assert palette.encode(X).shape == (4, 32, 32)
    aes = make_codec("aes", fit="collection").fit(X)
    assert np.array_equal(to_uint8(aes.decode(aes.encode(X))), to_uint8(X))


# -- the estimator contract --------------------------------------------------------------------------


ESTIMATORS = [PCACodec(), KMeansCodec(), GMMCodec(), AESCodec(), LECodec(), ETCCodec(), PECodec(), LogisticCodec(),
              ArnoldCodec()]  # fmt: skip


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    ],
    ids=lambda c: c.__name__,
)
def test_scikit_learn_estimator_checks_that_apply(estimator, check):
    # The other checks feed (n_samples, n_features) tables; these methods take stacks of images.
    check(type(estimator).__name__, clone(estimator))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_fit_returns_self_sets_only_underscore_attributes_and_keeps_params(estimator):
    X = pixels(size=32)
    estimator = clone(estimator)
    params = estimator.get_params()
    before = set(vars(estimator))
    assert estimator.fit(X) is estimator
    assert estimator.get_params() == params
    assert all(name.endswith("_") or name.startswith("_") for name in set(vars(estimator)) - before)
    estimator_checks.check_parameters_default_constructible(type(estimator).__name__, clone(estimator))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_an_unfitted_method_refuses_to_encode(estimator):
    with pytest.raises(NotFittedError):
        clone(estimator).encode(pixels(size=32))


@pytest.mark.parametrize("codec_class", [KMeansCodec, GMMCodec, PCACodec])
def test_random_state_makes_fits_reproducible(codec_class):
    X = pixels(CHELSEA, "rgb", size=32)
    first, second = (codec_class(k=5, random_state=7).fit(X) for _ in range(2))
    assert first.model_to_bytes() == second.model_to_bytes()


def test_aes_draws_a_new_key_every_fit_and_a_wrong_key_is_detected():
    X = pixels(size=32)
    one, other = AESCodec().fit(X), AESCodec().fit(X)
    assert not np.array_equal(one.key_, other.key_)
    with pytest.raises(IntegrityError, match="wrong key"):
        other.decode(one.encode(X))


# -- metrics -----------------------------------------------------------------------------------------


def test_metrics_equal_scikit_image_on_the_same_arrays():
    X = pixels(ASTRONAUT, "rgb")
    codec = KMeansCodec(k=4, random_state=0).fit(X)
    original, reconstruction = to_uint8(X[0]), to_uint8(codec.decode(codec.encode(X))[0])
    ours = quality(original, reconstruction)
    assert ours["mse"] == pytest.approx(mean_squared_error(original, reconstruction))
    assert ours["psnr"] == pytest.approx(peak_signal_noise_ratio(original, reconstruction, data_range=255))
    wang = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    assert ours["ssim"] == pytest.approx(
        structural_similarity(original, reconstruction, data_range=255, channel_axis=-1, **wang)
    )
    assert quality(original, original) == {"mse": 0.0, "psnr": float("inf"), "ssim": 1.0}


def wang_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM written out from Wang et al. 2004, eqs. (13)-(14): an 11x11 Gaussian window of sigma 1.5,
    population moments, C1 = (0.01 L)^2 and C2 = (0.03 L)^2; the mean over the windows inside the image."""
    from scipy.ndimage import correlate

    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    x, y = x.astype(np.float64), y.astype(np.float64)

    def mean(a):
        return correlate(a, window)[5:-5, 5:-5]

    mx, my = mean(x), mean(y)
    vx, vy, cxy = mean(x * x) - mx**2, mean(y * y) - my**2, mean(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def test_ssim_is_wang_et_als_with_a_gaussian_window_and_differs_from_scikit_images_default():
    X = pixels(ASTRONAUT)
    codec = KMeansCodec(k=4, random_state=0).fit(X)
    original, reconstruction = to_uint8(X[0]), to_uint8(codec.decode(codec.encode(X))[0])
    assert quality(original, reconstruction)["ssim"] == pytest.approx(wang_ssim(original, reconstruction), abs=1e-9)
    default = structural_similarity(original, reconstruction, data_range=255)
    assert abs(default - wang_ssim(original, reconstruction)) > 0.005


def test_metrics_refuse_images_on_different_scales():
    original = to_uint8(pixels()[0])
    with pytest.raises(ValueError, match=r"8-bit images \(uint8, 0-255\); the reconstructed image is float64"):
        quality(original, original / 255.0)
    with pytest.raises(ValueError, match="the original image is float64"):
        quality(original / 255.0, original / 255.0)


def test_the_original_studys_scale_mismatch_makes_mse_about_mean_square_whatever_the_method():
    # The study compared a 0-255 original with a 0-1 reconstruction. Reproduced without our guard:
    original = to_uint8(load_pixels(CAMERA)).astype(np.float64)
    for method in ("pca", "kmeans", "gmm"):
        codec = make_codec(method, k=8).fit(original[None] / 255)
        reconstruction = codec.decode(codec.encode(original[None] / 255))[0]  # 0-1 scale
        mismatched = np.mean((original - reconstruction) ** 2)
        assert mismatched == pytest.approx(np.mean(original**2), rel=0.01)


# -- payloads ----------------------------------------------------------------------------------------


@given(k=st.integers(1, 600), data=st.data())
def test_label_packing_round_trips_with_ceil_log2_k_bits(k, data):
    count = data.draw(st.integers(1, 300))
    labels = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=count, max_size=count)))
    packed = pack_labels(labels, k)
    assert len(packed) == -(-count * max(1, int(np.ceil(np.log2(k)))) // 8)
    assert np.array_equal(unpack_labels(packed, k, (count,)), labels)


@pytest.mark.parametrize("method", ALL)
def test_a_model_reloaded_from_its_bytes_decodes_and_encodes_identically(method):
    X = pixels(COFFEE, "rgb", size=32)
    codec = make_codec(method, k=knob(method, 6)).fit(X)
    encoded = codec.encode(X)
    reloaded = type(codec).from_model_bytes(codec.get_params(), codec.model_to_bytes())
    payload = codec.encoded_to_bytes(encoded[0])
    assert np.array_equal(reloaded.decode(reloaded.encoded_from_bytes(payload)[None]), codec.decode(encoded))
    if method != "aes":  # AES draws a fresh nonce for every encryption
        assert np.array_equal(reloaded.encode(X), encoded)


def test_model_payloads_never_unpickle():
    smuggled = io.BytesIO()
    np.savez(smuggled, centres_=np.array([{"x": 1}], dtype=object), image_shape_=np.array([2, 2]))
    with pytest.raises(IntegrityError, match="not a valid array archive"):
        bytes_to_arrays(smuggled.getvalue(), ("centres_", "image_shape_"))
    with pytest.raises(TypeError, match="only numbers"):
        arrays_to_bytes({"x": np.array(["text"])})


def test_pca_of_a_blank_image_reproduces_it_without_a_warning():
    import warnings

    from imgvault.methods import make_codec

    blank = np.full((1, 16, 16), 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fit, k in (("image", 4), ("collection", 1)):
            codec = make_codec("pca", k=k, fit=fit).fit(blank)
            assert np.allclose(codec.decode(codec.encode(blank)), blank)
