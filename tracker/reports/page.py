"""A self-contained HTML report of one or several collections: quality and security by method, readable
without MLflow, and printable (to PDF too).

The page is a list of :class:`Section` s, each made by one function of :data:`SECTIONS` from the
:class:`ReportData`; a table of contents links them. The report is an export that leaves the encrypted
store: it holds aggregate numbers and charts of them, no image pixels and no file names, and says so at
its top; with ``images``, it also holds that many sample images per method (decrypted from the store in
memory), and then its top says that instead.
"""

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imgvault.tracker.reports.compare import compare
from imgvault.tracker.reports.curves import attack_figure, png, rate_distortion_figure, security_figure
from imgvault.tracker.reports.tables import (
    ATTACK,
    QUALITY,
    SECURITY,
    failures_list,
    metric_table,
    summary_table,
    tests_table,
)
from imgvault.tracker.reports.threat import threat_html


@dataclass
class ReportData:
    """What the sections are made from: the collections asked for, their rows (see :func:`compare`, with the
    wholly failed configurations), and the store and the number of sample images, if samples are wanted."""

    collections: list[str]
    rows: list[dict]
    images: int = 0
    store: object = None

    def rows_of(self, collection: str) -> list[dict]:
        return [r for r in self.rows if r["collection"] == collection]


@dataclass
class Section:
    """One section of the page: its anchor, its heading (in the table of contents too) and its HTML body."""

    id: str
    title: str
    body: str
    subsections: list["Section"] = field(default_factory=list)


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def anchor(collection: str) -> str:
    """A collection's section id: its name with anything but letters, digits, - and _ replaced."""
    return "collection-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in collection)


def summary_section(data: ReportData) -> list[Section]:
    note = ('<p class="note">The latest run of each method and k on each collection: mean SSIM, PSNR (dB) and '
            "bits per pixel of the encoded image over the images it used, and how many images it used. "
            'A run that failed on every image says <span class="failed">failed</span>; see '
            '<a href="#failures">Failures</a>.</p>')  # fmt: skip
    return [Section("summary", "Summary across collections", note + summary_table(data.rows, data.collections))]


def rate_distortion_section(data: ReportData) -> list[Section]:
    body = ['<p class="note">Quality against the size of the encrypted image: one line per method through its '
            "values of k (labelled), one panel per collection. Up and to the left is better. AES is exact "
            "(PSNR infinite) at about 8 bits per pixel.</p>"]  # fmt: skip
    for metric, name in (("ssim", "SSIM"), ("psnr", "PSNR (dB)")):
        figure = rate_distortion_figure(data.rows, data.collections, metric, name)
        body.append(f'<figure class="chart">{_img(png(figure), f"{name} against bits per pixel")}'
                    f"<figcaption>{html.escape(name)} against bits per pixel</figcaption></figure>")  # fmt: skip
    return [Section("rate-distortion", "Rate and distortion", "".join(body))]


def failures_section(data: ReportData) -> list[Section]:
    note = ('<p class="note">Configurations that failed on some or all images, with the first error; a wholly '
            "failed one has no result in the tables.</p>")  # fmt: skip
    return [Section("failures", "Failures", note + failures_list(data.rows, data.collections))]


def collection_sections(data: ReportData) -> list[Section]:
    sections = []
    for collection in data.collections:
        rows = data.rows_of(collection)
        finished = [r for r in rows if r["status"] == "finished"]
        scopes = sorted({(r["n_images"], r["size"], r["color"], r["fit"]) for r in rows})
        scope = "; ".join(f"{n} images, {size}x{size} {color}, {fit} fit" for n, size, color, fit in scopes)
        name = html.escape(collection)
        quality = f'<p class="note">The latest run of each method and k ({html.escape(scope)}).</p>' + metric_table(
            rows, QUALITY, images=True
        )
        chart = _img(png(security_figure(finished)), f"security against bits per pixel on {name}")
        security = (
            metric_table(finished, SECURITY) + f'<figure class="chart">{chart}'
            "<figcaption>What the encrypted payload gives away, against its bits per pixel (means over the "
            "images)</figcaption></figure>"
        )
        parts = [Section(f"{anchor(collection)}-quality", "Quality", quality),
                 Section(f"{anchor(collection)}-security", "Security", security),
                 Section(f"{anchor(collection)}-tests", "Randomness tests at the payload's size (alpha 0.05)",
                         tests_table(finished))]  # fmt: skip
        attacked = [r for r in finished if r.get("attack_ssim") is not None]
        if attacked:
            chart = _img(png(attack_figure(attacked)), f"learning attack on {name}")
            body = metric_table(attacked, ATTACK) + f'<figure class="chart">{chart}</figure>'
            parts.append(Section(f"{anchor(collection)}-attack", "Learning attack", body))
        matrix = threat_html(finished)
        if matrix:
            parts.append(Section(f"{anchor(collection)}-threats", "Threat matrix", matrix))
        frontier = frontier_html(finished)
        if frontier:
            parts.append(Section(f"{anchor(collection)}-frontier", "Privacy-utility frontier", frontier))
        sections.append(Section(anchor(collection), f'Collection "{collection}"', "", parts))
    return sections


def frontier_html(rows: list[dict]) -> str:
    """The frontier's figure, its reading and its points as a table (empty if no row measured the utility)."""
    from imgvault.tracker.reports.frontier import frontier_png, points, reading

    found = points(rows)
    if not found:
        return ""
    import base64

    chart = _img(base64.b64encode(frontier_png(found)).decode(), "privacy-utility frontier")

    def interval(low, high, form):
        return "" if low is None or high is None else f" [{low:{form}}, {high:{form}}]"

    body = "".join(
        f"<tr><td>{html.escape(p.label)}</td><td>{p.leakage:+.3f}{interval(p.leakage_low, p.leakage_high, '+.3f')}"
        f"</td><td>{html.escape(p.attack)}</td><td>{p.utility:.2f}{interval(p.utility_low, p.utility_high, '.2f')}</td>"
        f"<td>{'yes' if p.front else ''}</td></tr>"
        for p in sorted(found, key=lambda p: (p.leakage, -p.utility))
    )
    return (f'<p class="note">{html.escape(reading(found))}</p><figure class="chart">{chart}</figure>'
            "<table><tr><th>point</th><th>leakage [95 % CI]</th><th>strongest attack</th>"
            f"<th>utility [95 % CI]</th><th>on the front</th></tr>{body}</table>")  # fmt: skip


def samples_section(data: ReportData) -> list[Section]:
    if not data.images:
        return []
    from imgvault.tracker.reports.samples import samples_html

    body = [f'<p class="note">{data.images} image(s) per method, decrypted from the store for this page: '
            "original, encrypted, decoded, and the error x4, at the largest k of each method.</p>"]  # fmt: skip
    subsections = [Section(f"{anchor(c)}-samples", f'Collection "{c}"', samples_html(data.store, data.rows_of(c),
                                                                                       data.images))
                   for c in data.collections]  # fmt: skip
    return [Section("samples", "Sample images", "".join(body), subsections)]


#: the page's sections in order; another section (a threat matrix, say) is a function added here
SECTIONS: list[Callable[[ReportData], list[Section]]] = [
    summary_section,
    rate_distortion_section,
    failures_section,
    collection_sections,
    samples_section,
]

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
th.group { text-align: center; }
td.error { text-align: left; }
img { max-width: 100%; height: auto; }
figure { margin: 1em 0; }
figcaption { color: #555; font-size: 0.85em; }
.note { color: #555; }
.failed { color: #b00020; font-weight: bold; }
.export { border: 1px solid #888; background: #f4f4f4; padding: 0.5em 0.8em; }
.export.pixels { border: 2px solid #b00020; background: #fff4f4; }
.samples { display: flex; flex-wrap: wrap; gap: 0.5em; }
.samples figure { margin: 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  section.top { break-before: page; }
  section.top:first-of-type { break-before: auto; }
  figure, tr, .export { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  table { font-size: 8pt; width: 100%; }
  th, td { padding: 0.15em 0.3em; }
  a { color: inherit; text-decoration: none; }
}
"""


def _notice(images: int) -> str:
    if images:
        return (f'<p class="export pixels" id="export-notice"><strong>This report contains image pixels</strong>: '
                f"{images} sample image(s) per method, decrypted from the store (original, encrypted, decoded). "
                "Keep it as you keep the images themselves. It holds no file names.</p>")  # fmt: skip
    return ('<p class="export" id="export-notice"><strong>This report contains no image pixels</strong> and no '
            "file names: only collection names, methods, their settings, aggregate metrics and charts of them. "
            "It is an export: it leaves the encrypted store, so keep it as you keep those numbers.</p>")  # fmt: skip


def _render(section: Section, level: int) -> str:
    inner = "".join(_render(s, level + 1) for s in section.subsections)
    css = ' class="top"' if level == 2 else ""
    return (f'<section id="{section.id}"{css}><h{level}>{html.escape(section.title)}</h{level}>'
            f"{section.body}{inner}</section>\n")  # fmt: skip


def _contents(sections: list[Section]) -> str:
    def item(section: Section) -> str:
        inner = "".join(item(s) for s in section.subsections)
        inner = f"<ol>{inner}</ol>" if inner else ""
        return f'<li><a href="#{section.id}">{html.escape(section.title)}</a>{inner}</li>'

    return f'<nav id="contents"><h2>Contents</h2><ol>{"".join(item(s) for s in sections)}</ol></nav>'


def render_report(home, collections: str | list[str], *, images: int = 0, store=None) -> str:
    """The HTML page for one or several collections, from their latest runs (see :func:`compare`).

    With ``images`` > 0, that many sample images per method, decrypted from ``store`` (required then).
    """
    collections = [collections] if isinstance(collections, str) else list(collections)
    if images and store is None:
        raise ValueError("sample images need the store")
    data = ReportData(collections, compare(home, collections, with_failed=True), images, store)
    sections = [section for build in SECTIONS for section in build(data)]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"imgvault report: {html.escape(', '.join(collections))}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{CSS}</style></head><body>
{_notice(images)}
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
{_contents(sections)}
{"".join(_render(s, 2) for s in sections)}</body></html>
"""
