"""The threat matrix: rows method and key mode, columns the attacks, cells the gain with its interval.

Read from the runs' metrics (``attack_*`` for the whole-image inversion, ``attack/<name>/<figure>`` for the
others, ``utility/<figure>`` for the key holder's side) and their ``imgvault.not_applicable.attack/<name>``
tags; shared by ``imgvault compare`` and the report.
"""

import html

ATTACK_NAMES = ("inversion", "inversion_blocks", "jigsaw", "permutation", "recognition")
#: what each attacker holds, for the tables' legends
HOLDS = {
    "inversion": "known plaintext, whole images: a learned map from encrypted image to image",
    "inversion_blocks": "known plaintext, per MxM block: a linear map from the cipher block's bits",
    "jigsaw": "ciphertext only: blocks reassembled by edge compatibility",
    "permutation": "chosen plaintext: the permutation read back from ceil(log_256 N) chosen images",
    "recognition": "labelled encrypted images, no key: a classifier trained on them (gain: accuracy over chance)",
}
#: the key holder's side, beside the attacks
UTILITY = "the key holder's accuracy on the encrypted images over the plain images', same learners and splits"
#: the figure each attack adds besides its gains, shown in its cell
EXTRA = {"jigsaw": ("blocks_in_place", "in place"), "permutation": ("recovered_fraction", "recovered"),
         "recognition": ("accuracy", "accuracy")}  # fmt: skip
PREFIX = "attack/"


def attack_cells(metrics: dict, not_applicable: dict) -> dict:
    """``{attack: {figure: value}}``, or ``{attack: {"not_applicable": why}}``; empty if no attack ran."""
    cells = {}
    if metrics.get("attack_gain") is not None:
        cells["inversion"] = {"gain": metrics["attack_gain"], "gain_ci_low": metrics.get("attack_gain_ci_low"),
                              "gain_ci_high": metrics.get("attack_gain_ci_high"), "ssim": metrics.get("attack_ssim"),
                              "baseline_ssim": metrics.get("attack_baseline_ssim")}  # fmt: skip
    for key, value in metrics.items():
        if key.startswith(PREFIX) and key.count("/") == 2:
            _, name, figure = key.split("/")
            cells.setdefault(name, {})[figure] = value
    for key, why in not_applicable.items():
        if key.startswith(PREFIX):
            cells[key[len(PREFIX) :]] = {"not_applicable": why}
    return cells


def cell_text(cell: dict | None) -> str:
    """``+0.412 [+0.398, +0.425]``, ``n/a``, or ``-`` (not run)."""
    if not cell:
        return "-"
    if "not_applicable" in cell:
        return "n/a"
    low, high = cell.get("gain_ci_low"), cell.get("gain_ci_high")
    interval = "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"
    return f"{cell['gain']:+.3f}{interval}"


def _extra(name: str, cell: dict | None) -> str:
    if not cell or name not in EXTRA or EXTRA[name][0] not in cell:
        return ""
    figure, label = EXTRA[name]
    thwarted = ", thwarted" if cell.get("thwarted") == 1 else ""
    return f"{cell[figure]:.0%} {label}{thwarted}"


def utility_text(utility: dict, not_applicable: dict) -> str:
    """``0.98 [0.91, 1.05]``, ``n/a``, or ``-`` (not measured), from a row's ``utility`` figures."""
    ratio = utility.get("ratio")
    if ratio is None:
        return "n/a" if "attack/recognition" in not_applicable else "-"  # measured with the recognition attack
    low, high = utility.get("ratio_ci_low"), utility.get("ratio_ci_high")
    interval = "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"
    return f"{ratio:.2f}{interval}"


def _number(row: dict, name: str, digits: int) -> str:
    value = row.get(name)
    if value is None:
        return "n/a" if name in (row.get("not_applicable") or {}) else "-"
    return f"{value:.{digits}f}"


def matrix_rows(rows: list[dict]) -> list[dict]:
    """The matrix from :func:`imgvault.tracker.reports.compare.compare`'s rows that ran attacks: one dict per row
    with ``method``, ``fit``, ``key_space_bits``, ``key_sensitivity`` and each attack's cell text."""
    out = []
    for row in rows:
        cells = row.get("attacks") or {}
        if not cells:
            continue
        label = row["method"] + ("" if row.get("k") is None else f" k={row['k']}")
        out.append({"collection": row["collection"], "method": label, "fit": row["fit"],
                    "setting": f"{row.get('size')} {row.get('color')}",
                    "key_space_bits": _number(row, "key_space_bits", 0),
                    "key_sensitivity": _number(row, "key_sensitivity", 3),
                    **{name: cell_text(cells.get(name)) for name in ATTACK_NAMES},
                    "utility": utility_text(row.get("utility") or {}, row.get("not_applicable") or {}),
                    **{f"{name}_extra": _extra(name, cells.get(name)) for name in ATTACK_NAMES}})  # fmt: skip
    return out


def reasons(rows: list[dict]) -> list[str]:
    """One line per (method, key mode, attack) that does not apply: why."""
    lines = set()
    for row in rows:
        for name, cell in (row.get("attacks") or {}).items():
            if "not_applicable" in cell:
                lines.add(f"n/a: {row['method']} ({row['fit']} fit) {name}: {cell['not_applicable']}")
    return sorted(lines)


def threat_html(rows: list[dict]) -> str:
    """The report's threat-matrix section (empty if no run of ``rows`` ran the attacks)."""
    matrix = matrix_rows(rows)
    if not matrix:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("method", "key mode", "size", "key space (bits)", "key sensitivity",
                                               *ATTACK_NAMES, "utility"))  # fmt: skip
    body = []
    for r in matrix:
        cells = [
            html.escape(r["method"]),
            html.escape(r["fit"]),
            html.escape(r["setting"]),
            r["key_space_bits"],
            r["key_sensitivity"],
        ]
        cells += [r[name] + (f"<br><small>{r[name + '_extra']}</small>" if r[name + "_extra"] else "")
                  for name in ATTACK_NAMES]  # fmt: skip
        cells.append(html.escape(r["utility"]))
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    legend = "".join(f"<li><b>{name}</b>: {html.escape(HOLDS[name])}</li>" for name in ATTACK_NAMES)
    legend += f"<li><b>utility</b>: {html.escape(UTILITY)}</li>"
    why = "".join(f"<li>{html.escape(line)}</li>" for line in reasons(rows))
    return f"""<p class="note">Each cell: the attack's SSIM gain over the mean training image on held-out images
(recognition: its accuracy over chance), mean over repeated splits, with its 95 % interval; near 0 the attacker
learns nothing, toward the key holder it undoes the encryption. Utility: what the key holder's classifier keeps.
n/a: the attack does not apply (reasons below).</p>
<table><tr>{head}</tr>{"".join(body)}</table>
<ul class="note">{legend}</ul>
<ul class="note">{why}</ul>
"""
