"""The report's tables, as HTML: the summary across collections, and each collection's quality, security,
randomness tests and learning attack, with the images each row used and failed on."""

import html

from imgvault.tracker.reports.compare import failure_line, label
from imgvault.tracker.reports.curves import setting, setting_text

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
#: measures that count something: printed as integers
COUNTS = {"attack_splits", "attack_test_images", "key_space_bits", "n", "levels"}


def row_label(row: dict, rows: list[dict]) -> str:
    """``pca k=8``, with its setting when the rows hold several."""
    several = len({setting(r) for r in rows}) > 1
    return label(row) + (f" ({setting_text(setting(row))})" if several else "")


def _cell(row: dict, metric: str) -> str:
    value = row.get(metric)
    why = row.get("not_applicable", {}).get(metric)
    if value is None and metric == "psnr" and row.get("exact_fraction") == 1.0:
        return "inf"
    if value is None and why:
        return f'<abbr title="{html.escape(why)}">N/A</abbr>'
    if value is None:
        return "–"
    return f"{value:.0f}" if metric in COUNTS else f"{value:.3f}"


def _images(row: dict) -> list[str]:
    """The used and failed cells: ``6 of 6``, and the failures marked when there are any."""
    failed = row["failed_images"]
    return [f"{row['used_images']} of {row['n_images']}", f'<span class="failed">{failed}</span>' if failed else "0"]


def _table(head: list[str], body: list[list[str]]) -> str:
    """A table; a cell that is already a ``<td ...>`` (one spanning columns, say) is kept as it is."""
    cells = "".join(f"<th>{name}</th>" for name in head)
    lines = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row)
                    + "</tr>" for row in body)  # fmt: skip
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{lines}</tbody></table>"


def metric_table(rows: list[dict], columns, *, images: bool = False) -> str:
    """One line per row: its label, the images used and failed (if ``images``), then ``columns``."""
    head = ["method", *(["images used", "failed"] if images else []), *(html.escape(n) for _, n in columns)]
    body = []
    for row in rows:
        cells = [html.escape(row_label(row, rows)), *(_images(row) if images else [])]
        if row["status"] == "failed":
            cells.append(f'<td colspan="{len(columns)}" class="error"><span class="failed">failed</span>: '
                         f"{html.escape(row['error'] or '')}</td>")  # fmt: skip
        else:
            cells += [_cell(row, metric) for metric, _ in columns]
        body.append(cells)
    return _table(head, body)


def tests_table(rows: list[dict]) -> str:
    """Each randomness test's criterion at the run's payload size N, and the share of images passing it;
    N/A with the reason where a test does not apply."""
    body = []
    for row in rows:
        c = row.get("criteria") or {}
        cells = [html.escape(row_label(row, rows)), *(f"{c[n]:.0f}" if n in c else "–" for n in ("n", "levels"))]
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
        body.append(cells)
    return _table(["method", "N", "levels", *(n for _, n in TESTS)], body)


def summary_table(rows: list[dict], collections: list[str]) -> str:
    """Every (method, k) down, every (collection, setting) across: SSIM, PSNR, bits per pixel and the images
    used of each, so that one method's behaviour on every collection reads along one line."""
    groups = list(dict.fromkeys((r["collection"], setting(r)) for c in collections for r in rows
                                if r["collection"] == c))  # fmt: skip
    configurations = sorted({(r["method"], r["k"]) for r in rows}, key=lambda mk: (mk[0], mk[1] or 0))
    by_key = {(r["method"], r["k"], r["collection"], setting(r)): r for r in rows}
    top = "".join(f'<th colspan="4" class="group">{html.escape(c)}<br>'
                  f"<small>{html.escape(setting_text(s))}</small></th>" for c, s in groups)  # fmt: skip
    sub = "".join("<th>SSIM</th><th>PSNR</th><th>bpp</th><th>images</th>" for _ in groups)
    body = []
    for method, k in configurations:
        cells = [html.escape(method if k is None else f"{method} k={k}")]
        for collection, key in groups:
            row = by_key.get((method, k, collection, key))
            if row is None:
                cells += ["", "", "", ""]
            elif row["status"] == "failed":
                cells += ['<span class="failed">failed</span>', "", "", f"0 of {row['n_images']}"]
            else:
                used = f"{row['used_images']} of {row['n_images']}"
                if row["failed_images"]:
                    used = f'<span class="failed">{used}</span>'
                cells += [_cell(row, "ssim"), _cell(row, "psnr"), _cell(row, "bpp"), used]
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (f'<table class="summary"><thead><tr><th rowspan="2">method</th>{top}</tr><tr>{sub}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")  # fmt: skip


def failures_list(rows: list[dict], collections: list[str]) -> str:
    """Every configuration that failed on some images, wholly failed ones first, with its first error."""
    failed = [r for c in collections for r in rows if r["collection"] == c and r["failed_images"]]
    failed.sort(key=lambda r: r["status"] != "failed")
    if not failed:
        return "<p>No image failed in the runs shown.</p>"

    def same(r):
        return [x for x in rows if x["collection"] == r["collection"]]

    items = "".join(f"<li><strong>{html.escape(r['collection'])}: {html.escape(row_label(r, same(r)))}</strong>"
                    f"{' (no result)' if r['status'] == 'failed' else ''}: {html.escape(failure_line(r))}</li>"
                    for r in failed)  # fmt: skip
    return f'<ul class="failures">{items}</ul>'
