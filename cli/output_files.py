"""Writing what a command produces to a file: a new regular file only, never half-written.

An existing path is refused unless the caller forces it; even forced, only a regular file is replaced
(never a symbolic link, FIFO, device or directory, which ``rename`` would silently turn into a file).
The data goes to a temporary file in the same folder first and appears at the path in one step
(``link`` when nothing may be replaced, ``rename`` when a regular file may), so a reader never sees a
partial file and a crash leaves nothing at the path.
"""

import errno
import os
import stat
import sys
import tempfile
import unicodedata
from contextlib import suppress
from pathlib import Path

import click

from .printing import printable

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
# Filesystems without hard links (FAT, some network and FUSE mounts) refuse link() with these.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def write_output(output: str, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to stdout (``-``) or to a new regular file ``output``.

    Without ``force`` an existing path of any kind is refused; with it, an existing regular file is
    replaced and anything else is refused. Failures are one-line :class:`click.ClickException` s.
    """
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(output)
    _check_target(path, force)
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".imgvault-", suffix=".tmp")
    except OSError as exc:
        raise click.ClickException(f"cannot write {printable(output)}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            # Checked again just before the rename: the path may have changed while the data was written.
            _check_target(path, force)
            os.replace(temporary, path)
        else:
            _link_new(temporary, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {printable(output)}: {exc.strerror or exc}") from None
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
    click.echo(f"Wrote {printable(output)} ({len(data):,} bytes)", err=True)


def _check_target(path: Path, force: bool) -> None:
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise click.ClickException(f"cannot write {printable(str(path))}: {exc.strerror or exc}") from None
    if not force:
        raise _exists(path)
    for test, kind in _KINDS:
        if test(found.st_mode):
            raise click.ClickException(f"{printable(str(path))} is {kind}, not a regular file; refusing to replace it")


def _exists(path: Path) -> click.ClickException:
    return click.ClickException(
        f"{printable(str(path))} already exists (use --force to replace it, or -o to write elsewhere)"
    )


def _link_new(temporary: str, path: Path) -> None:
    """Give the finished ``temporary`` the name ``path``, which must not exist: atomic, never replacing."""
    try:
        os.link(temporary, path, follow_symlinks=False)
        return
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # Without hard links: claim the name with O_EXCL (which also refuses a symlink there), then rename
    # the finished file over the empty placeholder that this call itself created.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
    except FileExistsError:
        raise _exists(path) from None
    os.replace(temporary, path)


def safe_file_name(name: str, fallback: str) -> str:
    """``name`` made safe to create in the current folder, or ``fallback`` when nothing usable is left.

    Keeps only the last path component, turns control characters into ``_`` and drops leading dots
    and dashes, so that a stored name can never climb out of the folder, hide a file, look like an
    option, or mean stdout (``-``).
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join("_" if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in base)
    base = base.lstrip(".-").strip()
    return base or fallback
