"""The figures read at a glance: panels wide enough at the dpi they are saved at, no text below 9 pt, lines
that stay apart where their values coincide, an outlier that does not squash the rest, and no empty panel.

The figures are drawn from rows as :func:`imgvault.tracker.reports.compare.compare` gives them (and the parent run's
from its child runs), shaped as the demo's are: kmeans and gmm at the same values, AES on RGB at 24 bits
per pixel, and no NPCR test that applies.
"""

import math

import numpy as np
import pytest

from imgvault.tracker.reports.curves import DPI, attack_figure, rate_distortion_figure
from imgvault.tracker.reports.curves import security_figure as report_security_figure
from imgvault.tracker.reports.figures import comparison_figure, security_figure
from imgvault.tracker.reports.tables import ATTACK, metric_table
from imgvault.tracker.runs import ChildRun

MIN_PANEL_PX = 400
MIN_POINTS = 9


def _row(collection, method, k, bpp, **metrics) -> dict:
    row = {"collection": collection, "method": method, "k": k, "fit": "image", "size": 50, "color": "rgb",
           "n_images": 6, "used_images": 6, "failed_images": 0, "status": "finished", "error": None, "bpp": bpp,
           "ssim": 0.5, "psnr": 20.0, "visual_ssim": 0.3, "key_ssim": 0.2, "corr_h": 0.9, "entropy_pass_rate": 0.0,
           "not_applicable": {}}  # fmt: skip
    return {**row, **metrics}


def demo_rows(collection: str = "photos") -> list[dict]:
    """kmeans and gmm identical, pca below them, AES on RGB at 24 bits per pixel and exact."""
    rows = []
    for k, bpp in ((2, 1.0), (4, 2.0), (8, 3.0)):
        for method in ("kmeans", "gmm"):
            rows.append(_row(collection, method, k, bpp, ssim=0.4 + 0.1 * k / 2, psnr=18.0 + k))
        rows.append(_row(collection, "pca", k, bpp / 4, ssim=0.2 + 0.05 * k, psnr=15.0 + k))
    rows.append(_row(collection, "aes", None, 24.4, ssim=1.0, psnr=None, exact_fraction=1.0, visual_ssim=0.0))
    rows.append(_row(collection, "arnold", 10, 8.0, ssim=1.0, psnr=None, exact_fraction=1.0, visual_ssim=0.05))
    return rows


def _visible(fig):
    return [axis for axis in fig.axes if axis.get_visible()]


def _texts(fig):
    found = [*fig.texts]
    for legend in fig.legends:
        found += legend.get_texts()
    for axis in _visible(fig):
        found += [axis.title, axis.xaxis.label, axis.yaxis.label, *axis.texts]
        found += axis.get_xticklabels() + axis.get_yticklabels()
        if axis.get_legend():
            found += axis.get_legend().get_texts()
    return [text for text in found if text.get_text()]


def assert_readable(fig, dpi: float) -> None:
    for axis in _visible(fig):
        width = axis.get_position().width * fig.get_figwidth() * dpi
        assert width >= MIN_PANEL_PX, f"panel {axis.get_title()!r} is {width:.0f} px wide"
    small = [(text.get_text(), text.get_fontsize()) for text in _texts(fig) if text.get_fontsize() < MIN_POINTS]
    assert small == []


def assert_no_empty_panel(fig) -> None:
    for axis in _visible(fig):
        drawn = [line for line in axis.get_lines() if any(math.isfinite(y) for y in line.get_ydata())]
        bars = [p for p in axis.patches if hasattr(p, "get_height") and math.isfinite(p.get_height())]
        boxes = [p for p in axis.patches if not hasattr(p, "get_height") and np.isfinite(p.get_path().vertices).all()]
        said = [t for t in axis.texts if "n/a" in t.get_text()]
        assert drawn or bars or boxes or said, f"panel {axis.get_title()!r} shows nothing and says nothing"


def _styles(axis) -> dict[str, tuple]:
    """Each named line's marker and linestyle: what tells two lines apart where they coincide (their colours
    do not: the one drawn last hides the other)."""
    return {line.get_label(): (line.get_marker(), line.get_linestyle())
            for line in axis.get_lines() if not line.get_label().startswith("_")}  # fmt: skip


@pytest.mark.parametrize("collections", [["photos"], ["photos", "tiles", "faces"]])
def test_rate_distortion_panels_are_wide_and_their_text_is_at_least_9_points(collections):
    rows = [row for c in collections for row in demo_rows(c)]
    for metric, name in (("ssim", "SSIM"), ("psnr", "PSNR (dB)")):
        fig = rate_distortion_figure(rows, collections, metric, name)
        assert_readable(fig, DPI)
        assert_no_empty_panel(fig)


def test_lines_of_equal_values_differ_in_marker_or_linestyle():
    fig = rate_distortion_figure(demo_rows(), ["photos"], "ssim", "SSIM")
    styles = _styles(_visible(fig)[0])
    assert styles["kmeans"] != styles["gmm"]
    assert len(set(styles.values())) == len(styles)


def test_one_method_far_to_the_right_does_not_squash_the_others():
    """AES on RGB at 24 bits per pixel: the other methods' points still spread over a good part of the axis,
    and the outlier is still drawn inside it."""
    rows = demo_rows()
    fig = rate_distortion_figure(rows, ["photos"], "ssim", "SSIM")
    [axis] = _visible(fig)
    axis.get_xlim()  # brings the view limits up to date: the figure is closed, no canvas draws it
    to_axes = axis.transData + axis.transAxes.inverted()
    others = [to_axes.transform((r["bpp"], r["ssim"]))[0] for r in rows if r["method"] in ("pca", "kmeans", "gmm")]
    assert max(others) - min(others) >= 0.4, f"the codecs fill {max(others) - min(others):.0%} of the axis"
    [aes] = [x for line in axis.get_lines() if line.get_label() == "aes" for x in line.get_xdata()]
    assert 0 <= to_axes.transform((aes, 1.0))[0] <= 1


def test_the_report_security_and_attack_figures_are_readable():
    rows = [{**r, "attack_ssim": 0.4, "attack_key_holder_ssim": 0.9, "attack_baseline_ssim": 0.35}
            for r in demo_rows()]  # fmt: skip
    for fig in (report_security_figure(rows), attack_figure(rows)):
        assert_readable(fig, DPI)
        assert_no_empty_panel(fig)


def test_a_report_security_panel_that_no_row_measured_says_n_a_with_why():
    rows = [{**r, "entropy_pass_rate": None, "not_applicable": {"entropy": "not a discrete payload"}}
            for r in demo_rows()]  # fmt: skip
    [entropy] = [a for a in _visible(report_security_figure(rows)) if "entropy" in a.get_title()]
    assert [t.get_text() for t in entropy.texts] == ["n/a: not a discrete payload"]


def _runs(configurations) -> list[ChildRun]:
    runs = []
    for method, k in configurations:
        metrics = {"ssim": 0.5, "psnr": 20.0, "mse": 100.0, "bpp": 24.0 if method == "aes" else 2.0,
                   "visual_ssim": 0.2, "key_ssim": 0.1, "corr_h": 0.8, "entropy_pass_rate": 0.0,
                   "attack_ssim": 0.4, "attack_key_holder_ssim": 0.9, "attack_baseline_ssim": 0.3}  # fmt: skip
        values = {name: [value, value * 0.9] for name, value in metrics.items()}
        runs.append(ChildRun(method, k, "0" * 32, metrics, values=values))
    return runs


DEMO_RUNS = [(m, k) for m in ("pca", "kmeans", "gmm", "le", "etc", "arnold") for k in (4, 8)] + [
    (m, None) for m in ("aes", "pe", "logistic")
]


@pytest.mark.parametrize("configurations", [DEMO_RUNS[:3], DEMO_RUNS], ids=["3 runs", "15 runs"])
def test_the_parent_runs_figures_are_readable_and_say_n_a_instead_of_an_empty_panel(configurations):
    """No run has an NPCR pass rate (none applies): its panel says n/a, it is not blank."""
    for fig in (security_figure(_runs(configurations)), comparison_figure(_runs(configurations))):
        assert_readable(fig, fig.get_dpi())
        assert_no_empty_panel(fig)
        assert fig.get_figwidth() * fig.get_dpi() <= 2000  # shown whole on a screen, its text stays legible
    [npcr] = [a for a in _visible(security_figure(_runs(configurations))) if "NPCR" in a.get_title()]
    assert any("n/a" in t.get_text() for t in npcr.texts)


def test_the_attack_table_prints_counts_as_integers():
    row = {**_row("faces", "pca", 8, 0.4), "attack_ssim": 0.41, "attack_key_holder_ssim": 0.43,
           "attack_baseline_ssim": 0.37, "attack_gain": 0.05, "attack_gain_ci_low": 0.04, "attack_gain_ci_high": 0.06,
           "attack_splits": 10.0}  # fmt: skip
    table = metric_table([row], ATTACK)
    assert "<td>10</td>" in table and "10.000" not in table
    assert "<td>0.410</td>" in table
