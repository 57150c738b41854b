"""The report's figures: each measure against bits per pixel, one line per method through its values of k.

A k sweep is a curve, not a row of bars: what varies is the size of the encrypted image and what it costs
in quality or gives away. Labels are horizontal and a legend names every line. Figures are sized for a
printed page (about 7 inches wide) and embedded as PNG.
"""

import base64
import io
import math

from .figures import COLORS, pyplot

WIDTH = 7.2  # inches: an A4 or letter page's width between margins
COLUMNS = 3  # panels per row of a figure with one panel per collection
SETTING_STYLES = ("-", "--", ":", "-.")


def png(fig) -> str:
    """The figure as base64 PNG, for a ``data:`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode()


def setting(row: dict) -> tuple:
    return row["fit"], row["size"], row["color"]


def setting_text(key: tuple) -> str:
    fit, size, color = key
    return f"{fit} fit, {size}px {color}"


def lines_of(rows: list[dict]) -> dict[tuple, list[dict]]:
    """The finished rows by (method, setting), each line's points in order of bits per pixel."""
    lines: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["status"] == "finished" and row.get("bpp") is not None:
            lines.setdefault((row["method"], setting(row)), []).append(row)
    return {key: sorted(points, key=lambda r: r["bpp"]) for key, points in lines.items()}


def _value(row: dict, metric: str) -> float:
    value = row.get(metric)
    return math.nan if value is None else value


def draw_curves(axis, rows: list[dict], metric: str, *, annotate: bool = True) -> None:
    """``metric`` against bits per pixel: one line per method (and setting, when a collection has several),
    its points labelled with k. A lossless run's infinite PSNR is drawn as an arrow at the top, labelled."""
    lines = lines_of(rows)
    settings = list(dict.fromkeys(key[1] for key in lines))
    exact = []
    for (method, key), points in lines.items():
        color = COLORS.get(method, "tab:gray")
        style = SETTING_STYLES[settings.index(key) % len(SETTING_STYLES)]
        name = method if len(settings) == 1 else f"{method} ({setting_text(key)})"
        if metric == "psnr":
            exact += [(r, color) for r in points if r.get("psnr") is None and r.get("exact_fraction") == 1.0]
        xs, ys = [r["bpp"] for r in points], [_value(r, metric) for r in points]
        axis.plot(xs, ys, style, marker="o" if len(points) > 1 else "s", color=color, label=name, markersize=5)
        if annotate:
            for row, x, y in zip(points, xs, ys, strict=True):
                if row["k"] is not None and math.isfinite(y):
                    axis.annotate(f"k={row['k']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                                  color=color)  # fmt: skip
    if exact:
        low, high = axis.get_ylim()
        top = high + 0.08 * (high - low) if math.isfinite(high) else 60
        for row, color in exact:
            axis.plot([row["bpp"]], [top], marker="^", color=color, markersize=8, linestyle="none")
        leftmost = min(row["bpp"] for row, _ in exact)
        axis.annotate("exact: PSNR inf", (leftmost, top), textcoords="offset points", xytext=(-70, -3), fontsize=7,
                      color=exact[0][1])  # fmt: skip
        axis.set_ylim(low, top + 0.1 * (top - low))
    axis.margins(x=0.12)  # room for the k labels of the rightmost points
    axis.grid(alpha=0.3)
    axis.tick_params(labelsize=8)


def _legend(fig, axes) -> None:
    """One legend for the figure, above its panels: every line any panel drew, once."""
    handles = {}
    for axis in axes:
        for handle, name in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, handle)
    if handles:
        # As many columns as the longest name leaves room for across the page (about 100 characters at 8 pt).
        columns = max(1, min(4, len(handles), 100 // (max(map(len, handles)) + 8)))
        fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=columns, fontsize=8, frameon=False)


def _panels(n: int, columns: int, height: float = 2.6):
    plt = pyplot()
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(WIDTH, height * rows + 0.7), squeeze=False)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.12 / rows + 0.05, top=1 - 0.75 / (height * rows + 0.7),
                        wspace=0.3, hspace=0.55)  # fmt: skip
    axes = list(axes.flat)
    for axis in axes[n:]:
        axis.set_visible(False)
    return plt, fig, axes[:n]


def rate_distortion_figure(rows: list[dict], collections: list[str], metric: str, name: str):
    """``name`` (e.g. "SSIM") against bits per pixel, one panel per collection."""
    plt, fig, axes = _panels(len(collections), min(COLUMNS, len(collections)))
    for axis, collection in zip(axes, collections, strict=True):
        draw_curves(axis, [r for r in rows if r["collection"] == collection], metric)
        axis.set_title(collection, fontsize=9)
        axis.set_xlabel("bits per pixel", fontsize=8)
        axis.set_ylabel(name, fontsize=8)
    _legend(fig, axes)
    plt.close(fig)
    return fig


SECURITY_PANELS = (
    ("visual_ssim", "encrypted image vs original (SSIM; 0 ideal)"),
    ("key_ssim", "wrong-key decoding vs original (SSIM; 0 ideal)"),
    ("corr_h", "adjacent correlation of the payload (0 ideal)"),
    ("entropy_pass_rate", "share passing the entropy test (0.95 expected)"),
)


def security_figure(rows: list[dict]):
    """What the encrypted payload gives away, against its bits per pixel, for one collection."""
    plt, fig, axes = _panels(len(SECURITY_PANELS), 2, height=2.5)
    for axis, (metric, title) in zip(axes, SECURITY_PANELS, strict=True):
        draw_curves(axis, rows, metric, annotate=False)
        axis.set_title(title, fontsize=8.5)
        axis.set_xlabel("bits per pixel", fontsize=8)
    _legend(fig, axes)
    plt.close(fig)
    return fig


def attack_figure(rows: list[dict]):
    """The learning attack against bits per pixel: the attacker (solid) and the key holder (dashed) per
    method, and the mean image, the same for every method, as one grey line."""
    plt, fig, [axis] = _panels(1, 1, height=3.0)
    attacked = [r for r in rows if r.get("attack_ssim") is not None]
    draw_curves(axis, attacked, "attack_ssim")
    for (method, _), points in lines_of(attacked).items():
        axis.plot([r["bpp"] for r in points], [_value(r, "attack_key_holder_ssim") for r in points], "--",
                  color=COLORS.get(method, "tab:gray"), label=f"{method}: key holder")  # fmt: skip
    baseline = [r["attack_baseline_ssim"] for r in attacked if r.get("attack_baseline_ssim") is not None]
    if baseline:
        axis.axhline(sum(baseline) / len(baseline), color="tab:gray", linestyle=":", label="mean image")
    axis.set_xlabel("bits per pixel", fontsize=8)
    axis.set_ylabel("SSIM on held-out images", fontsize=8)
    axis.set_title("attacker (solid) against the key holder (dashed)", fontsize=9)
    _legend(fig, [axis])
    plt.close(fig)
    return fig
