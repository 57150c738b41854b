"""The security tables of ``imgvault compare`` (and the demo): measures, tests at the payload's size, attack."""

import click

from .printing import plain_table

NA = "n/a"


def _value(row: dict, name: str, digits: int = 3) -> str:
    value = row.get(name)
    if value is None:
        return NA if name.split("_pass_rate")[0] in row.get("not_applicable", {}) else "-"
    return f"{value:.{digits}f}"


def _test(row: dict, measure: str, criterion: str) -> str:
    """``7.671±0.028 0.95``: a test's criterion at the payload's size and the share of images passing it."""
    if measure in row.get("not_applicable", {}) or not row.get("criteria"):
        return NA
    return f"{criterion} {_value(row, f'{measure}_pass_rate', 2)}"


def _criteria(row: dict) -> tuple[str, str, str, str]:
    c = row.get("criteria") or {}
    if not c:
        return NA, NA, NA, NA
    return (_test(row, "entropy", f"{c['entropy_expected']:.3f}±{c['entropy_sd']:.3f}"),
            _test(row, "chi2", f"<{c['chi2_critical']:.1f}"), _test(row, "npcr", f">={c['npcr_critical']:.3f}"),
            _test(row, "uaci", f"{c['uaci_low']:.2f}-{c['uaci_high']:.2f}"))  # fmt: skip


def _whole(row: dict, name: str) -> str:
    value = (row.get("criteria") or {}).get(name)
    return NA if value is None else f"{value:.0f}"


def _gain(row: dict) -> str:
    if row.get("attack_gain") is None:
        return "-"
    return f"{row['attack_gain']:+.3f} [{row['attack_gain_ci_low']:+.3f}, {row['attack_gain_ci_high']:+.3f}]"


def print_security(rows: list[dict], width: int) -> None:
    """The measures (means over images), the randomness tests at each payload's size, the learning attack,
    and why the measures marked n/a do not apply."""
    # The setting as well as the method: two runs of one method at two sizes or colours are two rows.
    key = [("COLLECTION", width), ("METHOD", 8), ("K", 4), ("FIT", 10), ("SIZE", 9)]

    def head(r):
        return r["collection"], r["method"], r["k"] or "-", r["fit"], f"{r['size']} {r['color']}"

    click.echo()
    click.echo(
        "Security of the encrypted payloads (means over images; a cipher: correlations and SSIMs near 0; "
        "KEY_SENS: share of the payload changed by one key bit; KEYSPACE: bits)"
    )
    plain_table(
        [*key, ("ENTROPY", 8), ("CHI2", 9), ("CORR_H", 7), ("CORR_V", 7), ("NPCR", 7), ("UACI", 7),
         ("VISUAL", 7), ("KEY", 6), ("KEY_SENS", 8), ("KEYSPACE", 0)],
        ((*head(r), _value(r, "entropy"), _value(r, "chi2", 1), _value(r, "corr_h"), _value(r, "corr_v"),
          _value(r, "npcr"), _value(r, "uaci"), _value(r, "visual_ssim"), _value(r, "key_ssim"),
          _value(r, "key_sensitivity"), _value(r, "key_space_bits", 0)) for r in rows),
    )  # fmt: skip
    click.echo()
    click.echo("Randomness tests at each payload's size N (alpha 0.05): criterion, then the share of images passing")
    plain_table(
        [*key, ("N", 6), ("LEVELS", 6), ("ENTROPY", 18), ("CHI2", 12), ("NPCR", 15), ("UACI", 0)],
        ((*head(r), _whole(r, "n"), _whole(r, "levels"), *_criteria(r)) for r in rows),
    )  # fmt: skip
    attacked = [r for r in rows if r.get("attack_ssim") is not None]
    if attacked:
        click.echo()
        click.echo("Learning attack on held-out images (SSIM, mean over splits; gain over the mean image, 95 % CI)")
        plain_table(
            [*key, ("ATTACK", 7), ("KEY_HOLDER", 10), ("BASELINE", 8), ("GAIN [95% CI]", 26), ("MODEL", 0)],
            ((*head(r), _value(r, "attack_ssim"), _value(r, "attack_key_holder_ssim"),
              _value(r, "attack_baseline_ssim"), _gain(r), r.get("attack_model") or "-") for r in attacked),
        )  # fmt: skip
    print_threat_matrix(rows, width)
    print_frontier(rows, width)
    reasons = sorted({(r["method"], r["fit"], name, why) for r in rows
                      for name, why in r.get("not_applicable", {}).items()
                      if not name.startswith("attack/")})  # fmt: skip
    by_reason: dict[tuple[str, str, str], list[str]] = {}
    for method, fit, name, why in reasons:
        by_reason.setdefault((method, fit, why), []).append(name)
    for (method, fit, why), names in by_reason.items():
        click.echo(f"n/a: {method} ({fit} fit) {', '.join(names)}: {why}")


def print_threat_matrix(rows: list[dict], width: int) -> None:
    """Rows method and key mode, columns the attacks: the SSIM gain over the mean image with its 95 % interval
    (and for jigsaw and permutation the share of blocks or positions recovered); then why each n/a is one."""
    from imgvault.tracker.reports.threat import ATTACK_NAMES, HOLDS, UTILITY, matrix_rows, reasons

    matrix = matrix_rows(rows)
    if not matrix:
        return
    click.echo()
    click.echo("Threat matrix (SSIM gain over the mean image on held-out images, 95 % CI; n/a: does not apply)")
    for name in ATTACK_NAMES:
        click.echo(f"  {name}: {HOLDS[name]}")
    click.echo(f"  utility: {UTILITY}")

    def cell(r, name):
        return r[name] + (f" {r[name + '_extra']}" if r[name + "_extra"] else "")

    plain_table(
        [("COLLECTION", width), ("METHOD", 12), ("FIT", 10), ("SIZE", 9), ("KEY_BITS", 8), ("KEY_SENS", 8),
         ("INVERSION", 24), ("INVERSION_BLOCKS", 24), ("JIGSAW", 38), ("PERMUTATION", 38), ("RECOGNITION", 42),
         ("UTILITY", 0)],
        ((r["collection"], r["method"], r["fit"], r["setting"], r["key_space_bits"], r["key_sensitivity"],
          *(cell(r, name) for name in ATTACK_NAMES), r["utility"]) for r in matrix),
    )  # fmt: skip
    for line in reasons(rows):
        click.echo(line)


def print_frontier(rows: list[dict], width: int) -> None:
    """Each (method, k, key mode) that measured an attack and the utility: leakage against utility, with
    intervals, the Pareto front marked, and the one line that reads it."""
    from imgvault.tracker.reports.frontier import points, reading

    by_collection: dict[str, list[dict]] = {}
    for row in rows:
        by_collection.setdefault(row["collection"], []).append(row)
    for collection, its_rows in by_collection.items():
        found = points(its_rows)
        if not found:
            continue
        click.echo()
        click.echo(f"Privacy-utility frontier of {collection} (leakage: the strongest attack's gain; utility: the key"
                   " holder's accuracy on encrypted over plain images; * on the Pareto front)")  # fmt: skip

        def interval(low, high, form):
            return "" if low is None or high is None else f" [{low:{form}}, {high:{form}}]"

        plain_table(
            [("POINT", 28), ("LEAKAGE", 26), ("ATTACK", 16), ("UTILITY", 22), ("FRONT", 0)],
            ((p.label, f"{p.leakage:+.3f}{interval(p.leakage_low, p.leakage_high, '+.3f')}", p.attack,
              f"{p.utility:.2f}{interval(p.utility_low, p.utility_high, '.2f')}", "*" if p.front else "")
             for p in sorted(found, key=lambda p: (p.leakage, -p.utility))),
        )  # fmt: skip
        click.echo(reading(found))
