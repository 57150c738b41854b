"""Batch runs: several methods (and values of k) over a whole collection, stored sealed, tracked in MLflow.

One parent MLflow run per batch, one child run per (method, k). The per-image work (fit, encode, decode,
metrics, figure) runs in parallel with joblib, all configurations in one stream of tasks, so that the
workers go on with the next configuration while this process finishes the last; results come back to this
process, which alone writes the store (one transaction per child run) and MLflow (batched calls).
"""

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import islice

import numpy as np

from imgvault.methods.attack import check_attack_size, learning_attack
from imgvault.methods.attacks.matrix import MATRIX_ATTACKS
from imgvault.methods.pipeline import jsonable, measure
from imgvault.methods.preprocess import check_color, check_size, load_pixels, to_uint8
from imgvault.methods.registry import check_method, make_codec
from imgvault.methods.render import caption, figure, render_encoded
from imgvault.methods.security import wrong_key_reconstruction
from imgvault.store.engine import first_line
from imgvault.store.errors import ConfigError, InvalidParameter
from imgvault.store.version import imgvault_version

from .image_files import image_files
from .tracking import experiment_id, open_client, tracking_uri

SECURITY = ("entropy", "chi2", "corr_h", "corr_v", "corr_d", "npcr", "uaci", "visual_ssim", "key_ssim",
            "key_sensitivity", "key_sensitivity_bits", "key_space_bits")  # fmt: skip
QUALITY = ("mse", "psnr", "ssim", "bpp")
COSTS = ("bpp_with_model", "compression_ratio", "encode_seconds", "decode_seconds", "fit_seconds")
PASSED = ("entropy_pass", "chi2_pass", "npcr_pass", "uaci_pass")
CHANNELS = tuple(f"{name}_{c}" for name in ("entropy", "chi2", "corr_h", "corr_v", "corr_d") for c in "rgb")
#: every per-image value a run summarises (its mean under the value's own name)
SUMMARISED = (*QUALITY, *COSTS, *SECURITY, *PASSED, *CHANNELS)
# The attacks a configuration goes through with --attack, for the progress bar: the learning attack, then
# the threat matrix's others.
ATTACK_STEPS = 1 + len(MATRIX_ATTACKS)
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


def summarised_values(metrics: list[dict]) -> dict[str, list]:
    """Each summarised measure's per-image values (``metrics``: each image's), the measures no image has left out."""
    values = {name: [one.get(name) for one in metrics] for name in SUMMARISED}
    return {name: series for name, series in values.items() if any(value is not None for value in series)}


def summarise(values: dict[str, list[float]]) -> dict[str, float]:
    """Each metric's mean under its own name (``ssim``), and ``_median``, ``_std``, ``_min``, ``_max``, over
    its finite values; a pass/fail flag ``<measure>_pass`` gives ``<measure>_pass_rate`` only.

    An infinite PSNR (an exact reconstruction) is left out of the PSNR figures and counted by
    ``exact_fraction`` instead: MLflow would store it as 1.8e308 and ruin every mean.
    """
    out = {}
    for name, series in values.items():
        finite = np.array([v for v in series if v is not None and math.isfinite(v)], dtype=np.float64)
        if not finite.size:
            continue
        if name.endswith("_pass"):
            out[f"{name}_rate"] = float(finite.mean())
            continue
        out[name] = float(finite.mean())
        for stat, function in (("median", np.median), ("std", np.std), ("min", np.min), ("max", np.max)):
            out[f"{name}_{stat}"] = float(function(finite))
    mse = values.get("mse", [])
    if mse:
        out["exact_fraction"] = float(np.mean([v == 0 for v in mse]))
    return out


def _encode_one(pixels: np.ndarray, method: str, k: int | None, random_state: int, with_figure: bool):
    """Worker: fit one model on one image and measure it. Returns (Measured, ImageFiles of its figure or
    None) or (error, None)."""
    codec = make_codec(method, k=k, fit="image", random_state=random_state)
    started = time.perf_counter()
    try:
        codec.fit(pixels[None])
    except InvalidParameter as exc:
        return str(exc), None
    measured = measure(codec, pixels, fit_seconds=time.perf_counter() - started, method=method)
    shown = None
    if with_figure:
        encrypted = render_encoded(method, measured.encoded, pixels.shape)
        shown = image_files(figure(measured.original, encrypted, measured.reconstruction, method=method,
                                   title=caption(method, k, measured.metrics, pixels.shape)))  # fmt: skip
    return measured, shown


def run_batch(store, collection: str, config: BatchConfig, *, advance: Callable[[], None] = lambda: None,
              started: Callable[[int], None] = lambda total: None) -> BatchResult:  # fmt: skip
    """Run every configured method over ``collection``; store the results; log them to MLflow.

    ``started(total)`` is called once the work is known (total = images x configurations, plus
    :data:`ATTACK_STEPS` per configuration with ``config.attack``) and ``advance()`` after each image of each
    configuration and each attack, for a progress bar.
    """
    for method in config.methods:
        check_method(method)
    size, color = check_size(config.size), check_color(config.color)
    if config.fit not in ("image", "collection"):
        raise InvalidParameter(f"fit must be image or collection, not {config.fit!r}")
    shape = (size, size) if color == "gray" else (size, size, 3)
    codecs = [make_codec(method, k=k, fit=config.fit, random_state=config.random_state)
              for method, k in config.configurations()]  # fmt: skip
    for codec in codecs:  # a block size that does not divide the size: before any work
        codec.check_shape(shape)
    client = open_client(store.settings.home, store)  # before any work: a dead tracking store fails fast
    images = list(store.images(collection))
    if not images:
        raise InvalidParameter(f'collection "{collection}" has no images')
    for (method, k), codec in zip(config.configurations(), codecs, strict=True):
        try:  # a k that no fit can take (pca k=200 on 100 rows): refused before the first run starts
            codec.check_fit_shape((len(images) if config.fit == "collection" else 1, *shape))
        except InvalidParameter as exc:
            raise InvalidParameter(f"{method if k is None else f'{method} k={k}'}: {exc}") from None
    if config.attack:
        check_attack_size(len(images), f'collection "{collection}"')
    pixels = np.stack([load_pixels(store.get(image.id), size=size, color=color) for image in images])
    with dask_backend(config.scheduler):  # before any run starts: an unreachable scheduler fails fast
        return _batch(store, client, collection, images, pixels, config, advance, started)


def _batch(store, client, collection, images, pixels, config, advance, started) -> BatchResult:
    configurations = config.configurations()
    started((len(images) + (ATTACK_STEPS if config.attack else 0)) * len(configurations))

    from .artifact_writer import ArtifactWriter, artifact_sealing
    from .mlflow_log import RunLogger

    uri = tracking_uri(store.settings.home)
    experiment = experiment_id(client, config.experiment or f"imgvault/{collection}", store.settings.home)
    sealed, where = artifact_sealing(client, experiment, uri)
    notes = []
    if not sealed and config.figures:
        if config.plaintext_figures:
            notes.append(f"per-image figures are stored in plaintext at {where}: they show the images' pixels")
        else:
            notes.append(f"per-image figures are not logged: the artifact store {where} does not seal them "
                         "(numbers are; --plaintext-figures logs the figures anyway)")  # fmt: skip
            config = replace(config, figures=0)
    upscaled = upscaling_note(images, config.size)
    if upscaled:
        notes.append(upscaled)
    logger = RunLogger(client, experiment, ArtifactWriter(client, uri))
    digest = hashlib.sha256("\n".join(image.id for image in images).encode()).hexdigest()[:16]
    parent = logger.start_parent(collection, config, len(images), digest, imgvault_version())
    if upscaled:
        logger.note(parent, "imgvault.upscaled", upscaled)
    runs: list[ChildRun] = []
    # Logging a finished child to MLflow (tables, figures, series) overlaps with computing the next one:
    # one background thread, so the calls for one run stay in order.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgvault-mlflow") as logging_thread:
        from .figures import pyplot

        pending = []

        def submit(function, *args) -> None:
            pending.append(logging_thread.submit(function, *args))

        stream = _image_results(pixels, configurations, config)
        if not _workers_draw(config):
            submit(pyplot)  # the parent's figures need it; import it meanwhile
        try:
            for method, k in configurations:
                child, log = _run_child(store, logger, parent, collection, images, pixels, method, k, config,
                                        digest, advance, submit, stream)  # fmt: skip
                runs.append(child)
                submit(log)
            figures = _parent_figures(runs, config, pending)
            for future in pending:
                future.result()
            logger.finish_parent(parent, runs, figures)
        except BaseException as exc:
            # Configurations already computed are still stored and logged (and end FINISHED); the one
            # interrupted ends KILLED and stores nothing.
            for future in pending:
                future.exception()
            logger.end(parent, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            if stream is not None:
                stream.close()  # after an error: the tasks not yet run are cancelled
    return BatchResult(logger.experiment_id, parent, collection, len(images), runs, notes)


def upscaling_note(images, size: int) -> str | None:
    """What a batch says once when some images are smaller than ``size`` x ``size`` (they are upscaled to it)."""
    sides = [min(image.width, image.height) for image in images]
    small = [side for side in sides if side < size]
    if not small:
        return None
    return (
        f"{len(small)} of {len(images)} images are smaller than {size}x{size} and are upscaled to it (by up"
        f" to {size / min(small):.1f}x, from {min(small)} px): their metrics describe the upscaled images"
    )


def _parent_figures(runs: list[ChildRun], config: BatchConfig, pending: list) -> dict[str, bytes]:
    """The parent run's figures, PNG bytes by artifact path.

    Drawn by the batch's worker processes if it has some (idle by now), while this process stores and logs
    the last configuration; else here, once that is done: in two threads of this process, drawing and
    logging would take turns with the GIL and both end later than one after the other.
    """
    from .figures import parent_figure_names, parent_figure_png

    names = parent_figure_names(config.ks)
    if _workers_draw(config):
        from joblib import delayed

        drawn = _parallel(config)(delayed(parent_figure_png)(name, runs) for name in names)
    else:
        for future in pending:
            future.result()
        drawn = [parent_figure_png(name, runs) for name in names]
    return dict(zip(names, drawn, strict=True))


def _workers_draw(config: BatchConfig) -> bool:
    """Whether the batch's worker processes (or cluster) draw the parent's figures: when it has them."""
    return config.fit == "image" and not _in_this_process(config)


@contextmanager
def dask_backend(address: str | None) -> Iterator[None]:
    """Within: joblib runs the per-image work on the Dask cluster at ``address`` (nothing changes if None).

    Only the work travels: results come back to this process, which alone writes the store and MLflow.
    """
    if not address:
        yield
        return
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask's distributed package: pip install 'imgvault[dask]'") from None
    from joblib import parallel_config

    try:
        # TLS settings (tls:// addresses) come from Dask's configuration, e.g. DASK_DISTRIBUTED__COMM__TLS__*.
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler {address}: {first_line(exc)}") from None
    try:
        with parallel_config(backend="dask", client=client):
            yield
    finally:
        client.close()


def _run_child(store, logger, parent, collection, images, pixels, method, k, config, digest, advance,
               submit, stream):  # fmt: skip
    """Compute one (method, k); return its ChildRun and the function that stores it and logs the rest.

    Each image's figure goes to the logging thread as soon as the image is done, while the others compute;
    the returned function (run on that thread too) commits the results to the store, then logs them.
    """
    child = logger.start_child(parent, collection, method, k, config, len(images), digest)

    def done(index: int, result) -> None:
        advance()
        if result[1] is not None:
            submit(logger.log_figure, child, index, result[1])

    try:
        results, shared_model, model_params = compute_configuration(pixels, method, k, config, done, stream)
        items, failures = [], []
        for image, (measured, _) in zip(images, results, strict=True):
            if isinstance(measured, str):
                failures.append((image.id, measured))
                continue
            item = {"image_id": image.id, "encoded": measured.payload, "metrics": jsonable(measured.metrics)}
            if measured.model is not None:
                item["model"] = measured.model
            items.append(item)
    except BaseException as exc:
        logger.end(child, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    values = summarised_values([item["metrics"] for item in items])
    summary = summarise(values)
    ok = [i for i, (measured, _) in enumerate(results) if not isinstance(measured, str)]
    not_applicable = results[ok[0]][0].not_applicable if ok else {}
    if ok:
        summary.update({f"criterion/{name}": value for name, value in results[ok[0]][0].criteria.items()})
    if config.attack:
        steps = []

        def attacked_one() -> None:
            steps.append(1)
            advance()

        if len(ok) >= 10:
            attacked, attacks_not_applicable = _attack(results, pixels, ok, method, k, config, model_params,
                                                       attacked_one)  # fmt: skip
            summary.update(attacked)
            not_applicable = {**not_applicable, **attacks_not_applicable}
        for _ in range(ATTACK_STEPS - len(steps)):  # those that did not run: the bar still ends full
            advance()
    params = {"size": config.size, "color": config.color, "fit": config.fit, "codec": model_params}

    def store_and_log() -> None:
        # On the logging thread, while the next configuration computes: the store's transaction first
        # (all of this configuration or nothing), then MLflow, which names the stored ids.
        try:
            infos = store.put_encodings(items, method=method, params=params, shared_model=shared_model,
                                        collection=collection)  # fmt: skip
            by_image = {info.image_id: info for info in infos}
            logger.log_child(child, images, by_image, failures, values, summary, not_applicable)
        except BaseException:
            logger.end(child, "FAILED")
            raise
        logger.end(child, "FAILED" if not infos else "FINISHED")

    return ChildRun(method, k, child, summary, failures, values, not_applicable), store_and_log


def _attack(results, pixels, ok, method, k, config, model_params, progress) -> tuple[dict, dict]:
    """The attacks' run metrics over the images that encoded, and why those that do not apply do not.

    The learning attack (:func:`learning_attack`, ``attack_*``) and the threat matrix's other attacks
    (:func:`run_attacks`, ``attack/<name>/...``). With ``--fit collection`` each split's model is fitted on
    its training images only, so that the key holder's SSIM is measured out of sample as the attacker's is;
    with ``--fit image`` every image keeps its own model. Nothing if the model cannot be fitted on a
    training part (k above its size).
    """
    from imgvault.methods.registry import method_class

    originals = [results[i][0].original for i in ok]
    subset = pixels[ok]
    if config.fit == "image":
        fixed = [results[i][0].encoded for i in ok], [results[i][0].reconstruction for i in ok]
        cls = method_class(method)
        codecs = [cls.from_model_bytes(model_params, results[i][0].model) for i in ok]

        def keys(train):
            return codecs

        learned = learning_attack(originals, lambda train: fixed, seed=config.random_state)
        progress()
        metrics, not_applicable = _threat_attacks(subset, keys, codecs[0], config, progress)
        return {**learned, **metrics}, not_applicable
    fitted: dict[bytes, object] = {}

    def keys(train):
        # One model per split, shared by the learning attack and the others.
        if train.tobytes() not in fitted:
            codec = make_codec(method, k=k, fit="collection", random_state=config.random_state)
            fitted[train.tobytes()] = codec.fit(subset[train])
        return [fitted[train.tobytes()]] * len(subset)

    def encodings(train):
        codec = keys(train)[0]
        encoded = codec.encode(subset)
        return list(encoded), list(to_uint8(codec.decode(encoded)))

    try:
        learned = learning_attack(originals, encodings, seed=config.random_state)
    except InvalidParameter:
        return {}, {}
    progress()
    metrics, not_applicable = _threat_attacks(subset, keys, keys(np.arange(len(subset)))[0], config, progress)
    return {**learned, **metrics}, not_applicable


def _threat_attacks(subset, keys, codec, config, progress) -> tuple[dict, dict]:
    from imgvault.methods.attacks.matrix import run_attacks

    return run_attacks(subset, keys, codec, config.fit, seed=config.random_state, progress=progress)


def _add_key_ssim(results, pixels, method, k, config, model_params) -> None:
    """``key_ssim`` of every image: SSIM of the original against its decoding with a wrong key.

    The wrong key is the next image's model (``--fit image``), or, with ``--fit collection``, the same
    method fitted on the other half of the collection (disjoint images; a new random key for AES), so
    that it is another key even for a fit that does not depend on its seed.
    """
    from imgvault.methods.metrics import quality
    from imgvault.methods.registry import method_class

    ok = [i for i, (measured, _) in enumerate(results) if not isinstance(measured, str)]
    if len(ok) < 2:
        return
    if config.fit == "collection":
        halves = np.array_split(np.random.default_rng(config.random_state).permutation(ok), 2)
        wrong_for = {}
        for mine, other in (halves, halves[::-1]):
            try:
                wrong = make_codec(method, k=k, fit="collection", random_state=config.random_state + 1)
                wrong.fit(pixels[np.sort(other)])
            except InvalidParameter:
                return  # k above half the collection: no disjoint model to compare with
            wrong_for.update(dict.fromkeys(mine.tolist(), wrong))
    else:
        cls = method_class(method)
        following = ok[1:] + ok[:1]
        wrong_for = {i: cls.from_model_bytes(model_params, results[j][0].model) for i, j in zip(ok, following,
                                                                                             strict=True)}  # fmt: skip
    for i in ok:
        measured = results[i][0]
        guess = wrong_key_reconstruction(method, wrong_for[i], measured.payload)
        measured.metrics["key_ssim"] = quality(measured.original, guess)["ssim"]


def compute_configuration(pixels: np.ndarray, method: str, k: int | None, config: BatchConfig,
                          done: Callable = lambda index, result: None, stream: Iterator | None = None):  # fmt: skip
    """Everything a batch computes for one (method, k), without storing or logging any of it.

    Returns the per-image results [(Measured | error, ImageFiles | None)], with every measure a child run
    logs (``key_ssim`` too) and the first ``config.figures`` figures, the shared model (or None) and the
    codec's params. ``done(index, result)`` is called as each image's result arrives; ``stream`` is where
    they come from when they are already under way (:func:`_image_results`).
    """
    results, shared_model, model_params = _compute(pixels, method, k, config, done, stream)
    _add_key_ssim(results, pixels, method, k, config, model_params)
    return results, shared_model, model_params


def _image_results(pixels: np.ndarray, configurations: list, config: BatchConfig) -> Iterator | None:
    """The per-image results of every configuration, in order, from one stream of tasks on ``config.jobs``
    workers (None with ``--fit collection``, which computes in this process).

    One stream rather than one per configuration: the workers never wait for this process to finish a
    configuration (its wrong-key measure, its run), nor for the slowest image of the last.
    """
    if config.fit == "collection":
        return None
    from joblib import delayed

    tasks = (delayed(_encode_one)(one, method, k, config.random_state, index < config.figures)
             for method, k in configurations for index, one in enumerate(pixels))  # fmt: skip
    results = _parallel(config, return_as="generator")(tasks)
    return _one_thread_each(results) if _in_this_process(config) else results


def _parallel(config: BatchConfig, **options):
    """joblib's ``Parallel`` on ``config.jobs`` workers, always with the same settings: with other settings,
    joblib would stop the worker processes of the last call and start new ones."""
    from joblib import Parallel

    # max_nbytes=None: joblib would otherwise hand a large image to its workers through a memory-mapped
    # file in a temporary folder, plaintext pixels on disk.
    return Parallel(n_jobs=config.jobs, max_nbytes=None, **options)


def _in_this_process(config: BatchConfig) -> bool:
    """Whether the per-image tasks run in this process: one job and no cluster (joblib's sequential backend)."""
    from joblib import effective_n_jobs

    return config.scheduler is None and effective_n_jobs(config.jobs) == 1


def _one_thread_each(results: Iterator) -> Iterator:
    """``results``, computed here as they are asked for, with one OpenMP and one BLAS thread, as each of
    joblib's worker processes has when there is one per core.

    With one thread per core (the default in this process), scikit-learn's OpenMP threads spin and wait on
    each other over these small per-image fits: on a shared 2-core machine a ``--jobs 1`` batch took 3 to 4
    times the CPU time and wall-clock time of the same batch with one thread, and varied from run to run.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield from results


def _compute(pixels, method, k, config, done, stream):
    """Per-image results [(Measured | error, ImageFiles | None)], the shared model (or None), codec params."""
    if config.fit == "collection":
        codec = make_codec(method, k=k, fit="collection", random_state=config.random_state)
        started = time.perf_counter()
        try:
            codec.fit(pixels)
        except InvalidParameter as exc:
            # One model for all: if it cannot be fitted, every image of this configuration fails.
            for index in range(len(pixels)):
                done(index, (str(exc), None))
            return [(str(exc), None)] * len(pixels), None, codec.get_params()
        fit_seconds = (time.perf_counter() - started) / len(pixels)
        model = codec.model_to_bytes()
        results = []
        for index, one in enumerate(pixels):
            measured = measure(codec, one, fit_seconds=fit_seconds, images_per_model=len(pixels), model=model,
                               method=method)  # fmt: skip
            shown = None
            if index < config.figures:
                title = caption(method, k, measured.metrics, one.shape) + " · one model for all"
                shown = image_files(figure(measured.original, render_encoded(method, measured.encoded, one.shape),
                                           measured.reconstruction, method=method, title=title))  # fmt: skip
            results.append((measured, shown))
            done(index, results[-1])
        return results, model, codec.get_params()
    if stream is None:
        stream = _image_results(pixels, [(method, k)], config)
    results = []
    for index, result in enumerate(islice(stream, len(pixels))):
        results.append(result)
        done(index, result)
    return results, None, make_codec(method, k=k, fit="image", random_state=config.random_state).get_params()
