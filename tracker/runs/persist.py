"""Running a batch: plan, compute each configuration, then store it (one transaction per child run) and log
it to MLflow (batched calls), while the next configuration computes.

One parent MLflow run per batch, one child run per (method, k). The per-image work runs in parallel
(:mod:`.compute`); results come back to this process, which alone writes the store and MLflow.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from imgvault.basics.version import imgvault_version
from imgvault.methods.attacks.matrix import MATRIX_ATTACKS
from imgvault.methods.encoding import jsonable
from imgvault.tracker.runs.compute import attack, compute_configuration, dask_backend, fit_mode, parallel
from imgvault.tracker.runs.config import BatchConfig, BatchResult, ChildRun, ImageResult
from imgvault.tracker.runs.plan import Plan, check_config, plan_batch, upscaling_note
from imgvault.tracker.runs.summary import summarise, summarised_values
from imgvault.tracker.tracking import experiment_id, open_client, tracking_uri

# The attacks a configuration goes through with --attack, for the progress bar: the learning attack, the
# threat matrix's others, then the recognition attack.
ATTACK_STEPS = 1 + len(MATRIX_ATTACKS) + 1


def run_batch(store, collection: str, config: BatchConfig, *, advance: Callable[[], None] = lambda: None,
              started: Callable[[int], None] = lambda total: None) -> BatchResult:  # fmt: skip
    """Run every configured method over ``collection``; store the results; log them to MLflow.

    ``started(total)`` is called once the work is known (total = images x configurations, plus
    :data:`ATTACK_STEPS` per configuration with ``config.attack``) and ``advance()`` after each image of each
    configuration and each attack, for a progress bar.
    """
    shape = check_config(config)
    client = open_client(store.settings.home, store)  # before any work: a dead tracking store fails fast
    plan = plan_batch(store, collection, config, shape)
    with dask_backend(config.scheduler):  # before any run starts: an unreachable scheduler fails fast
        return _Batch(store, client, plan, advance).run(started)


@dataclass
class _Batch:
    """A batch under way: its plan, where it logs, and the logging thread's pending calls."""

    store: object
    client: object
    plan: Plan
    advance: Callable[[], None]
    pending: list = field(default_factory=list)

    def submit(self, function, *args) -> None:
        """Run ``function(*args)`` on the logging thread, after what was submitted before."""
        self.pending.append(self.logging_thread.submit(function, *args))

    def run(self, started: Callable[[int], None]) -> BatchResult:
        from imgvault.tracker.runs.mlflow_log import RunLogger
        from imgvault.tracker.sealing.writer import ArtifactWriter, artifact_sealing

        plan, store = self.plan, self.store
        config, images = plan.config, plan.images
        started((len(images) + (ATTACK_STEPS if config.attack else 0)) * len(plan.configurations))
        uri = tracking_uri(store.settings.home)
        experiment = experiment_id(self.client, config.experiment or f"imgvault/{plan.collection}",
                                   store.settings.home)  # fmt: skip
        sealed, where = artifact_sealing(self.client, experiment, uri)
        notes = []
        if not sealed and config.figures:
            if config.plaintext_figures:
                notes.append(f"per-image figures are stored in plaintext at {where}: they show the images' pixels")
            else:
                notes.append(f"per-image figures are not logged: the artifact store {where} does not seal them "
                             "(numbers are; --plaintext-figures logs the figures anyway)")  # fmt: skip
                self.plan = plan = replace(plan, config=replace(config, figures=0))
                config = plan.config
        upscaled = upscaling_note(images, config.size)
        if upscaled:
            notes.append(upscaled)
        self.logger = RunLogger(self.client, experiment, ArtifactWriter(self.client, uri))
        parent = self.logger.start_parent(plan.collection, config, len(images), plan.digest, imgvault_version())
        if upscaled:
            self.logger.note(parent, "imgvault.upscaled", upscaled)
        # Logging a finished child to MLflow (tables, figures, series) overlaps with computing the next one:
        # one background thread, so the calls for one run stay in order.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgvault-mlflow") as self.logging_thread:
            runs = self._children(parent)
        return BatchResult(self.logger.experiment_id, parent, plan.collection, len(images), runs, notes)

    def _children(self, parent: str) -> list[ChildRun]:
        from imgvault.tracker.reports.figures import pyplot

        plan, mode = self.plan, fit_mode(self.plan.config)
        runs: list[ChildRun] = []
        stream = mode.stream(plan.pixels, plan.configurations)
        if not mode.workers_draw:
            self.submit(pyplot)  # the parent's figures need it; import it meanwhile
        try:
            for method, k in plan.configurations:
                child, log = self._child(parent, method, k, stream)
                runs.append(child)
                self.submit(log)
            figures = self._parent_figures(runs, mode.workers_draw)
            for future in self.pending:
                future.result()
            figures.update(self._frontier(parent, runs))
            self.logger.finish_parent(parent, runs, figures)
        except BaseException as exc:
            # Configurations already computed are still stored and logged (and end FINISHED); the one
            # interrupted ends KILLED and stores nothing.
            for future in self.pending:
                future.exception()
            self.logger.end(parent, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            if stream is not None:
                stream.close()  # after an error: the tasks not yet run are cancelled
        return runs

    def _child(self, parent: str, method: str, k: int | None, stream):
        """Compute one (method, k); return its ChildRun and the function that stores it and logs the rest.

        Each image's figure goes to the logging thread as soon as the image is done, while the others compute;
        the returned function (run on that thread too) commits the results to the store, then logs them.
        """
        plan, logger, advance = self.plan, self.logger, self.advance
        config, images = plan.config, plan.images
        child = logger.start_child(parent, plan.collection, method, k, config, len(images), plan.digest)

        def done(index: int, result: ImageResult) -> None:
            advance()
            if result.figure is not None:
                self.submit(logger.log_figure, child, index, result.figure)

        try:
            results, shared_model, model_params = compute_configuration(plan.pixels, method, k, config, done, stream)
            items, failures = [], []
            for image, result in zip(images, results, strict=True):
                if not result.ok:
                    failures.append((image.id, result.error))
                    continue
                measured = result.measured
                item = {"image_id": image.id, "encoded": measured.payload, "metrics": jsonable(measured.metrics)}
                if measured.model is not None:
                    item["model"] = measured.model
                items.append(item)
        except BaseException as exc:
            logger.end(child, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        values = summarised_values([item["metrics"] for item in items])
        summary = summarise(values)
        ok = [i for i, result in enumerate(results) if result.ok]
        not_applicable = results[ok[0]].measured.not_applicable if ok else {}
        if ok:
            summary.update({f"criterion/{name}": value for name, value in results[ok[0]].measured.criteria.items()})
        if config.attack:
            steps = []

            def attacked_one() -> None:
                steps.append(1)
                advance()

            if len(ok) >= 10:
                attacked, attacks_not_applicable = attack(plan, results, ok, method, k, model_params, attacked_one)
                summary.update(attacked)
                not_applicable = {**not_applicable, **attacks_not_applicable}
            for _ in range(ATTACK_STEPS - len(steps)):  # those that did not run: the bar still ends full
                advance()
        params = {"size": config.size, "color": config.color, "fit": config.fit, "codec": model_params}

        def store_and_log() -> None:
            # On the logging thread, while the next configuration computes: the store's transaction first
            # (all of this configuration or nothing), then MLflow, which names the stored ids.
            try:
                infos = self.store.put_encoded_images(items, method=method, params=params, shared_model=shared_model,
                                                 collection=plan.collection)  # fmt: skip
                by_image = {info.image_id: info for info in infos}
                logger.log_child(child, images, by_image, failures, values, summary, not_applicable)
            except BaseException:
                logger.end(child, "FAILED")
                raise
            logger.end(child, "FAILED" if not infos else "FINISHED")

        return ChildRun(method, k, child, summary, failures, values, not_applicable), store_and_log

    def _frontier(self, parent: str, runs: list[ChildRun]) -> dict[str, bytes]:
        """With the utility measured: the privacy-utility frontier's figure, and its reading as the parent's
        tag ``imgvault.frontier``."""
        from imgvault.tracker.reports.frontier import frontier_png, points_of_metrics, reading

        found = points_of_metrics(runs, self.plan.config.fit)
        if not found:
            return {}
        self.logger.note(parent, "imgvault.frontier", reading(found))
        return {"frontier.png": frontier_png(found)}

    def _parent_figures(self, runs: list[ChildRun], workers_draw: bool) -> dict[str, bytes]:
        """The parent run's figures, PNG bytes by artifact path.

        Drawn by the batch's worker processes if it has some (idle by now), while this process stores and logs
        the last configuration; else here, once that is done: in two threads of this process, drawing and
        logging would take turns with the GIL and both end later than one after the other.
        """
        from imgvault.tracker.reports.figures import parent_figure_names, parent_figure_png

        names = parent_figure_names(self.plan.config.ks)
        if workers_draw:
            from joblib import delayed

            drawn = parallel(self.plan.config)(delayed(parent_figure_png)(name, runs) for name in names)
        else:
            for future in self.pending:
                future.result()
            drawn = [parent_figure_png(name, runs) for name in names]
        return dict(zip(names, drawn, strict=True))
