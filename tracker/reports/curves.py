"""The report's figures: each measure against bits per pixel, one line per method through its values of k.

A k sweep is a curve, not a row of bars: what varies is the size of the encrypted image and what it costs
in quality or gives away. Labels are horizontal and a legend names every line; each method has its own
marker (and linestyle), so lines at equal values stay apart. Bits per pixel go on a log scale where one
method (AES on RGB: 24) would squash the others. Figures are sized for a printed page (about 7 inches wide),
two panels across at most, each over 400 pixels wide at the PNG's dpi, no text below 9 points; a panel
without data says n/a and why.
"""

import base64
import io
import math

from imgvault.tracker.reports.figures import (
    COLORS,
    FONT,
    bpp_axis,
    linestyle,
    marker_style,
    not_applicable_note,
    pyplot,
)

WIDTH = 7.2  # inches: an A4 or letter page's width between margins
COLUMNS = 2  # panels per row of a figure with one panel per collection
SETTING_STYLES = ("-", "--", ":", "-.")
DPI = 150  # the PNGs embedded in the page: a panel of half the page is 430 pixels wide


def png(fig) -> str:
    """The figure as base64 PNG, for a ``data:`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
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
        # The method's own linestyle, or the setting's when the panel holds several (the marker names the method).
        style = linestyle(method) if len(settings) == 1 else SETTING_STYLES[settings.index(key) % len(SETTING_STYLES)]
        name = method if len(settings) == 1 else f"{method} ({setting_text(key)})"
        if metric == "psnr":
            exact += [(r, color) for r in points if r.get("psnr") is None and r.get("exact_fraction") == 1.0]
        xs, ys = [r["bpp"] for r in points], [_value(r, metric) for r in points]
        axis.plot(xs, ys, style, color=color, label=name, **marker_style(method))
        if annotate:
            for row, x, y in zip(points, xs, ys, strict=True):
                if row["k"] is not None and math.isfinite(y):
                    # Below the hollow markers (gmm, etc): two methods at the same point keep both labels.
                    below = marker_style(method)["markerfacecolor"] == "none"
                    axis.annotate(f"k={row['k']}", (x, y), textcoords="offset points", xytext=(5, -13 if below else 4),
                                  fontsize=FONT, color=color)  # fmt: skip
    if exact:
        low, high = axis.get_ylim()
        top = high + 0.08 * (high - low) if math.isfinite(high) else 60
        for row, color in exact:
            axis.plot([row["bpp"]], [top], marker="^", color=color, markersize=8, linestyle="none")
        leftmost = min(row["bpp"] for row, _ in exact)
        axis.annotate("exact: PSNR inf", (leftmost, top), textcoords="offset points", xytext=(-90, -3),
                      fontsize=FONT, color=exact[0][1])  # fmt: skip
        axis.set_ylim(low, top + 0.1 * (top - low))
    bpp_axis(axis, [row["bpp"] for points in lines.values() for row in points])
    axis.margins(x=0.08)  # room for the k labels of the rightmost points
    axis.grid(alpha=0.3)
    axis.tick_params(labelsize=FONT)
    if not any(math.isfinite(_value(row, metric)) for points in lines.values() for row in points) and not exact:
        why = next((r["not_applicable"][m] for r in rows for m in (metric, metric.removesuffix("_pass_rate"))
                    if m in (r.get("not_applicable") or {})), "no run measured it")  # fmt: skip
        not_applicable_note(axis, why)


def _legend(fig, axes) -> None:
    """One legend for the figure, above its panels: every line any panel drew, once."""
    handles = {}
    for axis in axes:
        for handle, name in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, handle)
    if handles:
        # As many columns as the longest name leaves room for across the page (about 90 characters at 9 pt).
        columns = max(1, min(5, len(handles), 90 // (max(map(len, handles)) + 8)))
        fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=columns, fontsize=FONT, frameon=False)
        return -(-len(handles) // columns)
    return 0


def _panels(n: int, columns: int, height: float = 3.0, legend_rows: int = 2):
    """``n`` panels in rows of ``columns``, with room above them for ``legend_rows`` rows of the legend."""
    plt = pyplot()
    rows = -(-n // columns)
    top = 0.45 + 0.22 * legend_rows  # inches above the panels: the legend and the first row's title
    total = height * rows + top
    fig, axes = plt.subplots(rows, columns, figsize=(WIDTH, total), squeeze=False)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.5 / total, top=1 - top / total, wspace=0.22,
                        hspace=0.2 + 0.9 / height)  # fmt: skip
    axes = list(axes.flat)
    for axis in axes[n:]:
        axis.set_visible(False)
    return plt, fig, axes[:n]


def _names(rows: list[dict]) -> list[str]:
    """The legend's names of the lines :func:`draw_curves` draws for ``rows`` (one panel's)."""
    lines = lines_of(rows)
    several = len({key[1] for key in lines}) > 1
    return [method if not several else f"{method} ({setting_text(key)})" for method, key in lines]


def _legend_rows(panels: list[list[dict]], extra: int = 0) -> int:
    """How many rows the figure's legend takes (see :func:`_legend`): one entry per name any panel draws."""
    names = list(dict.fromkeys(name for rows in panels for name in _names(rows))) + [""] * extra
    if not names:
        return 0
    columns = max(1, min(5, len(names), 90 // (max(map(len, names)) + 8)))
    return -(-len(names) // columns)


def rate_distortion_figure(rows: list[dict], collections: list[str], metric: str, name: str):
    """``name`` (e.g. "SSIM") against bits per pixel, one panel per collection."""
    panels = [[r for r in rows if r["collection"] == collection] for collection in collections]
    plt, fig, axes = _panels(len(collections), min(COLUMNS, len(collections)), legend_rows=_legend_rows(panels))
    for axis, collection in zip(axes, collections, strict=True):
        draw_curves(axis, [r for r in rows if r["collection"] == collection], metric)
        axis.set_title(collection, fontsize=10)
        axis.set_ylabel(name, fontsize=FONT)
    _legend(fig, axes)
    plt.close(fig)
    return fig


SECURITY_PANELS = (
    ("visual_ssim", "encrypted image vs original\n(SSIM; 0 ideal)"),
    ("key_ssim", "wrong-key decoding vs original\n(SSIM; 0 ideal)"),
    ("corr_h", "adjacent correlation of the payload\n(0 ideal)"),
    ("entropy_pass_rate", "share passing the entropy test\n(0.95 expected)"),
)


def security_figure(rows: list[dict]):
    """What the encrypted payload gives away, against its bits per pixel, for one collection."""
    plt, fig, axes = _panels(len(SECURITY_PANELS), 2, height=3.0, legend_rows=_legend_rows([rows]))
    for axis, (metric, title) in zip(axes, SECURITY_PANELS, strict=True):
        draw_curves(axis, rows, metric, annotate=False)
        axis.set_title(title, fontsize=10)
    _legend(fig, axes)
    plt.close(fig)
    return fig


def attack_figure(rows: list[dict]):
    """The learning attack against bits per pixel: the attacker (solid) and the key holder (dashed) per
    method, and the mean image, the same for every method, as one grey line."""
    attacked = [r for r in rows if r.get("attack_ssim") is not None]
    legend_rows = _legend_rows([attacked], extra=len(lines_of(attacked)) + 1)
    plt, fig, [axis] = _panels(1, 1, height=3.4, legend_rows=legend_rows)
    draw_curves(axis, attacked, "attack_ssim")
    for line in axis.get_lines():
        line.set_linestyle("-")  # the attacker; the marker still names the method
    for (method, _), points in lines_of(attacked).items():
        style = {**marker_style(method), "markerfacecolor": "none"}
        axis.plot([r["bpp"] for r in points], [_value(r, "attack_key_holder_ssim") for r in points], "--",
                  color=COLORS.get(method, "tab:gray"), label=f"{method}: key holder", **style)  # fmt: skip
    baseline = [r["attack_baseline_ssim"] for r in attacked if r.get("attack_baseline_ssim") is not None]
    if baseline:
        axis.axhline(sum(baseline) / len(baseline), color="tab:gray", linestyle=":", label="mean image")
    axis.set_ylabel("SSIM on held-out images", fontsize=FONT)
    axis.set_title("attacker (solid) against the key holder (dashed)", fontsize=10)
    _legend(fig, [axis])
    plt.close(fig)
    return fig
