"""The recognition attack and the key holder's utility: known answers on real labelled images (scikit-learn's
digits), and a batch run on a labelled collection that logs them and shows them in the threat matrix."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from imgvault.cli import cli
from imgvault.methods.attacks import recognition
from imgvault.tracker.runs import BatchConfig, run_batch

PER_DIGIT = 8


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """80 of scikit-learn's digits (8 of each), upscaled to 16x16 gray in [0, 1], and their labels."""
    data = load_digits()
    chosen = np.concatenate([np.flatnonzero(data.target == digit)[:PER_DIGIT] for digit in range(10)])
    images = [Image.fromarray(np.uint8(data.images[i] * 16)).resize((16, 16), Image.Resampling.BILINEAR)
              for i in chosen]  # fmt: skip
    return np.stack([np.asarray(image) / 255 for image in images]), data.target[chosen].astype(str)


def test_plain_digits_are_recognised_well_above_chance(digits):
    images, labels = digits
    found = recognition.recognition(recognition.scores(images, labels, recognition.splits_of(labels)))
    assert found["chance"] == pytest.approx(1 / 10, abs=0.05)
    assert found["gain_ci_low"] > 0.4 and found["thwarted"] == 0
    assert found["accuracy"] == pytest.approx(found["chance"] + found["gain"])


def test_a_pixel_permutation_under_one_key_leaves_the_learners_accuracy_unchanged(digits):
    # Both learners see the images through distances and inner products, which a permutation of the pixels
    # (the same for every image: a shared key) does not change: the utility ratio is 1, split for split.
    images, labels = digits
    splits = recognition.splits_of(labels, seed=3)
    plain = recognition.scores(images, labels, splits, seed=3)
    key = np.random.default_rng(7).permutation(images[0].size)
    permuted = recognition.scores(images.reshape(len(images), -1)[:, key], labels, splits, seed=3)
    assert permuted.accuracy == pytest.approx(plain.accuracy)
    found = recognition.utility(permuted, plain)
    assert found["ratio_ci_low"] <= 1 <= found["ratio_ci_high"] and found["ratio"] == pytest.approx(1)


def test_aes_with_a_key_per_image_leaves_recognition_at_chance(digits):
    from imgvault.methods.aes import AESCodec

    images, labels = digits
    encrypted = np.stack([AESCodec().fit(one[None]).encode(one[None])[0] for one in images])
    found = recognition.recognition(recognition.scores(encrypted, labels, recognition.splits_of(labels)))
    assert found["thwarted"] == 1 and found["gain_ci_low"] <= 0 <= found["gain_ci_high"]
    assert abs(found["gain"]) < 0.1


def test_the_attack_says_why_it_does_not_apply():
    assert "no labels" in recognition.labels_reason([None] * 20)
    assert "at least two labels with 5 images each" in recognition.labels_reason(["a"] * 9 + ["b"] * 4)
    assert recognition.labels_reason(["a"] * 5 + ["b"] * 5 + [None, "c"]) is None
    assert recognition.labelled(["a"] * 5 + ["b"] * 5 + [None, "c"]).tolist() == list(range(10))


def test_the_front_holds_the_points_no_other_point_beats_on_both_leakage_and_utility():
    from imgvault.tracker.reports.frontier import Point, mark_front, reading

    def point(label, leakage, utility, low=None):
        return Point(label, "pe", leakage, low, None, "recognition", utility, None, None)

    found = mark_front([point("a", 0.0, 0.2, low=-0.1), point("b", 0.5, 1.0), point("c", 0.6, 0.9),
                        point("d", 0.3, 0.95, low=-0.05), point("e", 0.0, 0.1)])  # fmt: skip
    assert {p.label for p in found if p.front} == {"a", "b", "d"}
    line = reading(found)
    assert line.startswith("Pareto front") and "d keeps 90 % of the accuracy" in line


@pytest.fixture
def labelled(store, home, migrated_tracking_db, monkeypatch, digits):
    """A collection of 20 digits (ten 0s, ten 1s), each with its label, and a fresh MLflow store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    images, labels = digits
    for index in [*np.flatnonzero(labels == "0"), *np.flatnonzero(labels == "1")]:
        buffer = io.BytesIO()
        Image.fromarray(np.uint8(np.rint(images[index] * 255))).save(buffer, "PNG")
        store.put(buffer.getvalue(), name=f"digit-{index}.png", collection="digits",
                  metadata={"label": str(labels[index])})  # fmt: skip
    for n in range(3):  # more images than labels: unlabelled ones are left out of recognition
        store.put(buffer.getvalue(), name=f"unlabelled-{n}.png", collection="digits")
    return store


def test_a_batch_on_a_labelled_collection_logs_recognition_and_utility_and_compare_shows_them(labelled, runner, home):
    from mlflow import MlflowClient

    config = BatchConfig(methods=("pe", "aes"), fit="collection", attack=True, size=16, jobs=1, figures=0)
    result = run_batch(labelled, "digits", config)
    pe, aes = (run.metrics for run in result.runs)
    # pe keeps the pixels' values under one key, permuted by blocks: as learnable as the plain digits.
    assert pe["attack/recognition/gain_ci_low"] > 0.3 and pe["attack/recognition/thwarted"] == 0
    assert pe["utility/ratio_ci_low"] > 0.7 and pe["utility/decoded_ratio"] == 1.0
    assert aes["attack/recognition/thwarted"] == 1
    assert pe["attack/recognition/plain_accuracy"] == aes["attack/recognition/plain_accuracy"]
    shown = runner.invoke(cli, ["compare", "-c", "digits"])
    assert shown.exit_code == 0, shown.output
    assert "RECOGNITION" in shown.output and "UTILITY" in shown.output and "thwarted" in shown.output
    # The frontier: aes leaks nothing and keeps nothing, pe keeps the accuracy and leaks: both on the front.
    assert "Privacy-utility frontier of digits" in shown.output and "Pareto front" in shown.output
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    parent = client.get_run(result.parent_run_id)
    assert "pe (collection)" in parent.data.tags["imgvault.frontier"]
    assert "frontier.png" in {f.path for f in client.list_artifacts(result.parent_run_id)}
    from imgvault.tracker.reports.page import render_report

    page = render_report(home, "digits")
    assert "Privacy-utility frontier" in page and "RECOGNITION" not in page and ">recognition<" in page


def test_an_unlabelled_collection_says_why_recognition_does_not_apply(faces_without_labels, runner):
    config = BatchConfig(methods=("pe",), fit="collection", attack=True, size=16, jobs=1, figures=0)
    [pe] = run_batch(faces_without_labels, "faces", config).runs
    assert "attack/recognition/gain" not in pe.metrics
    assert "no labels" in pe.not_applicable["attack/recognition"]
    shown = runner.invoke(cli, ["compare", "-c", "faces"]).output
    assert "n/a: pe (collection fit) recognition: the collection's images have no labels" in shown


@pytest.fixture
def faces_without_labels(store, home, migrated_tracking_db, monkeypatch):
    import skimage.data

    from imgvault.methods import to_uint8

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(migrated_tracking_db, home / "mlflow.db")
    for n, face in enumerate(skimage.data.lfw_subset()[:12]):
        buffer = io.BytesIO()
        Image.fromarray(to_uint8(face)).save(buffer, "PNG")
        store.put(buffer.getvalue(), name=f"face-{n}.png", collection="faces")
    return store
