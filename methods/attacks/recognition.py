"""Can a model learn from the protected images? A classifier trained on labelled encrypted images.

The attacker holds encrypted images with their labels (what each shows: a digit, a face or not), no key and
no plaintext, trains a classifier on them, and is scored on held-out encrypted images: accuracy, balanced
accuracy, and the gain over chance, chance being the share of the held-out images that the training part's
majority label would get right. This is repeated over stratified random splits (70 % to train), and each
figure is the mean over the splits with the corrected 95 % interval of the other attacks (Nadeau & Bengio
2003; :func:`~imgvault.methods.attacks.inversion.interval`). A method thwarts learning when the gain's
interval contains 0.

The learners are chosen by 3-fold stratified cross-validation inside the training part only: an
L2-regularised logistic regression (a linear model; C over a grid) and a support vector machine with a
Gaussian (RBF) kernel (a non-linear one; C over a grid). Both see the payload as stored (the cipher image's
values, PCA scores, cluster labels), flattened and standardised, through its principal coordinates: all of
them, from the training rows' Gram matrix (n x n, not d x d), fitted on the rows each fit trains on. An
L2-regularised linear model's weights lie in the span of its training rows, and a kernel of distances
between rows is unchanged by an isometry of that span, so both learners give the same decision function as
on the raw features, in n instead of d dimensions. (A random forest, tried first, cost 60 times more on
the same splits and won no split over these two.)

The same learners, on the same splits, also give the key holder's side (:func:`utility`): trained and tested
on the images encrypted under the key they share with the data's owner (learnable and perceptual encryption
exist for this), against the same learners on the plain images, as an accuracy ratio with its interval.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from imgvault.basics.errors import InvalidParameter

from .inversion import interval
from .splits import each_split

SPLITS = 10
TEST_SIZE = 0.3
MIN_PER_LABEL = 5  # images of a label, at least, for a label to count; two such labels at least


def labels_reason(labels: list[str | None]) -> str | None:
    """Why the recognition attack does not apply to images with these ``labels`` (None: unlabelled), or None."""
    counts = Counter(label for label in labels if label is not None)
    enough = [label for label, count in counts.items() if count >= MIN_PER_LABEL]
    if len(enough) >= 2:
        return None
    if not counts:
        return "the collection's images have no labels (imgvault put --label or --label-from-folder)"
    return (f"it needs at least two labels with {MIN_PER_LABEL} images each; the collection has "
            + ", ".join(f"{count} {label!r}" for label, count in counts.most_common(5)))  # fmt: skip


def labelled(labels: list[str | None]) -> np.ndarray:
    """The indices of the images whose label counts (a label with at least :data:`MIN_PER_LABEL` images)."""
    counts = Counter(label for label in labels if label is not None)
    return np.array([i for i, label in enumerate(labels) if label is not None and counts[label] >= MIN_PER_LABEL])


@dataclass(frozen=True)
class Scores:
    """Per split: accuracy, balanced accuracy and chance on the held-out images, and the learner chosen."""

    accuracy: list[float]
    balanced_accuracy: list[float]
    chance: list[float]
    learners: list[str]
    n_train: int
    n_test: int


def splits_of(labels: np.ndarray, *, splits: int = SPLITS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stratified random splits (train, test) every side is scored on, the same for each."""
    from sklearn.model_selection import StratifiedShuffleSplit

    if len(set(labels.tolist())) < 2:
        raise InvalidParameter("the recognition attack needs at least two labels")
    splitter = StratifiedShuffleSplit(n_splits=splits, test_size=TEST_SIZE, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


C_GRID = (0.01, 0.1, 1.0, 10.0)  # the logistic regression's
SVM_C_GRID = (1.0, 10.0)


def _coordinates(x: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The principal coordinates of the standardised rows ``train`` and ``test`` of ``x`` in the span of the
    training rows (orthonormal: an isometry of that span), fitted on the training rows only."""
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    fitted, other = (x[train] - mean) / std, (x[test] - mean) / std
    values, vectors = np.linalg.eigh(fitted @ fitted.T)
    keep = values > max(values.max(), 0.0) * 1e-10
    if not keep.any():  # every training row the same: nothing to learn from
        return np.zeros((len(train), 1)), np.zeros((len(test), 1))
    vectors, roots = vectors[:, keep], np.sqrt(values[keep])
    # Scaled by sqrt(n) so that the coordinates' spread does not grow with the number of features.
    scale = np.sqrt(x.shape[1])
    return vectors * roots / scale, (other @ (fitted.T @ (vectors / roots))) / scale


def _learner(kind: str, setting, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if kind == "logistic":
        return LogisticRegression(C=setting, max_iter=5000)
    return SVC(C=setting, kernel="rbf", gamma="scale", random_state=seed)


CANDIDATES = (*(("logistic", c) for c in C_GRID), *(("svm", c) for c in SVM_C_GRID))


def _choose(x: np.ndarray, labels: np.ndarray, train: np.ndarray, seed: int) -> tuple[str, object]:
    """The candidate with the best mean accuracy over 3 stratified folds of the training part (the first of
    equals: the linear model before the kernel machine, stronger regularisation first)."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    totals = np.zeros(len(CANDIDATES))
    for inner, held in folds.split(np.zeros(len(train)), labels[train]):
        fitted, other = _coordinates(x, train[inner], train[held])
        for index, (kind, setting) in enumerate(CANDIDATES):
            model = _learner(kind, setting, seed).fit(fitted, labels[train[inner]])
            totals[index] += np.mean(model.predict(other) == labels[train[held]])
    return CANDIDATES[int(np.argmax(totals))]


def scores(features: np.ndarray, labels: np.ndarray, splits: list, *, seed: int = 0) -> Scores:
    """The learners' scores on ``features`` (one row per image) over ``splits`` (:func:`splits_of`)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)

    def one_split(train: np.ndarray, test: np.ndarray) -> tuple[float, float, float, str]:
        kind, setting = _choose(x, labels, train, seed)
        fitted, other = _coordinates(x, train, test)
        predicted = _learner(kind, setting, seed).fit(fitted, labels[train]).predict(other)
        majority = Counter(labels[train].tolist()).most_common(1)[0][0]
        return (float(accuracy_score(labels[test], predicted)), float(balanced_accuracy_score(labels[test], predicted)),
                float(np.mean(labels[test] == majority)), kind)  # fmt: skip

    accuracy, balanced, chance, learners = zip(*each_split(one_split, splits), strict=True)
    return Scores(list(accuracy), list(balanced), list(chance), list(learners), len(splits[0][0]), len(splits[0][1]))


def recognition(encrypted: Scores) -> dict[str, float]:
    """The attack's metrics (``accuracy``, ``balanced_accuracy``, ``chance``, ``gain`` over chance, each gain with
    ``_ci_low``/``_ci_high``, and ``thwarted``: 1 when the gain's interval contains 0) from its scores."""
    gains = [a - c for a, c in zip(encrypted.accuracy, encrypted.chance, strict=True)]
    gain, low, high = interval(gains, encrypted.n_train, encrypted.n_test)
    out = {"gain": gain, "gain_ci_low": low, "gain_ci_high": high}
    for name, values in (("accuracy", encrypted.accuracy), ("balanced_accuracy", encrypted.balanced_accuracy),
                         ("chance", encrypted.chance)):  # fmt: skip
        out[name] = float(np.mean(values))
    out["thwarted"] = float(low <= 0 <= high) if np.isfinite(low) else float(gain <= 0)
    return out


def utility(side: Scores, plain: Scores) -> dict[str, float]:
    """A side's accuracy over the plain images' on the same splits: ``ratio`` with ``_ci_low``/``_ci_high``."""
    ratios = [a / p if p > 0 else float("nan") for a, p in zip(side.accuracy, plain.accuracy, strict=True)]
    ratio, low, high = interval([r for r in ratios if np.isfinite(r)] or [float("nan")], side.n_train, side.n_test)
    return {"ratio": ratio, "ratio_ci_low": low, "ratio_ci_high": high}
