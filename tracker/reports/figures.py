"""The parent run's comparison figures: methods side by side with their spread across images."""

import numpy as np

PANELS = (("ssim", "SSIM (higher is closer)"), ("psnr", "PSNR, dB (finite values)"), ("mse", "MSE (0-255)"),
          ("bpp", "bits per pixel of the encoded image"))  # fmt: skip


COLORS = {
    "pca": "tab:blue",
    "kmeans": "tab:orange",
    "gmm": "tab:green",
    "aes": "tab:red",
    "le": "tab:purple",
    "etc": "tab:brown",
    "pe": "tab:pink",
    "logistic": "tab:olive",
    "arnold": "tab:cyan",
}


#: each method's marker and its linestyle (when one setting is drawn): lines at equal values (kmeans and gmm
#: often are) stay apart, the hollow markers drawn larger round the filled ones.
STYLES = {
    "pca": ("o", "-", True),
    "kmeans": ("s", "-", True),
    "gmm": ("D", "--", False),
    "aes": ("*", "-", True),
    "le": ("^", ":", True),
    "etc": ("v", "-.", False),
    "pe": ("P", "--", True),
    "logistic": ("X", ":", False),
    "arnold": ("h", "-.", True),
}
FONT = 9  # points: the smallest text of every figure


def marker_style(method: str) -> dict:
    """``plot`` keywords for ``method``'s marker: its shape, filled or hollow (and then larger)."""
    marker, _, filled = STYLES.get(method, ("o", "-", True))
    return {"marker": marker, "markersize": 6 if filled else 9, "markerfacecolor": None if filled else "none",
            "markeredgewidth": 1.0 if filled else 1.6}  # fmt: skip


def linestyle(method: str) -> str:
    return STYLES.get(method, ("o", "-", True))[1]


def bpp_axis(axis, bpps: list[float], label: str = "bits per pixel") -> None:
    """Bits per pixel on a log scale when they span more than 8 times (AES on RGB at 24 bits per pixel next
    to K-Means at 2): on a linear scale the one far right squashes the others into a corner."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    finite = [b for b in bpps if b is not None and np.isfinite(b) and b > 0]
    if finite and max(finite) > 8 * min(finite):
        axis.set_xscale("log", base=2)
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
        label += " (log scale)"
    axis.set_xlabel(label, fontsize=FONT)


def not_applicable_note(axis, why: str) -> None:
    """What an axes without data says instead of staying blank."""
    axis.text(0.5, 0.5, f"n/a: {why}", transform=axis.transAxes, ha="center", va="center", fontsize=FONT,
              color="dimgray", wrap=True)  # fmt: skip


def _label(run) -> str:
    return run.method if run.k is None else f"{run.method} k={run.k}"


def _color(run) -> str:
    return COLORS.get(run.method, "tab:gray")


def _grid(plt, panels: int, n_runs: int, columns: int):
    """A figure of ``panels`` axes in rows of ``columns``, each wide enough for ``n_runs`` labelled columns."""
    width = max(5.0, 0.42 * n_runs + 1.2)
    # At most about 19 inches (1,900 pixels): a wider figure is shown shrunk, and its text with it.
    columns = max(1, min(columns, int(19 // width)))
    rows = -(-panels // columns)
    height = 4.2 * rows + 0.5  # inches: each row holds a plot, its two-line title and its slanted labels
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height), squeeze=False)
    # Fixed margins (in inches, as fractions): matplotlib's constrained layout triples the time to save.
    fig.subplots_adjust(left=0.5 / (width * columns), right=0.99, bottom=1.15 / height, top=1 - 0.95 / height,
                        wspace=0.18, hspace=0.75)  # fmt: skip
    axes = list(axes.flat)
    for axis in axes[panels:]:
        axis.set_visible(False)
    return fig, axes[:panels]


def _ticks(axis, positions, labels) -> None:
    axis.set_xticks(positions, labels, rotation=50, ha="right", rotation_mode="anchor", fontsize=FONT)
    axis.tick_params(axis="y", labelsize=FONT)


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed); imported on first use, it takes ~0.6 s."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def comparison_figure(runs):
    """One box plot per metric: every (method, k) side by side, the boxes showing the spread over images."""
    plt = pyplot()
    fig, axes = _grid(plt, len(PANELS), len(runs), columns=2)
    positions = np.arange(1, len(runs) + 1)
    for axis, (metric, title) in zip(axes, PANELS, strict=True):
        data = []
        for run in runs:
            finite = [v for v in run.values.get(metric, []) if v is not None and np.isfinite(v)]
            data.append(finite if finite else [np.nan])
        boxes = axis.boxplot(data, positions=positions, showmeans=True, patch_artist=True, widths=0.6)
        for box, run in zip(boxes["boxes"], runs, strict=True):
            box.set(facecolor=_color(run), alpha=0.45)
        _ticks(axis, positions, [_label(r) for r in runs])
        axis.set_title(title, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
        if all(np.isnan(d).all() for d in data):
            not_applicable_note(axis, "no run measured it")
    fig.suptitle("Quality and cost by method, spread across the images of the collection")
    plt.close(fig)
    return fig


def ssim_vs_bpp_figure(runs):
    """Mean SSIM against mean bits per pixel, one curve per method through its values of k."""
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(6.4, 4.8))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
    for method in dict.fromkeys(run.method for run in runs):
        points = sorted((r.metrics.get("bpp", np.nan), r.metrics.get("ssim", np.nan), r.k)
                        for r in runs if r.method == method)  # fmt: skip
        axis.plot([p[0] for p in points], [p[1] for p in points], linestyle(method), label=method,
                  color=COLORS.get(method, "tab:gray"), **marker_style(method))  # fmt: skip
        for bpp, ssim, k in points:
            if k is not None:
                # Above the point for pca and kmeans, below for gmm: methods at the same bpp stay readable.
                offset = (4, -13) if method == "gmm" else (4, 5)
                axis.annotate(f"k={k}", (bpp, ssim), textcoords="offset points", xytext=offset, fontsize=FONT,
                              color=COLORS.get(method, "tab:gray"))  # fmt: skip
    bpp_axis(axis, [r.metrics.get("bpp") for r in runs], "bits per pixel of the encoded image")
    axis.tick_params(labelsize=FONT)
    axis.set_ylabel("mean SSIM")
    axis.set_title("SSIM against size of the encrypted image")
    axis.grid(alpha=0.3)
    axis.legend()
    plt.close(fig)
    return fig


SECURITY_PANELS = (
    ("visual_ssim", "how recognisable the encrypted image is\n(SSIM with the original; 0 is ideal)"),
    ("key_ssim", "what a wrong key gives\n(SSIM with the original; 0 is ideal)"),
    ("corr_h", "adjacent correlation of the payload\n(0 is ideal)"),
    ("entropy_pass_rate", "images passing the entropy test\nat their size (0.95 expected; missing: n/a)"),
    ("npcr_pass_rate", "images passing Wu et al.'s NPCR test\nat their size (missing: n/a)"),
)


def security_figure(runs):
    """The security measures side by side per method (means over images), and the learning attack."""
    plt = pyplot()
    attacked = [r for r in runs if "attack_ssim" in r.metrics]
    fig, axes = _grid(plt, len(SECURITY_PANELS) + (1 if attacked else 0), len(runs), columns=3)
    positions = np.arange(len(runs))
    for axis, (metric, title) in zip(axes, SECURITY_PANELS, strict=False):
        heights = [r.metrics.get(metric, np.nan) for r in runs]
        axis.bar(positions, heights, color=[_color(r) for r in runs])
        _ticks(axis, positions, [_label(r) for r in runs])
        axis.set_title(title, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
        measure = metric.removesuffix("_pass_rate")
        if measure != metric:
            axis.set_ylim(0, 1.05)  # a share of images: 0 is at the bottom, not in the middle
        if all(np.isnan(h) for h in heights):
            why = next((r.not_applicable[measure] for r in runs if measure in r.not_applicable), "no run measured it")
            not_applicable_note(axis, why)
        else:
            for x, height in zip(positions, heights, strict=True):
                if np.isnan(height) or height == 0:  # a missing bar, or one of height 0: said, not left blank
                    axis.text(x, 0, "n/a" if np.isnan(height) else "0", rotation=90, ha="center", va="bottom",
                              fontsize=FONT, color="dimgray")  # fmt: skip
    if attacked:
        axis = axes[-1]
        at = np.arange(len(attacked))
        axis.bar(at - 0.27, [r.metrics["attack_ssim"] for r in attacked], 0.27, label="attacker", color="tab:purple")
        axis.bar(at, [r.metrics["attack_key_holder_ssim"] for r in attacked], 0.27, label="key holder",
                 color="tab:olive")  # fmt: skip
        axis.bar(at + 0.27, [r.metrics["attack_baseline_ssim"] for r in attacked], 0.27, label="mean image",
                 color="tab:gray")  # fmt: skip
        _ticks(axis, at, [_label(r) for r in attacked])
        title = "learning attack on held-out images, mean over\nsplits (SSIM; near the key holder = undone)"
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=FONT)
        axis.grid(axis="y", alpha=0.3)
    fig.suptitle("How much each encrypted image leaks")
    plt.close(fig)
    return fig


def parent_figure_names(ks: tuple) -> list[str]:
    """The parent run's figures: the comparison and security charts, and SSIM against bpp for several k."""
    return ["comparison.png", "security.png"] + (["ssim_vs_bpp.png"] if len(ks) > 1 else [])


def parent_figure_png(name: str, runs) -> bytes:
    """The parent run's figure ``name`` (:func:`parent_figure_names`) of ``runs`` as PNG bytes, drawn in
    memory; a batch's worker processes can draw it (this module needs numpy and matplotlib only)."""
    import io

    draw = {"comparison.png": comparison_figure, "security.png": security_figure,
            "ssim_vs_bpp.png": ssim_vs_bpp_figure}[name]  # fmt: skip
    fig = draw(runs)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    return buffer.getvalue()
