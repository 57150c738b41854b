"""Options shared by several commands, as decorators."""

import click

from imgvault.store.names import check_collection_name


def _check_collection(_ctx, _param, value):
    if value is None:
        return value
    try:
        return check_collection_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def collection_option(help_text: str, default: str | None = None):
    return click.option(
        "-c",
        "--collection",
        default=default,
        show_default=default is not None,
        callback=_check_collection,
        help=help_text,
    )


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def output_option(default_help: str):
    """``-o/--output FILE|-`` and ``--force``: where a command writes what it produces.

    The path is checked when it is written (:func:`imgvault.cli.outputs.write_output`), not by click,
    so that every refusal is one ``Error:`` line.
    """
    output = click.option(
        "-o",
        "--output",
        type=click.Path(allow_dash=True, path_type=str),
        help=f"Where to write it: a new file, or '-' for stdout. Default: {default_help}",
    )
    force = click.option(
        "--force",
        is_flag=True,
        help="Replace the file if it exists; never a symlink, FIFO, device or directory.",
    )
    return lambda command: output(force(command))
