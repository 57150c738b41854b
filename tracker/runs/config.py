"""What a batch runs (:class:`BatchConfig`) and what it gives back (:class:`ImageResult`, :class:`ChildRun`,
:class:`BatchResult`)."""

from dataclasses import dataclass, field

DEFAULT_FIGURES = 25


@dataclass(frozen=True)
class BatchConfig:
    """What a batch runs. ``ks`` sets each method's knob (:data:`imgvault.methods.registry.KNOBS`); empty: each
    method's default. Methods without a knob (aes, pe, logistic) run once."""

    methods: tuple[str, ...] = ("pca", "kmeans", "gmm", "aes")
    ks: tuple[int, ...] = ()
    size: int = 100
    color: str = "gray"
    fit: str = "image"
    jobs: int = -1
    experiment: str | None = None
    random_state: int = 0
    figures: int = DEFAULT_FIGURES
    attack: bool = False
    scheduler: str | None = None  # a Dask scheduler's address: per-image work runs on its cluster
    plaintext_figures: bool = False  # log per-image figures even to an artifact store that does not seal

    def configurations(self) -> list[tuple[str, int | None]]:
        from imgvault.methods.registry import knob

        def values(method):
            setting = knob(method)
            return (None,) if setting is None else self.ks or (setting.default,)

        return [(m, k) for m in self.methods for k in values(m)]


@dataclass
class ImageResult:
    """One image through one configuration: what was measured (a :class:`~imgvault.methods.encoding.Measured`)
    and the files of its figure, or why it failed."""

    measured: object | None = None
    figure: object | None = None  # ImageFiles, for the first ``figures`` images
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, error: str) -> "ImageResult":
        return cls(error=error)


@dataclass
class ChildRun:
    method: str
    k: int | None
    run_id: str
    metrics: dict
    failures: list[tuple[str, str]] = field(default_factory=list)
    values: dict[str, list] = field(default_factory=dict, repr=False)  # per-image values, for the figures
    not_applicable: dict[str, str] = field(default_factory=dict)  # security measure -> why it does not apply

    @property
    def label(self) -> str:
        return self.method if self.k is None else f"{self.method} k={self.k}"

    def to_dict(self) -> dict:
        return {"method": self.method, "k": self.k, "run_id": self.run_id, "metrics": self.metrics,
                "not_applicable": self.not_applicable, "failed_images": len(self.failures),
                "error": self.failures[0][1] if self.failures else None}  # fmt: skip


@dataclass
class BatchResult:
    experiment_id: str
    parent_run_id: str
    collection: str
    n_images: int
    runs: list[ChildRun]
    notes: list[str] = field(default_factory=list)  # warnings for the user (figures not logged, ...)

    @property
    def failures(self) -> int:
        return sum(len(run.failures) for run in self.runs)

    def to_dict(self) -> dict:
        return {"experiment_id": self.experiment_id, "parent_run_id": self.parent_run_id,
                "collection": self.collection, "n_images": self.n_images,
                "runs": [{**run.to_dict(), "used_images": self.n_images - len(run.failures)} for run in self.runs],
                "notes": self.notes}  # fmt: skip
