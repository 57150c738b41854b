"""The parent run's comparison figures: methods side by side with their spread across images."""

import numpy as np

PANELS = (("ssim", "SSIM (higher is closer)"), ("psnr", "PSNR, dB (finite values)"), ("mse", "MSE (0-255)"),
          ("bpp", "bits per pixel of the encoded image"))  # fmt: skip


def _label(run) -> str:
    return run.method if run.k is None else f"{run.method}\nk={run.k}"


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed); imported on first use, it takes ~0.6 s."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def comparison_figure(runs):
    """One box plot per metric: every (method, k) side by side, the boxes showing the spread over images."""
    plt = pyplot()
    # Fixed margins: matplotlib's constrained layout triples the time to save the figure.
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 4.4))
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.16, top=0.84, wspace=0.22)
    for axis, (metric, title) in zip(axes, PANELS, strict=True):
        data, labels = [], []
        for run in runs:
            finite = [v for v in run.values.get(metric, []) if v is not None and np.isfinite(v)]
            data.append(finite if finite else [np.nan])
            labels.append(_label(run))
        axis.boxplot(data, tick_labels=labels, showmeans=True)
        axis.set_title(title)
        axis.tick_params(axis="x", labelsize=8)
        axis.grid(axis="y", alpha=0.3)
    fig.suptitle("Quality and cost by method, spread across the images of the collection")
    plt.close(fig)
    return fig


def ssim_vs_bpp_figure(runs):
    """Mean SSIM against mean bits per pixel, one curve per method through its values of k."""
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(6.4, 4.8))
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
    for method in dict.fromkeys(run.method for run in runs):
        points = sorted((r.metrics.get("bpp_mean", np.nan), r.metrics.get("ssim_mean", np.nan), r.k)
                        for r in runs if r.method == method)  # fmt: skip
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
        for bpp, ssim, k in points:
            if k is not None:
                axis.annotate(f"k={k}", (bpp, ssim), textcoords="offset points", xytext=(4, -10), fontsize=7)
    axis.set_xlabel("bits per pixel of the encoded image")
    axis.set_ylabel("mean SSIM")
    axis.set_title("SSIM against size of the encrypted image")
    axis.grid(alpha=0.3)
    axis.legend()
    plt.close(fig)
    return fig


SECURITY_PANELS = (
    ("visual_ssim_mean", "how recognisable the encrypted image is\n(SSIM with the original; 0 is ideal)"),
    ("key_ssim_mean", "what a wrong key gives\n(SSIM with the original; 0 is ideal)"),
    ("corr_h_mean", "adjacent-pixel correlation of the\nencrypted image (0 is ideal)"),
    ("entropy_mean", "entropy of the encrypted image,\nbits (8 is ideal)"),
    ("npcr_mean", "NPCR after a one-level change, %\n(99.61 is ideal)"),
)


def security_figure(runs):
    """The security measures side by side per method (means over images), and the learning attack."""
    plt = pyplot()
    attacked = [r for r in runs if "attack_ssim" in r.metrics]
    panels = len(SECURITY_PANELS) + (1 if attacked else 0)
    fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 4.4))
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.16, top=0.80, wspace=0.3)
    labels = [_label(r) for r in runs]
    positions = np.arange(len(runs))
    for axis, (metric, title) in zip(axes, SECURITY_PANELS, strict=False):
        axis.bar(positions, [r.metrics.get(metric, np.nan) for r in runs], color="tab:blue")
        axis.set_xticks(positions, labels, fontsize=7)
        axis.set_title(title, fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    if attacked:
        axis = axes[-1]
        at = np.arange(len(attacked))
        axis.bar(at - 0.27, [r.metrics["attack_ssim"] for r in attacked], 0.27, label="attacker")
        axis.bar(at, [r.metrics["attack_decoder_ssim"] for r in attacked], 0.27, label="key holder")
        axis.bar(at + 0.27, [r.metrics["attack_baseline_ssim"] for r in attacked], 0.27, label="mean image")
        axis.set_xticks(at, [_label(r) for r in attacked], fontsize=7)
        axis.set_title("learning attack on held-out images\n(SSIM; near the key holder = undone)", fontsize=9)
        axis.legend(fontsize=7)
        axis.grid(axis="y", alpha=0.3)
    fig.suptitle("How much each encrypted image leaks")
    plt.close(fig)
    return fig
