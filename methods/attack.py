"""A known-plaintext learning attack: can a model learn to turn "encrypted images" back into images?

The attacker holds pairs (encrypted image, original) for 70 % of a collection and learns a mapping with
two scikit-learn regressors: a linear one (Ridge, on standardised features) and a non-linear one
(k-nearest neighbours). Each reconstructs the held-out 30 % from their encrypted images alone. The better
one is reported, beside a baseline that ignores the encrypted image and predicts the mean training image.
Features are the encoded payload's numbers as stored (PCA scores, labels, ciphertext bytes).
"""

import numpy as np

from imgvault.store.errors import InvalidParameter

MIN_IMAGES = 10
TEST_FRACTION = 0.3


def check_attack_size(n_images: int, collection: str = "the collection") -> None:
    if n_images < MIN_IMAGES:
        raise InvalidParameter(
            f"the learning attack needs at least {MIN_IMAGES} images (7 to train on, 3 to attack); "
            f"{collection} has {n_images}"
        )


def learning_attack(encoded: list[np.ndarray], originals: list[np.ndarray], reconstructions: list[np.ndarray],
                    seed: int = 0) -> dict:  # fmt: skip
    """``attack_ssim`` and ``attack_psnr`` of the better attacker on held-out images, with
    ``attack_baseline_ssim`` / ``attack_baseline_psnr`` (the mean training image), ``attack_model``,
    ``attack_decoder_ssim`` (what the key holder's own decoding gets on the same held-out images) and
    ``attack_psnr_vs_decoder`` (PSNR between the attacker's and the key holder's reconstructions). An
    attacker near the decoder has undone the "encryption"; one near the baseline has learnt nothing.

    ``encoded``: one encoded array per image; ``originals``: the uint8 images they came from;
    ``reconstructions``: their uint8 decodings with the right key.
    """
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .metrics import quality

    check_attack_size(len(encoded))
    X = np.stack([np.asarray(e, dtype=np.float64).ravel() for e in encoded])
    Y = np.stack([o.astype(np.float64).ravel() / 255 for o in originals])
    shape = originals[0].shape
    indices = np.arange(len(X))
    train_x, test_x, train_y, test_y, _, test_index = train_test_split(X, Y, indices, test_size=TEST_FRACTION,
                                                                      random_state=seed)  # fmt: skip
    attackers = {
        "ridge": make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
        "knn": KNeighborsRegressor(n_neighbors=min(3, len(train_x))),
    }

    def score(predicted: np.ndarray) -> tuple[float, float]:
        results = [
            quality(_to_uint8(truth, shape), _to_uint8(guess, shape)) for truth, guess in zip(test_y, predicted,
                                                                                                strict=True)
        ]  # fmt: skip
        psnr = [r["psnr"] for r in results if np.isfinite(r["psnr"])]
        return float(np.mean([r["ssim"] for r in results])), float(np.mean(psnr)) if psnr else float("inf")

    predictions = {name: model.fit(train_x, train_y).predict(test_x) for name, model in attackers.items()}
    scores = {name: score(predicted) for name, predicted in predictions.items()}
    best = max(scores, key=lambda name: scores[name][0])
    # How close the attacker comes to the key holder's own decoding (>= 30 dB: it has, in effect, the key).
    agreement = [quality(reconstructions[i], _to_uint8(guess, shape))["psnr"]
                 for i, guess in zip(test_index, predictions[best], strict=True)]  # fmt: skip
    finite = [a for a in agreement if np.isfinite(a)]
    baseline = score(np.repeat(train_y.mean(axis=0, keepdims=True), len(test_y), axis=0))
    decoder = float(np.mean([quality(originals[i], reconstructions[i])["ssim"] for i in test_index]))
    return {
        "attack_ssim": scores[best][0],
        "attack_decoder_ssim": decoder,
        "attack_psnr_vs_decoder": float(np.mean(finite)) if finite else float("inf"),
        "attack_psnr": scores[best][1],
        "attack_model": best,
        "attack_baseline_ssim": baseline[0],
        "attack_baseline_psnr": baseline[1],
        "attack_test_images": len(test_y),
    }


def _to_uint8(flat: np.ndarray, shape) -> np.ndarray:
    return np.clip(np.rint(flat.reshape(shape) * 255), 0, 255).astype(np.uint8)
