"""What a batch writes to MLflow, laid out for the MLflow UI. Everything goes through ``MlflowClient`` with
explicit run ids (no global active run) and in batches: params, tags and metrics by ``log_batch``.
"""

import time
from itertools import islice

import numpy as np

from imgvault.basics.version import imgvault_version
from imgvault.methods.registry import knob

METRICS_PER_CALL = 1000  # MLflow's limits for one log_batch call
PARAMS_PER_CALL = 100


NOTE = "mlflow.note.content"  # the description MLflow's UI shows for an experiment or a run
EXPERIMENT_DESCRIPTION = """Runs of imgvault's image "encryption" bench on one collection.

Each batch is a parent run with one child run per method and k. In a child run, `mse`, `psnr`, `ssim`
(Wang et al. 2004: 11x11 Gaussian window, sigma 1.5), `bpp`, `entropy`, `corr_h`, ... are the MEANS over
the collection's images; `_median`, `_std`, `_min`, `_max` their spread; the table `images.json` holds each
image's values (one row per image, step = its index), so that the run's metrics are its means alone and the
UI leads with them. `<test>_pass_rate` is the share of images that pass a randomness test at the
payload's size, whose criteria are `criterion/<name>`. `attack_gain` is the learning attack's SSIM over the
mean-image baseline, averaged over repeated splits, with a 95 % interval `attack_gain_ci_low`/`_ci_high`;
`attack/<attack>/gain` (with `_ci_low`/`_ci_high`, `ssim`, `psnr`, ...) the same for the threat matrix's
other attacks (inversion_blocks, jigsaw, permutation).
A measure that does not apply to a method is missing, and the tag `imgvault.not_applicable.<measure>` says why.
"""
#: what the parent run logs as metrics: counts only. A comparison across its configurations is its summary
#: table and charts, or its child runs side by side (select them in the runs table, then Chart view).
PARENT_METRICS = ("configurations", "failed_images")
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # the UI opens it on its runs


def _chunks(items: list, size: int):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class RunLogger:
    """Logs a batch's runs. Artifacts go through ``writer`` (an :class:`ArtifactWriter`), from memory."""

    def __init__(self, client, experiment_id: str, writer):
        self.client = client
        self.experiment_id = experiment_id
        self.writer = writer

    def _log(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        from mlflow.entities import Metric, Param, RunTag

        metrics = [Metric(key, float(value), timestamp, step) for key, value, timestamp, step in metrics]
        params = [Param(key, str(value)) for key, value in params]
        tags = [RunTag(key, str(value)) for key, value in tags]
        for chunk in _chunks(params + tags, PARAMS_PER_CALL):
            self.client.log_batch(run_id, params=[p for p in chunk if isinstance(p, Param)],
                                  tags=[t for t in chunk if isinstance(t, RunTag)])  # fmt: skip
        for chunk in _chunks(metrics, METRICS_PER_CALL):
            self.client.log_batch(run_id, metrics=chunk)

    def end(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    # -- the parent run: one per batch --------------------------------------------------------------

    def start_parent(self, collection: str, config, n_images: int, digest: str, version: str) -> str:
        name = f"{collection} · {config.fit} fit · {config.size}px {config.color}"
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={"imgvault.kind": "batch", "imgvault.collection": collection})  # fmt: skip
        params = {"collection": collection, "methods": ",".join(config.methods),
                  "k": ",".join(str(k) for k in config.ks) or "default", "size": config.size, "color": config.color,
                  "fit": config.fit, "n_images": n_images, "jobs": config.jobs,
                  "scheduler": config.scheduler or "local",
                  "random_state": config.random_state, "imgvault_version": version}  # fmt: skip
        description = (
            f'A batch over {n_images} images of collection "{collection}" ({config.fit} fit, '
            f"{config.size}px {config.color}). `summary.json` and the charts compare its configurations; "
            "its child runs (one per method and k) hold their means. To see them in one chart: select the "
            "child runs in the runs table (or search `tags.mlflow.parentRunId = '<this run's id>'`), then "
            "Chart view."
        )
        self.client.set_experiment_tag(self.experiment_id, NOTE, EXPERIMENT_DESCRIPTION)
        self.client.set_experiment_tag(self.experiment_id, *EXPERIMENT_KIND)
        tags = [("imgvault.collection_digest", digest), (NOTE, description)]
        self._log(run.info.run_id, params=params.items(), tags=tags)
        return run.info.run_id

    def note(self, run_id: str, tag: str, text: str) -> None:
        """A note for whoever reads the run (a tag, shown on its Overview)."""
        self._log(run_id, tags=[(tag, text)])

    def finish_parent(self, run_id: str, runs: list, figures: dict[str, bytes]) -> None:
        """The parent's metrics, table and ``figures`` (PNG bytes by artifact path, drawn beforehand:
        :func:`imgvault.tracker.reports.figures.parent_figure_png`), then its end."""
        rows = [{"method": r.method, "k": r.k, "run_id": r.run_id, "failed_images": len(r.failures),
                 **{name: r.metrics.get(name) for name in ("mse", "psnr", "ssim", "bpp")},
                 "exact_fraction": r.metrics.get("exact_fraction")} for r in runs]  # fmt: skip
        now = int(time.time() * 1000)
        failed = sum(len(r.failures) for r in runs)
        self._log(run_id, metrics=[("configurations", len(runs), now, 0), ("failed_images", failed, now, 0)])
        self.writer.table(run_id, {key: [row[key] for row in rows] for key in rows[0]}, "summary.json")
        for path, png in figures.items():
            self.writer.write(run_id, path, png)
        self._log(run_id, tags=[("imgvault.failed_images", failed)])
        self.end(run_id, "FINISHED")

    # -- child runs: one per (method, k) ------------------------------------------------------------

    def start_child(self, parent: str, collection: str, method: str, k, config, n_images: int, digest: str) -> str:
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        name = method if k is None else f"{method} k={k}"
        description = (f"{name} over collection \"{collection}\" ({config.fit} fit). `mse`, `psnr`, `ssim`, "
                       "`entropy`, ... are means over the images; `images.json` holds each image's values "
                       "(one row per image); see the experiment's description for the rest.")  # fmt: skip
        tags = {"mlflow.parentRunId": parent, "imgvault.kind": "child", "imgvault.collection": collection,
                NOTE: description}  # fmt: skip
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        params = {"method": method, "k": "none" if k is None else k, "size": config.size, "color": config.color,
                  "fit": config.fit, "n_images": n_images, "random_state": config.random_state,
                  "imgvault_version": imgvault_version()}  # fmt: skip
        setting = knob(method)
        if k is not None and setting is not None and setting.name != "k":
            params[setting.name] = k  # the knob under its own name too: block_size=16, iterations=10
        self._log(run_id, params=params.items())
        dataset = MetaDataset(CodeDatasetSource(tags={"imgvault.collection": collection}), name=collection,
                              digest=digest)  # fmt: skip
        context = InputTag("mlflow.data.context", "collection")
        self.client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=[context])])
        return run_id

    def log_figure(self, run_id: str, step: int, shown) -> None:
        """original | encrypted | decrypted | error of image ``step`` (its :class:`ImageFiles`), under one key
        the UI steps through."""
        self.writer.image(run_id, shown, key="original-encrypted-decrypted-error", step=step)

    def log_child(self, run_id, images, by_image, failures, values, summary, not_applicable=None) -> None:
        now = int(time.time() * 1000)
        summary_metrics = [(key, value, now, 0) for key, value in summary.items()
                           if isinstance(value, int | float) and np.isfinite(value)]  # fmt: skip
        summary_metrics.append(("failed_images", len(failures), now, 0))
        models = sorted({info.model_id for info in by_image.values()})
        tags = [("imgvault.failed_images", len(failures))]
        if "attack_model" in summary:
            tags.append(("imgvault.attack_model", summary["attack_model"]))
        tags.extend((f"imgvault.not_applicable.{name}", reason) for name, reason in (not_applicable or {}).items())
        tags.append(("imgvault.model_id", models[0]) if len(models) == 1 else
                    ("imgvault.model_ids", "one per image: see the model_id column of images.json"))  # fmt: skip
        if failures:
            tags.append(("imgvault.first_failure", failures[0][1][:4000]))
        self._log(run_id, metrics=summary_metrics, tags=tags)
        errors = dict(failures)
        # Images are named by id and step only: file names and metadata stay sealed in the store.
        table = {"step": [], "image_id": [], "encoded_id": [], "model_id": [], "error": []}
        metric_names = [name for name in values if any(v is not None for v in values[name])]
        for name in metric_names:
            table[name] = []
        for step, image in enumerate(images):
            info = by_image.get(image.id)
            table["step"].append(step)
            table["image_id"].append(image.id)
            table["encoded_id"].append(info.id if info else None)
            table["model_id"].append(info.model_id if info else None)
            table["error"].append(errors.get(image.id))
            for name in metric_names:
                value = info.metrics.get(name) if info else None
                table[name].append(value)
        self.writer.table(run_id, table, "images.json")
