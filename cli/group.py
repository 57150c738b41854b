"""The ``imgvault`` command group, its shared options, and the one place where errors become exit codes.

Nothing heavy is imported here: ``imgvault --help`` must start fast, so each command imports the library
it calls when it runs.
"""

import errno
import sys
from dataclasses import dataclass

import click


@dataclass
class Context:
    """What the group's options give every command."""

    home: str | None
    debug: bool

    def settings(self):
        from imgvault.store import Settings

        return Settings.resolve(self.home)

    def open_store(self):
        from imgvault.store import Store

        settings = self.settings()
        store = Store.open(settings=settings)
        _warn_if_others_can_read(settings.home)
        return store

    def home_settings(self):
        """The settings, with a warning if others can read the home (for a command that opens the store
        through the library)."""
        settings = self.settings()
        _warn_if_others_can_read(settings.home)
        return settings


def _warn_if_others_can_read(home) -> None:
    """One ``Warning:`` line when other users can enter or read the home folder."""
    import os
    import stat

    try:
        mode = stat.S_IMODE(os.stat(home).st_mode)
    except OSError:
        return
    if os.name == "posix" and mode & 0o077:
        click.echo(f"Warning: other users can read the home folder {home} (mode {mode:04o}): run chmod 700 {home}",
                   err=True)  # fmt: skip


pass_context = click.make_pass_decorator(Context)


class ImgVaultGroup(click.Group):
    """Turns every expected failure into one ``Error: ...`` line and exit code 1 (a traceback with --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (``imgvault ls | head``): not an error worth a message.
            sys.stderr = None
            ctx.exit(1)
        except Exception as exc:
            if _debug(ctx):
                raise
            from .printing import printable

            raise click.ClickException(printable(describe_error(exc))) from None


def describe_error(exc: Exception) -> str:
    """The one line that an error which reached the command line is shown as."""
    from imgvault.basics.errors import ImgVaultError

    if isinstance(exc, ImgVaultError):
        return str(exc)
    if _disk_full(exc):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"the disk holding the store's database is full ({reason}); nothing of the failed write was stored"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"{exc.filename}: no space left on device" if exc.filename else "no space left on device"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    # Database errors carry the driver's own error, and hints on further lines: one line only.
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""]
    return f"unexpected {type(exc).__name__}: {message[0]} (run with --debug for the traceback)"


def _disk_full(exc: Exception) -> bool:
    """A database error that says the disk is full: SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL" or "database or disk is full" in str(orig):
        return True
    return getattr(orig, "sqlstate", None) == "53100" or getattr(orig, "pgcode", None) == "53100"


def _debug(ctx: click.Context) -> bool:
    obj = ctx.find_object(Context)
    return bool(obj and obj.debug)


def _print_version(ctx: click.Context, _param, value: bool) -> None:
    # Looked up only when asked for: importlib.metadata is slower to import and search than a command to run.
    if value and not ctx.resilient_parsing:
        from imgvault.basics.version import imgvault_version

        click.echo(f"imgvault, version {imgvault_version()}")
        ctx.exit()


@click.group(cls=ImgVaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    help="Home folder of the store (default: $IMGVAULT_HOME, else ./imgvault-data).",
)
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")  # fmt: skip
@click.pass_context
def cli(ctx: click.Context, home: str | None, debug: bool) -> None:
    """Keep images encrypted at rest, and measure how image "encryption" methods protect them.

    \b
    Example:
      imgvault demo                     # the whole product on bundled images
      imgvault init
      imgvault put photos/ -c holidays
      imgvault ls -c holidays
      imgvault get 01JD3Z8R8C6WQ3M1V0B5E3N9XK -o copy.jpg

    Configuration: IMGVAULT_HOME, IMGVAULT_DB_URL, IMGVAULT_KEY_FILE, IMGVAULT_PASSPHRASE,
    MLFLOW_TRACKING_URI, DASK_SCHEDULER_ADDRESS (see docs/configuration.md).
    """
    ctx.obj = Context(home=home, debug=debug)


def main() -> None:
    """Entry point of the ``imgvault`` command.

    Every file the command creates is for its user alone (mode 0600, folders 0700): the store's, MLflow's
    database and artifacts, reports, decoded images, and those of the servers it starts.
    """
    import os

    os.umask(os.umask(0o077) | 0o077)
    cli(prog_name="imgvault")
