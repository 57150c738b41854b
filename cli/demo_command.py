"""``imgvault demo``: the whole product on images shipped inside our dependencies, from an empty folder."""

import os
import shlex
import sys
from pathlib import Path

import click

from .group import Context, cli, pass_context
from .output_files import write_output
from .printing import progress_bar
from .run_commands import print_comparison, print_failures, print_notes


@cli.command()
@click.option("--quick", is_flag=True,
              help="Under two minutes: fewer images, k = 4 and 8 (the faces: k = 8), 48x48 pixels.")  # fmt: skip
@click.option("-j", "--jobs", type=int, default=-1, show_default=True, help="Parallel workers (-1: all cores).")
@click.option("-o", "--report", "report_path", type=click.Path(dir_okay=False),
              help="Where to write the HTML report (default: $IMGVAULT_HOME/demo-report.html).")  # fmt: skip
@pass_context
def demo(ctx: Context, quick: bool, jobs: int, report_path: str | None) -> None:
    """Build demo collections, run every method over them with a k sweep, compare, and write a report.

    Every method: the learnt codecs (pca, kmeans, gmm), AES, and the literature's ciphers (le, etc, pe,
    logistic, arnold; k is their block side or iterations), each attacked on the faces. No network: the
    images ship inside scikit-image and scikit-learn. The store is created if there is none (as `imgvault
    init` would); a second demo reuses the collections and adds new runs. Every run is tracked in MLflow.
    The last three lines are the report's path and the commands that open the MLflow UI and the gallery.

    \b
    Collections:
      demo-photos  natural photos from scikit-image and scikit-learn, in colour
      demo-tiles   100x100 tiles cut from the large photos, in gray
      demo-faces   faces from scikit-image's LFW subset, one model for all, with the learning attack
      demo-digits  scikit-learn's 8x8 handwritten digits upscaled to 32x32, labelled 0 to 9, attacked
      demo-faces-labelled  the LFW subset's faces and non-faces, labelled face or non-face, attacked

    The images of the last two carry a label (imgvault labels -c demo-digits counts them).

    \b
    Example:
      imgvault demo
      imgvault demo --quick          # under two minutes
      imgvault --home /tmp/try demo -o /tmp/try/report.html
    """
    from imgvault.store import Store
    from imgvault.tracker.demo import DEMO_METHODS, collections, ensure_collection, run_demo
    from imgvault.tracker.reports.compare import compare
    from imgvault.tracker.reports.page import render_report
    from imgvault.tracker.tracking import open_client, tracking_uri

    settings = ctx.settings()
    tty = sys.stderr.isatty()
    if not Store.exists(settings):
        Store.init(settings=settings).close()
        click.echo(f"Created an imgvault store in {settings.home}")
        if settings.passphrase is None:
            click.echo(f"  key file: {settings.key_file} (mode 0600; next to the data, which is fine for a demo only)")
    open_client(settings.home)  # a dead tracking server fails here, before any image is stored
    demos = collections(quick)
    failed = 0
    with Store.open(settings=settings) as store:
        for one in demos:
            with progress_bar(f"Storing {one.name}", tty) as bar:
                bar.start(one.count)
                added, present = ensure_collection(store, one, bar.advance)
            reused = f", {present} already stored" if present else ""
            click.echo(f"{one.name}: {added + present} images ({added} added{reused}): {one.about}")
        sweeps = ", ".join(f"{one.name} k = {','.join(map(str, one.config.ks))}"
                           + (f" ({', '.join(one.config.methods)} only)" if one.config.methods != DEMO_METHODS else "")
                           for one in demos)  # fmt: skip
        click.echo(f"Running {', '.join(DEMO_METHODS)} over each collection ({sweeps})")
        for one, result in run_demo(store, quick, jobs=jobs, progress=lambda label: progress_bar(label, tty)):
            failed += result.failures
            click.echo(f"{one.name}: {len(result.runs)} configurations over {result.n_images} images, "
                       f"MLflow experiment {result.experiment_id}, parent run {result.parent_run_id}")  # fmt: skip
            print_notes(result, prefix=f"{one.name}: ")
            print_failures(result, prefix=f"{one.name}: ")
    names = [one.name for one in demos]
    click.echo()
    print_comparison(compare(settings.home, names, with_failed=True))
    click.echo()
    path = report_path or str(settings.home / "demo-report.html")
    write_output(path, render_report(settings.home, names).encode(), force=True)
    uri = tracking_uri(settings.home)
    home = f"imgvault --home {shlex.quote(str(settings.home))}"
    ui = f"{home} ui"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        ui = f"MLFLOW_TRACKING_URI={shlex.quote(uri)} {ui}"
    click.echo()
    token = f"it asks for a token: {home} token create NAME"
    if uri.startswith(("http://", "https://")):
        click.echo(f"The report, the MLflow UI of these runs and the web gallery (http://127.0.0.1:8000; {token}):")
        ui = uri
    else:
        click.echo("The report, the MLflow UI (then open http://127.0.0.1:5000) and the web gallery "
                   f"(http://127.0.0.1:8000; {token}):")  # fmt: skip
    click.echo(f"  {Path(path).absolute()}")
    click.echo(f"  {ui}")
    click.echo(f"  {home} serve")
    if failed:
        sys.exit(1)
