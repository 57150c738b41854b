"""Commands of the store: init, put, get, ls, rm, collections, key rotate, db upgrade."""

import json
import sys
from pathlib import Path

import click

from imgvault.store.names import check_label

from .group import Context, cli, pass_context
from .options import checked_by, collection_option, json_option, output_option
from .output_files import safe_file_name, write_output
from .printing import JsonList, plain_table, printable, progress_bar


@cli.command()
@click.option("--exist-ok", is_flag=True, help="Succeed without change if the store exists and the key opens it.")
@pass_context
def init(ctx: Context, exist_ok: bool) -> None:
    """Create the store: home folder, key file (mode 0600) and database.

    Refuses to overwrite an existing key or store. With IMGVAULT_PASSPHRASE set, the key is derived
    from the passphrase instead and no key file is written.

    \b
    Example:
      imgvault init
      IMGVAULT_KEY_FILE=~/.config/imgvault/keyset.json imgvault --home /data/vault init
    """
    from imgvault.store import Store

    settings = ctx.settings()
    if exist_ok and Store.exists(settings):
        with Store.open(settings=settings):
            click.echo(f"An imgvault store already exists in {settings.home}; its key opens it.")
        return
    with Store.init(settings=settings) as store:
        settings = store.settings
        click.echo(f"Created an imgvault store in {settings.home}")
        click.echo(f"  database: {settings.describe_db()}")
        if store.key_source == "file":
            click.echo(f"  key file: {settings.key_file} (mode 0600)")
            click.echo("Keep a copy of the key file somewhere safe and away from the data: without it the")
            click.echo("images cannot be read, and with it next to the data the encryption protects nothing.")
        else:
            click.echo("  key: derived from IMGVAULT_PASSPHRASE (scrypt; the salt is kept in the store)")


def _parse_meta(_ctx, _param, values):
    from imgvault.basics.errors import InvalidMetadata, InvalidParameter
    from imgvault.store.validate import check_metadata

    metadata = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        metadata[key] = value
    try:
        check_metadata(metadata)
    except InvalidParameter as exc:  # the label
        raise click.BadParameter(str(exc)) from None
    except InvalidMetadata as exc:
        raise click.ClickException(str(exc)) from None
    return metadata


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@collection_option("Collection to put the images in (created if new).", default="default")
@click.option(
    "--meta",
    "metadata",
    multiple=True,
    callback=_parse_meta,
    help="KEY=VALUE stored sealed with each image (at most 64 KiB in all, as JSON).",
)
@click.option(
    "--label", callback=checked_by(check_label), help="A label for every file (stored as its metadata's label)."
)
@click.option("--label-from-folder", is_flag=True,
              help="Label each file with the name of the folder it is in.")  # fmt: skip
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Processes that validate images (default: all cores).")
@json_option
@pass_context
def put(ctx: Context, paths, collection: str, metadata: dict, label: str | None, label_from_folder: bool,
        jobs: int | None, as_json: bool) -> None:  # fmt: skip
    """Store image files, and every file below each directory, encrypted.

    Each file is fully decoded before it is stored, every frame of it. Files that are not images the
    store accepts, FIFOs and devices (never opened) and folders that cannot be read are reported on
    stderr, one "Error: PATH: reason" line each, and the rest are stored anyway; a summary line
    follows (exit code 1 if any failed). The stored bytes are the file's bytes, untouched.

    A label (for a classifier trained on the encrypted images) is stored sealed as the metadata's "label":
    --label NAME gives every file that label, --label-from-folder gives each file the name of the folder
    it is in (photos/cats/tom.png: cats). One of --label, --label-from-folder and --meta label=NAME; a
    label has 1 to 200 characters and no control characters (a folder name that is not one: an error
    for its files).

    Limits: 256 MiB per file; 89,478,485 pixels per frame or page, at most 1,000 frames and
    178,956,970 pixels for all frames together (checked before decoding); metadata at most 64 KiB
    as JSON.

    \b
    Example:
      imgvault put scan.png
      imgvault put photos/ more/*.jpg -c holidays --meta source=camera
      imgvault put photos/ --json | jq -r '.[].id'
      imgvault put pets/cats pets/dogs -c pets --label-from-folder
    """
    from imgvault.store.ingest import iter_files
    from imgvault.store.names import label_from_folder as folder_name

    given = [name for name, on in (("--label", label is not None), ("--label-from-folder", label_from_folder),
                                   ("--meta label=...", "label" in metadata)) if on]  # fmt: skip
    if len(given) > 1:
        raise click.UsageError(f"give a label one way only: {' and '.join(given)} each give one")
    if label is not None:
        metadata = {**metadata, "label": label}

    stored = failed = 0
    show = sys.stderr.isatty()
    store = ctx.open_store()

    def committed(results) -> None:
        # On the writer thread, where no Ctrl-C lands: the summary's count is every image committed, even
        # when an interrupt stops this thread between a result given and the result told.
        nonlocal stored
        stored += len(results)

    def tell(result) -> None:
        nonlocal failed
        # Counted before anything is called, where a Ctrl-C could land.
        if result.error:
            failed += 1
        bar.advance()
        if result.error:
            bar.echo(f"Error: {printable(result.error)}", err=True)
        elif as_json:
            out.append(result.image.to_dict())
        else:
            bar.echo(f"{result.image.id}  {printable(str(result.path))}")

    try:
        # The JSON list is closed after the bar is gone: its last lines are not drawn over.
        with store, JsonList(as_json) as out, progress_bar("Storing", show) as bar:
            if show:
                bar.start(sum(1 for _ in iter_files(paths)))
            store.put_each(paths, tell, collection=collection, metadata=metadata or None, jobs=jobs,
                           label_of=folder_name if label_from_folder else None, committed=committed)  # fmt: skip
    finally:
        # Also when the store itself fails (a full disk): what was committed is said before the error.
        click.echo(f'Stored {stored} image{"s" * (stored != 1)} in collection "{collection}"'
                   + (f"; {failed} failed." if failed else "."), err=True)  # fmt: skip
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("image_id")
@output_option("its original name, made safe (no folders, no leading dot or dash), in the current folder.")
@pass_context
def get(ctx: Context, image_id: str, output: str | None, force: bool) -> None:
    """Write an image's original bytes, exactly as they were put.

    The output is a new regular file: an existing path is refused unless --force is given, and even
    then only a regular file is replaced (never a symlink, FIFO, device or directory). The file
    appears complete or not at all. '-o -' writes to stdout.

    \b
    Example:
      imgvault get 01JD3Z8R8C6WQ3M1V0B5E3N9XK -o scan.png
      imgvault get 01JD3Z8R8C6WQ3M1V0B5E3N9XK -o - | sha256sum
    """
    with ctx.open_store() as store:
        data = store.get(image_id)
        if output is None:
            info = store.info(image_id)
            fallback = f"image-{info.id}{_SUFFIXES.get(info.format, '')}"
            output = safe_file_name(info.name, fallback)
    write_output(output, data, force=force)


_SUFFIXES = {"BMP": ".bmp", "GIF": ".gif", "JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp"}


@cli.command("ls")
@collection_option("Only the images of this collection.")
@click.option("--encoded", is_flag=True, help="List encoded images (method, k, metrics) instead.")
@json_option
@pass_context
def ls(ctx: Context, collection: str | None, encoded: bool, as_json: bool) -> None:
    """List stored images (id, format, size, mode, bytes, created, collection, name).

    With --encoded, list the encoded images with their method, settings and quality metrics.

    \b
    Example:
      imgvault ls
      imgvault ls -c holidays --json
      imgvault ls --encoded
    """
    with ctx.open_store() as store:
        if encoded:
            from .method_commands import list_encoded

            list_encoded(store, collection, as_json)
            return
        images = store.images(collection)
        if as_json:
            with JsonList(True) as out:
                for image in images:
                    out.append(image.to_json())
            return
        width = max([len(name) for name in store.collection_names()] + [len("COLLECTION")])
        columns = [("ID", 26), ("FORMAT", 6), ("SIZE", 11), ("MODE", 5), ("BYTES", 11), ("CREATED", 19),
                   ("COLLECTION", width), ("NAME", 0)]  # fmt: skip
        rows = (
            (i.id, i.format, f"{i.width}x{i.height}", i.mode, f"{i.bytes:,}", i.created.isoformat(" ", "seconds"),
             i.collection, i.name)
            for i in images
        )  # fmt: skip
        plain_table(columns, rows)


@cli.command()
@click.argument("image_ids", nargs=-1)
@click.option("-c", "--collection", help="Remove every image of this collection (instead of naming ids).")
@click.option("--keep-runs", is_flag=True,
              help="Leave the MLflow runs as they are: their figures, table rows and metric points of these images"
                   " stay, and a warning says how many.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the ids of what was removed, as JSON.")
@pass_context
def rm(ctx: Context, image_ids: tuple[str, ...], collection: str | None, keep_runs: bool, as_json: bool) -> None:
    """Delete images by id (or a whole collection), with their encoded images and the codec models fitted on
    them alone: all of them, or nothing if any id is unknown. The MLflow runs that showed them lose them too:
    each image's figures, its row of images.json and its per-image metric points. Says how many of each it
    removed.

    \b
    Example:
      imgvault rm 01JD3Z8R8C6WQ3M1V0B5E3N9XK 01JD3Z8R8C9YV6C1W8SPJ0J2QH
      imgvault rm -c scans --json
    """
    from imgvault.tracker.sealing.erasure import erase_from_runs
    from imgvault.tracker.tracking import tracking_uri

    if bool(image_ids) == bool(collection):
        raise click.UsageError("name image ids, or a collection with -c, not both" if image_ids else
                               "name the image ids to remove, or a collection with -c")  # fmt: skip
    with ctx.open_store() as store:
        if collection is not None:
            store.collection(collection)  # an unknown collection is an error, not nothing removed
            image_ids = tuple(image.id for image in store.images(collection))
        store.check_images(image_ids)  # every id known before anything is erased
        home = store.settings.home
        # The runs first: an erasure that fails leaves the images in the store, so that rm can run again.
        erasure = erase_from_runs(store.sealer, home, tracking_uri(home), image_ids, keep_runs=keep_runs)
        removal = store.remove(image_ids) if image_ids else None
    removed = removal.to_dict() if removal else {"images": [], "encoded_images": [], "codec_models": []}
    if as_json:
        click.echo(json.dumps({**removed, "mlflow": {**erasure.to_dict(), "kept": keep_runs}}, indent=2))
    else:
        click.echo(f"Removed {_count(len(removed['images']), 'image')}, "
                   f"{_count(len(removed['encoded_images']), 'encoded image')} and "
                   f"{_count(len(removed['codec_models']), 'codec model')}.", err=True)  # fmt: skip
        shown = (
            f"{_count(erasure.figures, 'figure file')}, {_count(erasure.table_rows, 'row')} of images.json and"
            f" {_count(erasure.metric_points, 'per-image metric point')} in {_count(erasure.runs, 'MLflow run')}"
        )
        if keep_runs and erasure.runs:
            click.echo(f"Warning: --keep-runs: {shown} still show the removed images.", err=True)
        elif erasure.runs:
            click.echo(f"Erased from MLflow: {shown}.", err=True)
    for where in erasure.unreachable:
        click.echo(f"Warning: runs at {where} were not searched: figures of the removed images may remain there"
                   " (delete those runs in MLflow).", err=True)  # fmt: skip


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


@cli.command()
@json_option
@pass_context
def collections(ctx: Context, as_json: bool) -> None:
    """List collections with their number of images and total size.

    \b
    Example:
      imgvault collections --json
    """
    with ctx.open_store() as store:
        found = store.collections()
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in found], indent=2))
        return
    width = max([len(c.name) for c in found] + [10])
    plain_table(
        [("COLLECTION", width), ("IMAGES", 8), ("BYTES", 15), ("CREATED", 0)],
        ((c.name, f"{c.images:,}", f"{c.bytes:,}", f"{c.created:%Y-%m-%d %H:%M:%S}") for c in found),
    )


@cli.command()
@collection_option("The collection whose labels to count.")
@json_option
@pass_context
def labels(ctx: Context, collection: str | None, as_json: bool) -> None:
    """Count a collection's images by label (put --label, --label-from-folder); unlabelled images are not
    counted. A recognition attack needs at least two labels with enough images each.

    \b
    Example:
      imgvault labels -c pets
      imgvault labels -c pets --json
    """
    if collection is None:
        raise click.UsageError("Missing option '-c' / '--collection'.")
    with ctx.open_store() as store:
        counts = store.label_counts(collection)
    if as_json:
        click.echo(json.dumps(counts, indent=2))
        return
    width = max([len(label) for label in counts] + [10])
    plain_table([("LABEL", width), ("IMAGES", 0)], ((label, f"{n:,}") for label, n in counts.items()))


@cli.group()
def key() -> None:
    """Manage the store's encryption key.

    \b
    Example:
      imgvault key rotate
    """


def _sealed_destination(_ctx, _param, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not value.startswith("imgvault+"):
            raise click.BadParameter(f"{value!r} is not a sealed artifact location (imgvault+s3://BUCKET/PREFIX, ...)")
    return values


artifacts_option = click.option(
    "--artifacts", "artifact_uris", multiple=True, metavar="URI", callback=_sealed_destination,
    help="Also the MLflow artifacts at this sealed location, such as a team server's "
         "--artifacts-destination imgvault+s3://BUCKET/PREFIX (repeatable; needs its credentials).",
)  # fmt: skip


def _print_damaged(report, consequence: str, echo=lambda text: click.echo(text, err=True)) -> None:
    for place in report.damaged:
        reason = "failed its integrity check (wrong key, or altered or moved)"
        echo(f"Error: artifact {place} {reason}; {consequence}")


@key.command()
@artifacts_option
@pass_context
def rotate(ctx: Context, artifact_uris: tuple[str, ...]) -> None:
    """Make a new primary key, re-seal every record with it, then retire the old key.

    Records are re-sealed in small batches; the store stays readable and writable throughout, and an
    interrupted rotation can be run again. Back up the key file afterwards: the old key is destroyed.
    The MLflow artifacts under the home are re-sealed too, before the old key goes; those of a team
    server's object store only when named with --artifacts (else they stay under the old key and can no
    longer be opened).

    One rotation runs on a store at a time: a second one does not wait, it fails at once with
    "another key rotation is in progress" (run it again when the first has finished).

    \b
    Example:
      imgvault key rotate
    """
    from imgvault.tracker.home import rotate_key
    from imgvault.tracker.sealing.files import ArtifactsDamaged

    try:
        with ctx.open_store() as store, progress_bar("Re-sealing", sys.stderr.isatty()) as bar:
            report = rotate_key(store, artifact_uris, started=bar.start, advance=bar.advance)
    except ArtifactsDamaged as damaged:
        _print_damaged(damaged, "left as is")
        raise
    retired = ", ".join(str(k) for k in report.retired_key_ids) or "none"
    counts = report.resealed
    records = ", ".join(
        _count(counts.get(kind, 0), noun)
        for kind, noun in (
            ("image", "image"),
            ("encoded", "encoded image"),
            ("model", "codec model"),
            ("token", "API token"),
        )
    )
    click.echo(f"New primary key {report.new_key_id}; re-sealed {records} and"
               f" {_count(report.resealed_artifacts, 'MLflow artifact')}; retired keys: {retired}.")  # fmt: skip


@cli.group()
def db() -> None:
    """Manage the store's database schema.

    \b
    Example:
      imgvault db upgrade
    """


@db.command()
@artifacts_option
@pass_context
def upgrade(ctx: Context, artifact_uris: tuple[str, ...]) -> None:
    """Upgrade the store's schema to this version of imgvault (Alembic migrations), and seal in place the
    MLflow artifacts that earlier versions wrote in plaintext under the home (run it after every upgrade).

    Some migrations re-seal the store's records (revision 0003 binds each record's links into its
    sealed blobs), so the store's key file or passphrase must be at hand, as for any other command.

    \b
    Example:
      imgvault db upgrade
    """
    from imgvault.tracker.home import upgrade_home
    from imgvault.tracker.tracking import artifact_root

    settings = ctx.settings()
    with progress_bar("Sealing MLflow artifacts", sys.stderr.isatty()) as bar:
        before, after, report = upgrade_home(settings, artifact_uris, started=bar.start, advance=bar.advance)
    if before == after:
        click.echo(f"The schema is already at revision {after}.")
    else:
        click.echo(f"Upgraded the schema from revision {before} to {after}.")
    where = ", ".join([str(artifact_root(settings.home)), *artifact_uris])
    if report.changed or report.locations:
        click.echo(f"MLflow artifacts under {where}: sealed {report.sealed:,} plaintext files in place, re-sealed"
                   f" {report.resealed:,} under the current key, re-bound {report.rebound:,} to their run;"
                   f" {report.locations:,} experiment and run locations now resolve against the home.")  # fmt: skip
    else:
        click.echo(f"MLflow artifacts under {where}: all sealed already.")
    _print_damaged(report, "left as is")
    if report.damaged:
        sys.exit(1)
