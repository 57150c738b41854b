"""Commands of batch runs: run, compare, ui."""

import contextlib
import json
import os
import sys

import click

from .group import Context, cli, pass_context
from .options import collection_option, json_option, methods_option
from .printing import plain_table, progress_bar


def _split_ks(_ctx, _param, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()  # each method's own default
    try:
        ks = tuple(dict.fromkeys(int(k) for k in value.split(",")))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a whole number or a comma-separated list of them") from None
    if any(k < 1 for k in ks):
        raise click.BadParameter("k must be at least 1")
    return ks


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"


def _psnr(metrics: dict) -> str:
    value = metrics.get("psnr")
    if value is None and metrics.get("exact_fraction") == 1.0:
        return "inf"
    return _number(value)


def _none_if_empty(ctx, param, value):
    return value or None


@cli.command()
@collection_option("The collection to run over.")
@methods_option(default="pca,kmeans,gmm,aes")
@click.option("-k", "ks", default=None, callback=_split_ks,
              help="Each method's one knob, or a comma-separated sweep (2,4,8,16): components (pca), clusters "
                   "(kmeans, gmm), block size (le, etc), iterations (arnold); aes, pe and logistic take none. "
                   "Default: each method's own (8; le 4, etc 16, arnold 10).")  # fmt: skip
@click.option("--size", type=int, default=100, show_default=True)
@click.option("--color", type=click.Choice(["gray", "rgb"]), default="gray", show_default=True)
@click.option("--fit", type=click.Choice(["image", "collection"]), default="image", show_default=True,
              help="One model per image (the study's setting) or one for the whole collection.")  # fmt: skip
@click.option("-j", "--jobs", type=int, default=-1, show_default=True, help="Parallel workers (-1: all cores).")
@click.option("--experiment", help="MLflow experiment (default: imgvault/COLLECTION).")
@click.option("--seed", "random_state", type=int, default=0, show_default=True, help="random_state of the methods.")
@click.option("--figures", type=click.IntRange(min=0), default=25, show_default=True,
              help="Images per run that get an original|encrypted|decrypted|error figure in MLflow.")  # fmt: skip
@click.option("--attack", is_flag=True,
              help="Also run every attack that applies to each method: the threat matrix (needs at least 10 "
                   "images).")  # fmt: skip
@click.option("--plaintext-figures", is_flag=True,
              help="Log the per-image figures (which show the images) even to an MLflow artifact store that "
                   "does not seal them; a warning says where they go.")  # fmt: skip
@click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", metavar="ADDRESS", callback=_none_if_empty,
              help="Run the per-image work on this Dask scheduler's cluster (tls://host:8786; also "
                   "DASK_SCHEDULER_ADDRESS). Results come back here; this process writes the store and "
                   "MLflow.")  # fmt: skip
@json_option
@pass_context
def run(ctx: Context, collection, as_json, **options) -> None:
    """Run methods over a whole collection; store every result sealed; track it all in MLflow.

    One MLflow parent run per batch and one child run per (method, k), with per-image metric series,
    summaries, a per-image table and figures. The tracking store is MLFLOW_TRACKING_URI, else
    $IMGVAULT_HOME/mlflow.db, with its artifacts sealed. Images appear in MLflow by id and step, never by
    name. If the artifact store does not seal artifacts, the per-image figures are left out unless
    --plaintext-figures is given. Exit code 1 if any image failed (the rest still run).

    \b
    Example:
      imgvault run -c photos
      imgvault run -c photos -m pca,kmeans -k 2,4,8,16 --color rgb --fit collection --json
      imgvault run -c faces --attack
      imgvault run -c scans --scheduler tls://dask.internal:8786
    """
    if collection is None:
        raise click.UsageError("which collection? give -c NAME")
    if options["scheduler"]:
        warn_if_unencrypted(options["scheduler"])
    with ctx.open_store() as store:
        store.collection(collection)  # an unknown collection is one Error line, before MLflow is imported
        from imgvault.tracker.runs import BatchConfig, run_batch

        config = BatchConfig(**options)  # the options below the collection are named as its fields
        label = "Encoding and attacking" if config.attack else "Encoding"
        with progress_bar(label, sys.stderr.isatty() and not as_json) as bar:
            result = run_batch(store, collection, config, advance=bar.advance, started=bar.start)
    print_notes(result)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        plural = "s" * (len(result.runs) != 1)
        click.echo(f'Ran {len(result.runs)} configuration{plural} over {result.n_images} images of "{collection}"'
                   f" (MLflow experiment {result.experiment_id}, parent run {result.parent_run_id})")  # fmt: skip
        plain_table(
            [("METHOD", 8), ("K", 4), ("MSE", 9), ("PSNR", 7), ("SSIM", 6), ("BPP", 6), ("FAILED", 6), ("RUN", 0)],
            ((r.method, r.k or "-", _number(r.metrics.get("mse")), _psnr(r.metrics),
              _number(r.metrics.get("ssim")), _number(r.metrics.get("bpp")), len(r.failures), r.run_id)
             for r in result.runs),
        )  # fmt: skip
        if config.attack:
            print_batch_threat_matrix(ctx, result, config.experiment or f"imgvault/{collection}")
    print_failures(result)
    if result.failures:
        sys.exit(1)


def print_batch_threat_matrix(ctx: Context, result, experiment: str) -> None:
    """The threat-matrix rows of this batch's runs, as ``imgvault compare`` shows them."""
    from imgvault.tracker.reports.compare import compare as compare_runs

    from .comparison import print_threat_matrix

    ours = {r.run_id for r in result.runs}
    rows = [row for row in compare_runs(ctx.settings().home, [result.collection], experiment) if row["run_id"] in ours]
    if rows:
        print_threat_matrix(rows, max([len(result.collection), 10]))


def warn_if_unencrypted(address: str) -> None:
    """A warning on stderr for a plain tcp:// scheduler beyond this machine: images and pickles in clear."""
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    host = ""
    with contextlib.suppress(ValueError):
        host = parts.hostname or ""
    scheme = parts.scheme
    if scheme != "tls" and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"Warning: {address} is not encrypted: images and tasks (pickles, which run code) cross the "
                   "network in clear; use tls:// (see docs/deploy.md)", err=True)  # fmt: skip


def print_notes(result, prefix: str = "") -> None:
    for note in result.notes:
        click.echo(f"Warning: {prefix}{note}", err=True)


def print_failures(result, prefix: str = "") -> None:
    """One ``Error:`` line per distinct error of each configuration, with how many images it hit (and
    which, if one)."""
    for run_ in result.runs:
        by_error: dict[str, list[str]] = {}
        for image_id, error in run_.failures:
            by_error.setdefault(error, []).append(image_id)
        for error, image_ids in by_error.items():
            which = f" ({image_ids[0]})" if len(image_ids) == 1 else ""
            click.echo(f"Error: {prefix}{run_.label}: failed on {len(image_ids)} of {result.n_images} images{which}: "
                       f"{error}", err=True)  # fmt: skip


@cli.command()
@click.option("-c", "--collection", "collections", multiple=True, help="Only these collections (repeatable).")
@click.option("--experiment", help="Only this MLflow experiment.")
@json_option
@pass_context
def compare(ctx: Context, collections, experiment, as_json) -> None:
    """Compare methods (and k) across collections: mean metrics of the latest runs, read from MLflow.

    \b
    Example:
      imgvault compare
      imgvault compare -c photos -c scans --json
    """
    _check_collections(ctx, collections)
    from imgvault.tracker.reports.compare import compare as compare_runs

    rows = compare_runs(ctx.settings().home, list(collections) or None, experiment, with_failed=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No runs yet: imgvault run -c COLLECTION", err=True)
        return
    print_comparison(rows)


def _check_collections(ctx: Context, names) -> None:
    """A collection this store does not have is one Error line, before MLflow is imported. The home's own
    tracking store only holds runs of the store's collections; a tracking server (MLFLOW_TRACKING_URI)
    may hold others', so then MLflow is asked."""
    if names and not os.environ.get("MLFLOW_TRACKING_URI"):
        with ctx.open_store() as store:
            for name in names:
                store.collection(name)


def print_comparison(rows: list[dict]) -> None:
    """The quality table (with the images each row used and failed on), the security tables, then the
    configurations that failed on some or all images, with their first error."""
    from imgvault.tracker.reports.compare import failure_line, label

    from .comparison import print_security

    width = max([len(r["collection"]) for r in rows] + [10])
    plain_table(
        [("COLLECTION", width), ("METHOD", 8), ("K", 4), ("FIT", 10), ("SIZE", 9), ("USED", 5), ("FAILED", 6),
         ("MSE", 9), ("PSNR", 7), ("SSIM", 6), ("BPP", 6), ("RUN", 0)],
        ((r["collection"], r["method"], r["k"] or "-", r["fit"], f"{r['size']} {r['color']}", r["used_images"],
          r["failed_images"], _number(r["mse"]), _psnr(r), _number(r["ssim"]), _number(r["bpp"]), r["run_id"])
         for r in rows),
    )  # fmt: skip
    print_security([r for r in rows if r["status"] == "finished"], width)
    failed = sorted((r for r in rows if r["failed_images"]), key=lambda r: r["status"] != "failed")
    if failed:
        click.echo()
        click.echo("Failures (the first error of each configuration)")
        for r in failed:
            where = f"{r['collection']}: " if len({row["collection"] for row in rows}) > 1 else ""
            click.echo(f"{where}{label(r)} ({r['fit']} fit, {r['size']} {r['color']}): {failure_line(r)}")


@cli.command()
@click.option("-c", "--collection", "collections", required=True, multiple=True,
              help="The collection to report on (repeatable: one section each).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="report.html",
              show_default=True, help="Where to write the HTML page ('-' for stdout).")  # fmt: skip
@click.option("--images", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Also show N sample images per method (original, encrypted, decoded, error), decrypted from "
                   "the store: the page then holds image pixels.")  # fmt: skip
@pass_context
def report(ctx: Context, collections: tuple[str, ...], output: str, images: int) -> None:
    """Write one self-contained HTML page (figures embedded) comparing quality and security by method.

    Built from the latest runs of each collection in MLflow; readable without MLflow, and printable.
    Without --images it holds no image pixels and no file names; with --images N it holds N sample
    images per method, and says so at its top.

    \b
    Example:
      imgvault report -c faces -o faces.html
      imgvault report -c photos -c scans -o photos-and-scans.html
      imgvault report -c photos --images 3 -o photos-with-samples.html
    """
    _check_collections(ctx, collections)
    from imgvault.tracker.reports.page import render_report

    from .output_files import write_output

    home = ctx.settings().home
    if images:
        with ctx.open_store() as store:
            page = render_report(home, list(collections), images=images, store=store)
    else:
        page = render_report(home, list(collections))
    write_output(output, page.encode(), force=True)
    if images:
        where = "the page" if output == "-" else output
        click.echo(f"Warning: {where} holds image pixels ({images} sample image(s) per method, decrypted from the "
                   "store): keep it as you keep the images", err=True)  # fmt: skip


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@pass_context
def ui(ctx: Context, port: int) -> None:
    """Serve the MLflow UI for this home's tracking store, on loopback only.

    \b
    Example:
      imgvault ui --port 5000     # then open http://127.0.0.1:5000
    """
    from imgvault.tracker.ui import run_ui

    def announce(uri: str, url: str) -> None:
        click.echo(f"MLflow UI for {uri} at {url} (Ctrl-C to stop)", err=True)
        click.echo('If it opens on GenAI pages, choose "Model training" at the top left to see the runs.', err=True)

    raise SystemExit(run_ui(ctx.home_settings(), port, announce=announce))
