"""Computing a batch: each configuration's per-image results, its wrong-key measure and its attacks, without
storing or logging any of it.

How depends on the fit mode, one object each: :class:`PerImage` (``--fit image``: every image its own model,
fitted in joblib's workers, all configurations in one stream of tasks, so that the workers go on with the
next configuration while this process finishes the last) and :class:`PerCollection` (``--fit collection``:
one model for the collection, fitted here).
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice

import numpy as np

from imgvault.basics.errors import ConfigError, InvalidParameter
from imgvault.methods.attacks.inversion import learning_attack
from imgvault.methods.encoding import measure
from imgvault.methods.preprocess import to_uint8
from imgvault.methods.registry import make_codec, method_class
from imgvault.methods.render import caption, figure, render_encoded
from imgvault.methods.security import wrong_key_reconstruction
from imgvault.store.engine import first_line
from imgvault.tracker.runs.config import BatchConfig, ImageResult
from imgvault.tracker.sealing.image_files import image_files

Results = list[ImageResult]


def fit_mode(config: BatchConfig) -> "PerImage | PerCollection":
    """The fit mode of ``config``: how its configurations are computed."""
    return PerImage(config) if config.fit == "image" else PerCollection(config)


def compute_configuration(pixels: np.ndarray, method: str, k: int | None, config: BatchConfig,
                          done: Callable = lambda index, result: None, stream: Iterator | None = None):  # fmt: skip
    """Everything a batch computes for one (method, k), without storing or logging any of it.

    Returns the per-image :class:`ImageResult` list, with every measure a child run logs (``key_ssim`` too)
    and the first ``config.figures`` figures, the shared model (or None) and the codec's params.
    ``done(index, result)`` is called as each image's result arrives; ``stream`` is where they come from when
    they are already under way (:meth:`PerImage.stream`).
    """
    mode = fit_mode(config)
    results, shared_model, model_params = mode.results(pixels, method, k, done, stream)
    _add_key_ssim(mode, results, pixels, method, k, model_params)
    return results, shared_model, model_params


def _figure(measured, method: str, k: int | None, shape, note: str = ""):
    encrypted = render_encoded(method, measured.encoded, shape)
    title = caption(method, k, measured.metrics, shape) + note
    return image_files(figure(measured.original, encrypted, measured.reconstruction, method=method, title=title))


def _encode_one(pixels: np.ndarray, method: str, k: int | None, random_state: int, with_figure: bool) -> ImageResult:
    """Worker: fit one model on one image and measure it (and draw its figure)."""
    codec = make_codec(method, k=k, fit="image", random_state=random_state)
    started = time.perf_counter()
    try:
        codec.fit(pixels[None])
    except InvalidParameter as exc:
        return ImageResult.failed(str(exc))
    measured = measure(codec, pixels, fit_seconds=time.perf_counter() - started, method=method)
    return ImageResult(measured, _figure(measured, method, k, pixels.shape) if with_figure else None)


class PerImage:
    """``--fit image``: each image is fitted its own model (its key), in the batch's workers."""

    #: errors of the attacks that mean "the model cannot be fitted on a training part": none, each image's
    #: model is fitted on that image alone
    unfit = ()

    def __init__(self, config: BatchConfig):
        self.config = config

    def stream(self, pixels: np.ndarray, configurations: list) -> Iterator:
        """The per-image results of every configuration, in order, from one stream of tasks on ``config.jobs``
        workers: the workers never wait for this process to finish a configuration (its wrong-key measure,
        its run), nor for the slowest image of the last."""
        from joblib import delayed

        config = self.config
        tasks = (delayed(_encode_one)(one, method, k, config.random_state, index < config.figures)
                 for method, k in configurations for index, one in enumerate(pixels))  # fmt: skip
        results = parallel(config, return_as="generator")(tasks)
        return _one_thread_each(results) if in_this_process(config) else results

    @property
    def workers_draw(self) -> bool:
        """Whether the batch's worker processes (or cluster) draw the parent's figures: when it has them."""
        return not in_this_process(self.config)

    def results(self, pixels, method, k, done, stream) -> tuple[Results, None, dict]:
        if stream is None:
            stream = self.stream(pixels, [(method, k)])
        results = []
        for index, result in enumerate(islice(stream, len(pixels))):
            results.append(result)
            done(index, result)
        return results, None, make_codec(method, k=k, fit="image", random_state=self.config.random_state).get_params()

    def wrong_keys(self, results: Results, pixels, ok: list[int], method, k, model_params) -> dict | None:
        """The wrong key of each image: the next image's model."""
        cls = method_class(method)
        following = ok[1:] + ok[:1]
        return {i: cls.from_model_bytes(model_params, results[j].measured.model)
                for i, j in zip(ok, following, strict=True)}  # fmt: skip

    def attack_keys(self, results: Results, subset, ok: list[int], method, k, model_params):
        """What the attacks see of each split: the encodings and reconstructions (fixed: every image keeps its
        own model), and the models of the images (``keys(train)``)."""
        fixed = [results[i].measured.encoded for i in ok], [results[i].measured.reconstruction for i in ok]
        cls = method_class(method)
        codecs = [cls.from_model_bytes(model_params, results[i].measured.model) for i in ok]
        return (lambda train: fixed), (lambda train: codecs)


class PerCollection:
    """``--fit collection``: one model (one key) for the whole collection, fitted in this process."""

    unfit = (InvalidParameter,)  # a k above the size of an attack's training part
    workers_draw = False

    def __init__(self, config: BatchConfig):
        self.config = config

    def stream(self, pixels, configurations) -> None:
        return None  # computed in this process, one configuration at a time

    def results(self, pixels, method, k, done, stream) -> tuple[Results, bytes | None, dict]:
        config = self.config
        codec = make_codec(method, k=k, fit="collection", random_state=config.random_state)
        started = time.perf_counter()
        try:
            codec.fit(pixels)
        except InvalidParameter as exc:
            # One model for all: if it cannot be fitted, every image of this configuration fails.
            for index in range(len(pixels)):
                done(index, ImageResult.failed(str(exc)))
            return [ImageResult.failed(str(exc)) for _ in pixels], None, codec.get_params()
        fit_seconds = (time.perf_counter() - started) / len(pixels)
        model = codec.model_to_bytes()
        results = []
        for index, one in enumerate(pixels):
            measured = measure(codec, one, fit_seconds=fit_seconds, images_per_model=len(pixels), model=model,
                               method=method)  # fmt: skip
            shown = _figure(measured, method, k, one.shape, " · one model for all") if index < config.figures else None
            results.append(ImageResult(measured, shown))
            done(index, results[-1])
        return results, model, codec.get_params()

    def wrong_keys(self, results: Results, pixels, ok: list[int], method, k, model_params) -> dict | None:
        """The wrong key of each image: the same method fitted on the other half of the collection (disjoint
        images; a new random key for AES), so that it is another key even for a fit that does not depend on
        its seed. None if k is above half the collection."""
        config = self.config
        halves = np.array_split(np.random.default_rng(config.random_state).permutation(ok), 2)
        wrong_for = {}
        for mine, other in (halves, halves[::-1]):
            try:
                wrong = make_codec(method, k=k, fit="collection", random_state=config.random_state + 1)
                wrong.fit(pixels[np.sort(other)])
            except InvalidParameter:
                return None
            wrong_for.update(dict.fromkeys(mine.tolist(), wrong))
        return wrong_for

    def attack_keys(self, results: Results, subset, ok: list[int], method, k, model_params):
        """What the attacks see of each split: one model per split, fitted on its training images only (so
        that the key holder's SSIM is measured out of sample, as the attacker's is), shared by every attack."""
        config, fitted = self.config, {}

        def keys(train):
            if train.tobytes() not in fitted:
                codec = make_codec(method, k=k, fit="collection", random_state=config.random_state)
                fitted[train.tobytes()] = codec.fit(subset[train])
            return [fitted[train.tobytes()]] * len(subset)

        def encodings(train):
            codec = keys(train)[0]
            encoded = codec.encode(subset)
            return list(encoded), list(to_uint8(codec.decode(encoded)))

        return encodings, keys


def _add_key_ssim(mode, results: Results, pixels, method, k, model_params) -> None:
    """``key_ssim`` of every image: SSIM of the original against its decoding with a wrong key
    (:meth:`PerImage.wrong_keys`, :meth:`PerCollection.wrong_keys`)."""
    from imgvault.methods.metrics import quality

    ok = [i for i, result in enumerate(results) if result.ok]
    if len(ok) < 2:
        return
    wrong_for = mode.wrong_keys(results, pixels, ok, method, k, model_params)
    if wrong_for is None:
        return
    for i in ok:
        measured = results[i].measured
        guess = wrong_key_reconstruction(method, wrong_for[i], measured.payload)
        measured.metrics["key_ssim"] = quality(measured.original, guess)["ssim"]


def attack(plan, results: Results, ok: list[int], method, k, model_params, progress) -> tuple[dict, dict]:
    """The attacks' run metrics over the images that encoded, and why those that do not apply do not.

    The learning attack (:func:`learning_attack`, ``attack_*``), the threat matrix's other attacks
    (:func:`~imgvault.methods.attacks.matrix.run_attacks`, ``attack/<name>/...``), on the keys of the fit
    mode, and the recognition attack with the key holder's utility (:func:`recognise`). Nothing but the
    recognition if the model cannot be fitted on a training part (k above its size).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # many small fits and products: see _one_thread_each
        return _attack(plan, results, ok, method, k, model_params, progress)


def _attack(plan, results: Results, ok: list[int], method, k, model_params, progress) -> tuple[dict, dict]:
    from imgvault.methods.attacks.matrix import run_attacks

    config = plan.config
    mode = fit_mode(config)
    originals = [results[i].measured.original for i in ok]
    subset = plan.pixels[ok]
    encodings, keys = mode.attack_keys(results, subset, ok, method, k, model_params)
    try:
        learned = learning_attack(originals, encodings, seed=config.random_state)
    except mode.unfit:
        learned = None
    progress()
    metrics, not_applicable = {}, {}
    if learned is not None:
        codec = keys(np.arange(len(subset)))[0]
        metrics, not_applicable = run_attacks(subset, keys, codec, config.fit, seed=config.random_state,
                                              progress=progress)  # fmt: skip
    recognised, why = recognise(plan, results, ok)
    progress()
    return {**(learned or {}), **metrics, **recognised}, {**not_applicable, **why}


def recognise(plan, results: Results, ok: list[int]) -> tuple[dict, dict]:
    """The recognition attack on the encrypted images of the labelled ones among ``ok``
    (``attack/recognition/...``), and the key holder's utility: the same learners' accuracy on the encrypted
    images (``utility/ratio``) and on their decodings (``utility/decoded_ratio``) over theirs on the plain
    images, on the same splits. Or why they do not apply."""
    from imgvault.methods.attacks import recognition

    labels = [plan.labels[i] for i in ok]
    reason = recognition.labels_reason(labels)
    if reason is None and len({results[i].measured.encoded.shape for i in ok}) > 1:
        reason = "the images' payloads differ in size"
    if reason is not None:
        return {}, {"attack/recognition": reason}  # and so the utility, measured with it
    chosen = [ok[j] for j in recognition.labelled(labels)]
    y = np.array([plan.labels[i] for i in chosen])
    seed = plan.config.random_state
    splits = recognition.splits_of(y, seed=seed)
    key = tuple(chosen)
    if key not in plan.plain_scores:
        plain = np.stack([results[i].measured.original for i in chosen])
        plan.plain_scores[key] = recognition.scores(plain, y, splits, seed=seed)
    plain = plan.plain_scores[key]
    encrypted = recognition.scores(np.stack([results[i].measured.encoded for i in chosen]), y, splits, seed=seed)
    exact = all(np.array_equal(results[i].measured.reconstruction, results[i].measured.original) for i in chosen)
    decoded = (
        plain
        if exact
        else recognition.scores(np.stack([results[i].measured.reconstruction for i in chosen]), y, splits, seed=seed)
    )
    out = {f"attack/recognition/{name}": value for name, value in recognition.recognition(encrypted).items()}
    out["attack/recognition/plain_accuracy"] = float(np.mean(plain.accuracy))
    out.update({f"utility/{name}": value for name, value in recognition.utility(encrypted, plain).items()})
    out.update({f"utility/decoded_{name}": value for name, value in recognition.utility(decoded, plain).items()})
    return out, {}


def parallel(config: BatchConfig, **options):
    """joblib's ``Parallel`` on ``config.jobs`` workers, always with the same settings: with other settings,
    joblib would stop the worker processes of the last call and start new ones."""
    from joblib import Parallel

    # max_nbytes=None: joblib would otherwise hand a large image to its workers through a memory-mapped
    # file in a temporary folder, plaintext pixels on disk.
    return Parallel(n_jobs=config.jobs, max_nbytes=None, **options)


def in_this_process(config: BatchConfig) -> bool:
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
