"""What a batch writes to MLflow, laid out for the MLflow UI. Everything goes through ``MlflowClient`` with
explicit run ids (no global active run) and in batches: params, tags and metrics by ``log_batch``.
"""

import time
from itertools import islice

import numpy as np

from imgvault.store.version import imgvault_version

from .figures import comparison_figure, security_figure, ssim_vs_bpp_figure
from .runner import SERIES

METRICS_PER_CALL = 1000  # MLflow's limits for one log_batch call
PARAMS_PER_CALL = 100


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
                  "k": ",".join(str(k) for k in config.ks), "size": config.size, "color": config.color,
                  "fit": config.fit, "n_images": n_images, "jobs": config.jobs,
                  "scheduler": config.scheduler or "local",
                  "random_state": config.random_state, "imgvault_version": version}  # fmt: skip
        self._log(run.info.run_id, params=params.items(), tags=[("imgvault.collection_digest", digest)])
        return run.info.run_id

    def finish_parent(self, run_id: str, runs: list, config) -> None:
        rows = [{"method": r.method, "k": r.k, "run_id": r.run_id, "failed_images": len(r.failures),
                 **{name: r.metrics.get(f"{name}_mean") for name in ("mse", "psnr", "ssim", "bpp")},
                 "exact_fraction": r.metrics.get("exact_fraction")} for r in runs]  # fmt: skip
        self.writer.table(run_id, {key: [row[key] for row in rows] for key in rows[0]}, "summary.json")
        self.writer.figure(run_id, comparison_figure(runs), "comparison.png")
        self.writer.figure(run_id, security_figure(runs), "security.png")
        if len(config.ks) > 1:
            self.writer.figure(run_id, ssim_vs_bpp_figure(runs), "ssim_vs_bpp.png")
        failed = sum(len(r.failures) for r in runs)
        self._log(run_id, tags=[("imgvault.failed_images", failed)])
        self.end(run_id, "FINISHED")

    # -- child runs: one per (method, k) ------------------------------------------------------------

    def start_child(self, parent: str, collection: str, method: str, k, config, n_images: int, digest: str) -> str:
        from mlflow.data.code_dataset_source import CodeDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        name = method if k is None else f"{method} k={k}"
        tags = {"mlflow.parentRunId": parent, "imgvault.kind": "child", "imgvault.collection": collection}
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        params = {"method": method, "k": "none" if k is None else k, "size": config.size, "color": config.color,
                  "fit": config.fit, "n_images": n_images, "random_state": config.random_state,
                  "imgvault_version": imgvault_version()}  # fmt: skip
        self._log(run_id, params=params.items())
        dataset = MetaDataset(CodeDatasetSource(tags={"imgvault.collection": collection}), name=collection,
                              digest=digest)  # fmt: skip
        context = InputTag("mlflow.data.context", "collection")
        self.client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=[context])])
        return run_id

    def log_figure(self, run_id: str, step: int, shown) -> None:
        """original | encrypted | decrypted | error of image ``step``, under one key the UI steps through."""
        self.writer.image(run_id, shown, key="original-encrypted-decrypted-error", step=step)

    def log_child(self, run_id, images, by_image, failures, values, summary) -> None:
        now = int(time.time() * 1000)
        series = []
        for step, image in enumerate(images):
            info = by_image.get(image.id)
            if info is None:
                continue
            for name in SERIES:
                value = info.metrics.get(name)
                if value is not None and np.isfinite(value):
                    series.append((name, value, now, step))
        summary_metrics = [(key, value, now, 0) for key, value in summary.items()
                           if isinstance(value, int | float) and np.isfinite(value)]  # fmt: skip
        summary_metrics.append(("failed_images", len(failures), now, 0))
        models = sorted({info.model_id for info in by_image.values()})
        tags = [("imgvault.failed_images", len(failures))]
        if "attack_model" in summary:
            tags.append(("imgvault.attack_model", summary["attack_model"]))
        tags.append(("imgvault.model_id", models[0]) if len(models) == 1 else
                    ("imgvault.model_ids", "one per image: see the model_id column of images.json"))  # fmt: skip
        if failures:
            tags.append(("imgvault.first_failure", failures[0][1][:4000]))
        self._log(run_id, metrics=series + summary_metrics, tags=tags)
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
