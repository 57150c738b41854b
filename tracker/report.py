"""A self-contained HTML report of one collection: quality and security by method, readable without MLflow.

The report is an export that leaves the encrypted store: it holds aggregate numbers and charts of them, no
image pixels and no file names, and says so at its top.
"""

import base64
import html
import io
from datetime import UTC, datetime

import numpy as np

from .compare import compare
from .figures import COLORS, pyplot

QUALITY = (("ssim_mean", "SSIM"), ("psnr_mean", "PSNR (dB)"), ("mse_mean", "MSE"), ("bpp_mean", "bits/pixel"))
SECURITY = (("entropy_mean", "entropy"), ("corr_h_mean", "corr h"), ("corr_v_mean", "corr v"),
            ("npcr_mean", "NPCR %"), ("uaci_mean", "UACI %"), ("visual_ssim_mean", "visual SSIM"),
            ("key_ssim_mean", "wrong-key SSIM"), ("attack_ssim", "attack SSIM"),
            ("attack_decoder_ssim", "key holder SSIM"), ("attack_baseline_ssim", "baseline SSIM"))  # fmt: skip


def _label(row) -> str:
    return f"{row['method']}" + ("" if row["k"] is None else f" k={row['k']}") + f" ({row['fit']})"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode()


def _bars(rows, panels, title):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 4.2))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.3, top=0.85, wspace=0.3)
    positions = np.arange(len(rows))
    for axis, (metric, name) in zip(np.atleast_1d(axes), panels, strict=True):
        axis.bar(positions, [np.nan if r.get(metric) is None else r[metric] for r in rows],
                 color=[COLORS.get(r["method"], "tab:gray") for r in rows])  # fmt: skip
        axis.set_xticks(positions, [_label(r) for r in rows], rotation=60, ha="right", fontsize=7)
        axis.set_title(name, fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    plt.close(fig)
    return fig


def _table(rows, columns) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for _, name in (("", "method"), *columns))
    body = []
    for row in rows:
        cells = [f"<td>{html.escape(_label(row))}</td>"]
        for metric, _ in columns:
            value = row.get(metric)
            if value is None and metric == "psnr_mean" and row.get("exact_fraction") == 1.0:
                text = "inf"
            else:
                text = "–" if value is None else f"{value:.3f}"
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _section(rows, collection: str) -> str:
    quality = _png(_bars(rows, QUALITY, "Quality of the reconstruction (0-255 scale)"))
    security = _png(_bars(rows, (("visual_ssim_mean", "visual SSIM"), ("key_ssim_mean", "wrong-key SSIM"),
                                 ("corr_h_mean", "adjacent correlation"), ("npcr_mean", "NPCR %")),
                          "How much the encrypted image leaks (0 is ideal; NPCR 99.61)"))  # fmt: skip
    attacked = [r for r in rows if r.get("attack_ssim") is not None]
    attack = ""
    if attacked:
        attack = _png(_bars(attacked, (("attack_ssim", "attacker"), ("attack_decoder_ssim", "key holder"),
                                       ("attack_baseline_ssim", "mean image")),
                            "Learning attack on held-out images (SSIM)"))  # fmt: skip
    scopes = sorted({(r["n_images"], r["size"], r["color"]) for r in rows})
    scope = "; ".join(f"{n} images, {size}x{size} {html.escape(color)}" for n, size, color in scopes)
    name = html.escape(collection)
    return f"""<section id="{name}">
<h2>Collection "{name}"</h2>
<p class="note">Latest finished run of each method and k ({scope}).</p>
<h3>Quality</h3>
{_table(rows, QUALITY)}
<img alt="quality by method on {name}" src="data:image/png;base64,{quality}">
<h3>Security</h3>
{_table(rows, SECURITY)}
<img alt="security by method on {name}" src="data:image/png;base64,{security}">
{f'<img alt="learning attack on {name}" src="data:image/png;base64,{attack}">' if attack else ""}
</section>
"""


def render_report(home, collections: str | list[str]) -> str:
    """The HTML page for one or several collections, from their latest runs (see :func:`compare`)."""
    collections = [collections] if isinstance(collections, str) else list(collections)
    rows = compare(home, collections)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"imgvault report: {html.escape(', '.join(collections))}"
    sections = "".join(_section([r for r in rows if r["collection"] == c], c) for c in collections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
.note {{ color: #555; max-width: 60em; }}
.export {{ border: 1px solid #888; background: #f4f4f4; padding: 0.5em 0.8em; max-width: 60em; }}
</style></head><body>
<p class="export" id="export-notice"><strong>This report contains no image pixels</strong> and no file names:
only collection names, methods, their settings, aggregate metrics and charts of them. It is an export: it
leaves the encrypted store, so keep it as you keep those numbers.</p>
<h1>{title}</h1>
<p class="note">Generated {generated}.
Quality is measured on 8-bit pixels (0-255). PCA, K-Means and GMM are lossy codecs, not ciphers: the security
measures show how much of the image their "encrypted" form gives away; AES-256-GCM is the reference.</p>
<p class="note">Security, ideal for a cipher: entropy 8 bits, adjacent correlations 0, NPCR 99.61 %, UACI
33.46 %, visual and wrong-key SSIM 0. The learning attack trains on 70 % of the collection and reconstructs the
rest from the encrypted images alone; near the key holder means the encryption is undone, near the mean image
means nothing was learnt.</p>
{sections}</body></html>
"""
