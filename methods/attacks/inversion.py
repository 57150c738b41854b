"""A known-plaintext learning attack: can a model learn to turn "encrypted images" back into images?

The attacker holds pairs (encrypted image, original) for 70 % of a collection and learns a mapping from
the encoded payload's numbers as stored (PCA scores, labels, ciphertext bytes) to the pixels. Two
attackers, each with its hyperparameters, are tried: ridge regression (alpha) and k-nearest neighbours
(neighbours, weighting), both on standardised features. There is no perceptron among them: one on the whole
images (a hidden layer of 64, scikit-learn's defaults) takes most of the search's time and loses every
cross-validation to ridge on the threat matrix's ciphers; one on the images' principal coordinates costs
little and often wins by squared error, but by shrinking towards the mean image, so that the SSIM the
attack reports gains less than ridge's.

Which attacker and which hyperparameters is decided by 3-fold cross-validation inside the training part
only; the held-out 30 % is touched once, to score the chosen attacker.

This is repeated over ``splits`` random splits (10 by default). Each split reports the attacker's SSIM on
its held-out images, the baseline's (the mean training image, which ignores the encrypted image) and the
key holder's (decoding the same held-out images with a model fitted on the training part only, when the
model is shared by the collection). The gain over the baseline and the gap to the key holder are averaged
over the splits, with 95 % confidence intervals that use Nadeau & Bengio's (2003) correction for the overlap
of the training parts: variance x (1/J + n_test/n_train), t with J - 1 degrees of freedom.
"""

import math
from collections import Counter
from collections.abc import Callable

import numpy as np

from imgvault.basics.errors import InvalidParameter

from .splits import each_split

MIN_IMAGES = 10
TEST_FRACTION = 0.3
SPLITS = 10
CONFIDENCE = 0.95

#: For one split's training indices: every image's encoding and the key holder's uint8 decoding of it,
#: with the model fitted on those training images (or each image's own model).
Encodings = Callable[[np.ndarray], tuple[list[np.ndarray], list[np.ndarray]]]


def check_attack_size(n_images: int, collection: str = "the collection") -> None:
    if n_images < MIN_IMAGES:
        raise InvalidParameter(
            f"the learning attack needs at least {MIN_IMAGES} images (7 to train on, 3 to attack); "
            f"{collection} has {n_images}"
        )


#: The candidates, in the order a grid search over them would list them (which decides ties): ridge
#: regression at each penalty, then k nearest neighbours at each (neighbours, weighting).
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 7))
NEIGHBOURS = (1, 3, 5, 10)
WEIGHTINGS = ("uniform", "distance")
INNER_FOLDS = 3


def _candidates(n_train: int) -> list[tuple[str, dict]]:
    """Every (attacker, hyperparameters) the cross-validation chooses from, for ``n_train`` training images."""
    # The fewest training images an inner fold has (KFold's largest test fold is the ceiling of n / inner):
    # no candidate may ask for more neighbours than that.
    fewest = max(1, n_train - -(-n_train // INNER_FOLDS))
    neighbours = sorted({min(n, fewest) for n in NEIGHBOURS})
    return ([("ridge", {"alpha": a}) for a in RIDGE_ALPHAS]
            + [("knn", {"n_neighbors": n, "weights": w}) for n in neighbours for w in WEIGHTINGS])  # fmt: skip


class DualRidge:
    """Ridge regression with an unpenalised intercept, solved in the dual, for every penalty at once.

    The attacker's features are whole encrypted images (tens of thousands of numbers) and its targets whole
    images too, from a few dozen training images. scikit-learn's ``Ridge`` solves such a problem in the dual
    as well, but then forms the primal coefficients, a features x targets matrix (27 648 x 27 648 floats,
    6 GB, for 96x96 RGB), and multiplies with it to predict: that was nearly all the learning attack's time.
    The prediction needs only the n x n Gram matrix of the centred training features: with its
    eigendecomposition ``K = V diag(w) V'``, the dual coefficients for a penalty ``a`` are
    ``V diag(1 / (w + a)) V' Yc``, so one decomposition serves every penalty. Directions of zero eigenvalue
    contribute exactly nothing to a prediction (a new point's kernel row is orthogonal to them), so they are
    dropped rather than divided by ``a``. The predictions are scikit-learn's, up to rounding.
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray):
        self.x_mean, self.y_mean = X.mean(axis=0), Y.mean(axis=0)
        self.centred = X - self.x_mean
        eigenvalues, vectors = np.linalg.eigh(self.centred @ self.centred.T)
        keep = eigenvalues > max(float(eigenvalues[-1]), 0.0) * len(X) * np.finfo(np.float64).eps
        self.eigenvalues, self.vectors = eigenvalues[keep], vectors[:, keep]
        self.projected_targets = self.vectors.T @ (Y - self.y_mean)

    def predict(self, X: np.ndarray, alphas) -> list[np.ndarray]:
        """The predictions for ``X`` at each penalty of ``alphas``."""
        kernel = ((X - self.x_mean) @ self.centred.T) @ self.vectors
        return [(kernel / (self.eigenvalues + alpha)) @ self.projected_targets + self.y_mean for alpha in alphas]


class Neighbours:
    """k-nearest-neighbour regression for every (neighbours, weighting) at once, on one distance matrix.

    scikit-learn's ``KNeighborsRegressor`` with distance weighting loops over the targets in Python (27 648
    of them for a 96x96 RGB image) and recomputes the distances for every candidate; here the distances are
    computed once per fold (as scikit-learn does for dense data: ``|a|^2 - 2 a.b + |b|^2``, then the square
    root), and every candidate's prediction is a running sum over the nearest images (the first ``n``
    neighbours' sum is the first ``m``'s plus the next ``n - m``), with scikit-learn's weighting
    (``1 / distance``; a query at distance 0 from training images takes their mean alone: the nearest
    neighbour is then one of them, whatever the number of neighbours).
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray, test_X: np.ndarray, counts):
        counts = sorted(set(counts))
        squared = (test_X**2).sum(axis=1)[:, None] - 2 * test_X @ X.T + (X**2).sum(axis=1)[None, :]
        order = np.argsort(squared, axis=1, kind="stable")[:, : counts[-1]]
        distances = np.sqrt(np.maximum(np.take_along_axis(squared, order, axis=1), 0))
        with np.errstate(divide="ignore"):
            weights = 1.0 / distances
        exact = np.isinf(weights).any(axis=1)
        weights[exact] = np.isinf(weights[exact])
        self.sums: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        uniform = weighted = 0.0
        for start, stop in zip([0, *counts], counts, strict=False):
            near = Y[order[:, start:stop]]  # (queries, neighbours, targets)
            uniform = uniform + near.sum(axis=1)
            weighted = weighted + np.einsum("qn,qnt->qt", weights[:, start:stop], near)
            self.sums[stop, "uniform"] = uniform, np.full((len(near), 1), float(stop))
            self.sums[stop, "distance"] = weighted, weights[:, :stop].sum(axis=1)[:, None]

    def predict(self, n_neighbors: int, weights: str) -> np.ndarray:
        total, count = self.sums[n_neighbors, weights]
        return total / count


def _predict(candidates: list[tuple[str, dict]], train_X, train_Y, test_X) -> list[np.ndarray]:
    """Each candidate fitted on (standardised) ``train_X`` -> ``train_Y``, its predictions for ``test_X``.

    The features are standardised on ``train_X`` (as the search's pipeline did), once for all candidates;
    the ridge candidates share one :class:`DualRidge`, the neighbour candidates one :class:`Neighbours`.
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_X)
    train_X, test_X = scaler.transform(train_X), scaler.transform(test_X)
    ridge_alphas = [params["alpha"] for name, params in candidates if name == "ridge"]
    ridge = iter(DualRidge(train_X, train_Y).predict(test_X, ridge_alphas) if ridge_alphas else ())
    counts = [params["n_neighbors"] for name, params in candidates if name == "knn"]
    neighbours = Neighbours(train_X, train_Y, test_X, counts) if counts else None
    out = []
    for name, params in candidates:
        if name == "ridge":
            out.append(next(ridge))
        else:
            out.append(neighbours.predict(**params))
    return out


def search(X: np.ndarray, Y: np.ndarray, test_X: np.ndarray, seed: int) -> tuple[str, np.ndarray]:
    """The attacker chosen by 3-fold cross-validation on (``X``, ``Y``), refitted on all of it: its name
    and its predictions for ``test_X``.

    The same choice as scikit-learn's ``GridSearchCV`` over :func:`_candidates` with a standardising
    pipeline, the same folds (``KFold(3, shuffle=True, random_state=seed)``) and the same score (the mean
    squared error over the folds' held-out images, ties going to the first candidate), computed with a
    shared standardisation and ridge decomposition per fold instead of one pipeline fit per candidate.
    """
    from sklearn.model_selection import KFold
    from threadpoolctl import threadpool_limits

    candidates = _candidates(len(X))
    errors = np.zeros((INNER_FOLDS, len(candidates)))
    # One BLAS thread: the small fits of the search run many times slower when threads fight for cores.
    with threadpool_limits(1):
        for f, (inner, held) in enumerate(KFold(INNER_FOLDS, shuffle=True, random_state=seed).split(X)):
            guesses = _predict(candidates, X[inner], Y[inner], X[held])
            errors[f] = [np.mean((guess - Y[held]) ** 2) for guess in guesses]
        best = int(np.argmin(errors.mean(axis=0)))
        return candidates[best][0], _predict([candidates[best]], X, Y, test_X)[0]


def interval(values: list[float], n_train: int, n_test: int) -> tuple[float, float, float]:
    """Mean and corrected 95 % confidence interval of one quantity over the splits."""
    from scipy.stats import t

    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(t.ppf(0.5 + CONFIDENCE / 2, len(x) - 1)) * math.sqrt(x.var(ddof=1) * (1 / len(x) + n_test / n_train))
    return mean, mean - half, mean + half


def learning_attack(originals: list[np.ndarray], encodings: Encodings, *, splits: int = SPLITS,
                    seed: int = 0) -> dict:  # fmt: skip
    """The attack over ``splits`` random 70/30 splits; the run metrics it gives, by name.

    ``originals``: the uint8 images; ``encodings(train_index)``: see :data:`Encodings`. Returns
    ``attack_ssim``, ``attack_baseline_ssim``, ``attack_key_holder_ssim`` and ``attack_psnr_vs_key_holder``
    (means over splits of the held-out means), ``attack_gain`` (attacker minus baseline) and
    ``attack_gap`` (key holder minus attacker), each with ``_ci_low`` / ``_ci_high``, ``attack_splits``,
    ``attack_test_images`` (per split) and ``attack_model`` (how often each attacker was chosen).
    """
    from sklearn.model_selection import ShuffleSplit

    from ..metrics import quality

    check_attack_size(len(originals))
    shape = originals[0].shape
    Y = np.stack([o.astype(np.float64).ravel() / 255 for o in originals])

    def one_split(train: np.ndarray, test: np.ndarray) -> tuple[str, float, float, float, float]:
        """The attacker chosen, its SSIM, the baseline's, the key holder's, and the PSNR between the two."""
        encoded, decoded = encodings(train)
        X = np.stack([np.asarray(e, dtype=np.float64).ravel() for e in encoded])
        name, guesses = search(X[train], Y[train], X[test], seed)
        mean_image = _to_uint8(Y[train].mean(axis=0), shape)
        attacked = [quality(originals[i], _to_uint8(g, shape)) for i, g in zip(test, guesses, strict=True)]
        agreement = [_psnr(decoded[i], _to_uint8(g, shape)) for i, g in zip(test, guesses, strict=True)]
        finite = [a for a in agreement if np.isfinite(a)]
        return (name, float(np.mean([q["ssim"] for q in attacked])),
                float(np.mean([quality(originals[i], mean_image)["ssim"] for i in test])),
                float(np.mean([quality(originals[i], decoded[i])["ssim"] for i in test])),
                float(np.mean(finite)) if finite else float("nan"))  # fmt: skip

    splitter = ShuffleSplit(n_splits=splits, test_size=TEST_FRACTION, random_state=seed)
    names, *columns = zip(*each_split(one_split, splitter.split(Y)), strict=True)
    per_split = dict(zip(("ssim", "baseline", "key_holder", "psnr"), (list(c) for c in columns), strict=True))
    chosen = Counter(names)
    n_test = math.ceil(TEST_FRACTION * len(Y))
    n_train = len(Y) - n_test
    gain = interval([a - b for a, b in zip(per_split["ssim"], per_split["baseline"], strict=True)], n_train, n_test)
    gap = interval([k - a for k, a in zip(per_split["key_holder"], per_split["ssim"], strict=True)], n_train,
                    n_test)  # fmt: skip
    psnr = [p for p in per_split["psnr"] if np.isfinite(p)]
    return {
        "attack_ssim": float(np.mean(per_split["ssim"])),
        "attack_baseline_ssim": float(np.mean(per_split["baseline"])),
        "attack_key_holder_ssim": float(np.mean(per_split["key_holder"])),
        "attack_psnr_vs_key_holder": float(np.mean(psnr)) if psnr else float("nan"),
        "attack_gain": gain[0],
        "attack_gain_ci_low": gain[1],
        "attack_gain_ci_high": gain[2],
        "attack_gap": gap[0],
        "attack_gap_ci_low": gap[1],
        "attack_gap_ci_high": gap[2],
        "attack_splits": splits,
        "attack_test_images": n_test,
        "attack_model": ", ".join(f"{name} {count}/{splits}" for name, count in chosen.most_common()),
    }


def _psnr(first: np.ndarray, second: np.ndarray) -> float:
    """:func:`imgvault.methods.metrics.quality`'s PSNR alone (the same calls), without the SSIM it also
    computes: the agreement with the key holder needs only the PSNR."""
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

    if mean_squared_error(first, second) == 0:
        return math.inf
    return float(peak_signal_noise_ratio(first, second, data_range=255))


def _to_uint8(flat: np.ndarray, shape) -> np.ndarray:
    return np.clip(np.rint(flat.reshape(shape) * 255), 0, 255).astype(np.uint8)
