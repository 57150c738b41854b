"""The privacy-utility frontier: each (method, k, key mode) as a point, leakage against utility.

Leakage is the strongest attack's gain: the largest of the reconstruction attacks' SSIM gains over the mean
image and the recognition attack's accuracy gain over chance (both 0 when the attacker learns nothing, 1 at
most), with that attack's 95 % interval. Utility is what the key holder keeps without decrypting: the
learners' accuracy on the encrypted images over their accuracy on the plain ones, with its interval. A point
is on the Pareto front when no other point leaks less and keeps more (at least as good on both, better on
one). Read from the rows of :func:`imgvault.tracker.reports.compare.compare` (or a batch's child runs'
metrics, :func:`points_of_metrics`), for ``imgvault compare``, the report, the parent run's figure and the
gallery.
"""

from dataclasses import dataclass

from imgvault.tracker.reports.threat import attack_cells


@dataclass(frozen=True)
class Point:
    label: str  # "le k=4 (collection)"
    method: str
    leakage: float
    leakage_low: float | None
    leakage_high: float | None
    attack: str  # the strongest attack
    utility: float
    utility_low: float | None
    utility_high: float | None
    front: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _point(label: str, method: str, cells: dict, utility: dict) -> Point | None:
    gains = {name: cell for name, cell in cells.items() if "gain" in cell and cell["gain"] is not None}
    if not gains or utility.get("ratio") is None:
        return None
    attack, cell = max(gains.items(), key=lambda item: item[1]["gain"])
    return Point(label, method, cell["gain"], cell.get("gain_ci_low"), cell.get("gain_ci_high"), attack,
                 utility["ratio"], utility.get("ratio_ci_low"), utility.get("ratio_ci_high"))  # fmt: skip


def _label(method: str, k, fit: str) -> str:
    return (method if k is None else f"{method} k={k}") + f" ({fit})"


def points(rows: list[dict]) -> list[Point]:
    """The frontier's points from compare's rows that measured both an attack and the utility, the front marked."""
    found = [_point(_label(r["method"], r.get("k"), r["fit"]), r["method"], r.get("attacks") or {},
                    r.get("utility") or {}) for r in rows]  # fmt: skip
    return mark_front([p for p in found if p is not None])


def points_of_metrics(runs, fit: str) -> list[Point]:
    """The frontier's points from a batch's child runs (their ``method``, ``k``, ``metrics``, ``not_applicable``)."""
    found = []
    for run in runs:
        utility = {k[len("utility/") :]: v for k, v in run.metrics.items() if k.startswith("utility/")}
        found.append(_point(_label(run.method, run.k, fit), run.method,
                            attack_cells(run.metrics, run.not_applicable), utility))  # fmt: skip
    return mark_front([p for p in found if p is not None])


def mark_front(found: list[Point]) -> list[Point]:
    """``found`` with ``front`` set on the points no other point dominates (less leakage, more utility)."""

    def dominated(p: Point) -> bool:
        return any(
            q.leakage <= p.leakage and q.utility >= p.utility and (q.leakage < p.leakage or q.utility > p.utility)
            for q in found
        )

    return [Point(**{**p.__dict__, "front": not dominated(p)}) for p in found]


def reading(found: list[Point]) -> str:
    """One line that reads the plot: the front, and what keeps utility without leaking."""
    if not found:
        return "No run measured both an attack and the utility (run --attack on a labelled collection)."
    front = sorted((p for p in found if p.front), key=lambda p: p.leakage)
    shown = "; ".join(f"{p.label}: leakage {p.leakage:+.2f}, utility {p.utility:.2f}" for p in front)
    safe = [p for p in found if p.leakage_low is not None and p.leakage_low <= 0 and p.utility >= 0.9]
    verdict = (f"{', '.join(p.label for p in safe)} keep{'s' if len(safe) == 1 else ''} 90 % of the accuracy with no"
               " leakage the intervals can tell from 0" if safe else
               "No method keeps 90 % of the accuracy with leakage the intervals cannot tell from 0")  # fmt: skip
    return f"Pareto front (least leakage for its utility): {shown}. {verdict}."


def frontier_figure(found: list[Point]):
    """Leakage against utility, intervals as error bars, the front drawn through its points."""
    from imgvault.tracker.reports.figures import COLORS, FONT, marker_style, pyplot

    plt = pyplot()
    fig, axis = plt.subplots(figsize=(7.5, 5.2), layout="constrained")
    for p in found:
        xerr = None if p.utility_low is None else [[p.utility - p.utility_low], [p.utility_high - p.utility]]
        yerr = None if p.leakage_low is None else [[p.leakage - p.leakage_low], [p.leakage_high - p.leakage]]
        axis.errorbar(p.utility, p.leakage, xerr=xerr, yerr=yerr, color=COLORS.get(p.method, "black"),
                      linestyle="none", capsize=3, label=p.label, **marker_style(p.method))  # fmt: skip
    front = sorted((p for p in found if p.front), key=lambda p: p.utility)
    if front:
        axis.step([p.utility for p in front], [p.leakage for p in front], where="post", color="black",
                  linewidth=1, alpha=0.6, label="Pareto front")  # fmt: skip
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xlabel("utility: key holder's accuracy on encrypted images / on plain images", fontsize=FONT)
    axis.set_ylabel("leakage: strongest attack's gain (SSIM or accuracy over chance)", fontsize=FONT)
    axis.set_title("Privacy-utility frontier (lower right is better)", fontsize=FONT + 1)
    axis.tick_params(labelsize=FONT)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=FONT - 1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plt.close(fig)
    return fig


def frontier_png(found: list[Point]) -> bytes:
    import io

    from imgvault.tracker.reports.figures import pyplot

    fig = frontier_figure(found)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pyplot().close(fig)
    return buffer.getvalue()
