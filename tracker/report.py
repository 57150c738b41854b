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
from .threat import threat_html

QUALITY = (("ssim", "SSIM"), ("psnr", "PSNR (dB)"), ("mse", "MSE"), ("bpp", "bits/pixel"))
SECURITY = (
    ("entropy", "entropy"),
    ("chi2", "chi-square"),
    ("corr_h", "corr h"),
    ("corr_v", "corr v"),
    ("npcr", "NPCR %"),
    ("uaci", "UACI %"),
    ("visual_ssim", "visual SSIM"),
    ("key_ssim", "wrong-key SSIM"),
)
TESTS = (("entropy", "entropy"), ("chi2", "chi-square"), ("npcr", "NPCR"), ("uaci", "UACI"))
ATTACK = (("attack_ssim", "attacker SSIM"), ("attack_key_holder_ssim", "key holder SSIM"),
          ("attack_baseline_ssim", "mean image SSIM"), ("attack_gain", "gain"),
          ("attack_gain_ci_low", "gain, 95 % low"), ("attack_gain_ci_high", "gain, 95 % high"),
          ("attack_splits", "splits"))  # fmt: skip


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
            why = row.get("not_applicable", {}).get(metric)
            if value is None and metric == "psnr" and row.get("exact_fraction") == 1.0:
                text = "inf"
            elif value is None and why:
                text = f'<abbr title="{html.escape(why)}">N/A</abbr>'
            else:
                text = "–" if value is None else f"{value:.3f}"
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _tests(rows) -> str:
    """Each randomness test's criterion at the run's payload size N, and the share of images passing it;
    N/A with the reason where a test does not apply."""
    head = "".join(f"<th>{name}</th>" for name in ("method", "N", "levels", *(n for _, n in TESTS)))
    body = []
    for row in rows:
        c = row.get("criteria") or {}
        cells = [html.escape(_label(row)), str(c.get("n", "–")), str(c.get("levels", "–"))]
        for measure, _ in TESTS:
            why = row.get("not_applicable", {}).get(measure)
            if why or not c:
                cells.append(f"N/A: {html.escape(why or 'no discrete payload')}")
                continue
            criterion = {"entropy": f"{c['entropy_expected']:.3f} ± {c['entropy_sd']:.3f}",
                         "chi2": f"&lt; {c['chi2_critical']:.1f}", "npcr": f"≥ {c['npcr_critical']:.3f} %",
                         "uaci": f"{c['uaci_low']:.2f}-{c['uaci_high']:.2f} %"}[measure]  # fmt: skip
            rate = row.get(f"{measure}_pass_rate")
            cells.append(f"{criterion}: {'–' if rate is None else f'{rate:.0%}'} pass")
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _section(rows, collection: str) -> str:
    quality = _png(_bars(rows, QUALITY, "Quality of the reconstruction (0-255 scale)"))
    security = _png(_bars(rows, (("visual_ssim", "visual SSIM"), ("key_ssim", "wrong-key SSIM"),
                                 ("corr_h", "adjacent correlation"), ("entropy_pass_rate", "entropy test passed")),
                          "How much the encrypted payload leaks (SSIMs and correlation: 0 is ideal)"))  # fmt: skip
    attacked = [r for r in rows if r.get("attack_ssim") is not None]
    attack = ""
    if attacked:
        attack = _png(_bars(attacked, (("attack_ssim", "attacker"), ("attack_key_holder_ssim", "key holder"),
                                       ("attack_baseline_ssim", "mean image")),
                            "Learning attack on held-out images (SSIM, mean over splits)"))  # fmt: skip
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
<h3>Randomness tests at the payload's size (alpha 0.05)</h3>
{_tests(rows)}
<img alt="security by method on {name}" src="data:image/png;base64,{security}">
{f"<h3>Learning attack</h3>{_table(attacked, ATTACK)}" if attacked else ""}
{f'<img alt="learning attack on {name}" src="data:image/png;base64,{attack}">' if attack else ""}
{threat_html(rows)}
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
Quality is measured on 8-bit pixels (0-255); SSIM with Wang et al. 2004's settings (11x11 Gaussian window,
sigma 1.5, population covariances). PCA, K-Means and GMM are lossy codecs, not ciphers: the security measures
show how much of the image their "encrypted" form gives away; AES-256-GCM is the reference.</p>
<p class="note">The security measures are taken on the payload as data (PCA scores, label maps on their k
levels, ciphertext bytes), never on its picture. Each randomness test is judged against what a random payload
of the same size N and number of levels scores (the expected entropy and its sd, the chi-square critical value,
Wu et al.'s NPCR critical value and UACI interval at alpha 0.05), not against the N -> infinity ideals; a test
that does not apply is N/A with its reason. The learning attack trains on 70 % of the collection, chooses its
model and hyperparameters by cross-validation on that part only, and reconstructs the rest from the encrypted
images alone, over repeated splits; its gain over the mean image has a 95 % confidence interval. Near the key
holder means the encryption is undone, near the mean image means nothing was learnt.</p>
{sections}</body></html>
"""
