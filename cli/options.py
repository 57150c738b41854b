"""Options shared by several commands, as decorators."""

import click

from imgvault.store.names import check_collection_name


def checked_by(check):
    """A click callback that gives an option's value through ``check`` (None stays None), its ValueError (and
    InvalidParameter) as click's BadParameter: one ``Error:`` line naming the option."""

    def callback(_ctx, _param, value):
        if value is None:
            return value
        try:
            return check(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


_check_collection = checked_by(check_collection_name)


def collection_option(help_text: str, default: str | None = None):
    return click.option(
        "-c",
        "--collection",
        default=default,
        show_default=default is not None,
        callback=_check_collection,
        help=help_text,
    )


def _split_methods(_ctx, _param, value: str | None) -> tuple[str, ...] | None:
    from imgvault.basics.errors import InvalidParameter
    from imgvault.methods.registry import available_methods, check_method

    if value is None:
        return None
    methods = tuple(dict.fromkeys(m.strip() for m in value.split(",") if m.strip()))
    if not methods:
        raise click.BadParameter(f"unknown method {value!r}; the methods are: {', '.join(available_methods())}")
    for method in methods:
        try:
            check_method(method)  # a plugin that does not load or is not a method: its own Error line
        except InvalidParameter as exc:
            raise click.BadParameter(str(exc)) from None
    return methods


ONE_HELP = "A method (imgvault methods lists them, plugins too; or module:Class)."
SEVERAL_HELP = "Comma-separated methods (imgvault methods lists them, plugins too; or module:Class)."


def methods_option(*, default: str | None = None, one: bool = False):
    """``-m/--methods``: method names, comma-separated (``pca,kmeans``), checked as one value format by
    every command; with ``one``, a command that takes a single method (``--method`` is its old name)."""

    def check(ctx, param, value):
        methods = _split_methods(ctx, param, value)
        if one and methods is not None and len(methods) > 1:
            raise click.BadParameter("encode takes one method; imgvault run takes several")
        return methods

    names = ("-m", "--methods", "--method") if one else ("-m", "--methods")
    return click.option(*names, "methods", default=default, required=default is None, show_default=default is not None,
                        callback=check, metavar="pca,kmeans,gmm,aes" if not one else "METHOD",
                        help=ONE_HELP if one else SEVERAL_HELP)  # fmt: skip


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def output_option(default_help: str):
    """``-o/--output FILE|-`` and ``--force``: where a command writes what it produces.

    The path is checked when it is written (:func:`imgvault.cli.output_files.write_output`), not by click,
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
