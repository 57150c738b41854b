"""imgvault.cli: the ``imgvault`` command. Commands only parse options, call the library and print.

The group and its options are in :mod:`.group`; each command module registers its commands on it when
imported, here, so that ``from imgvault.cli import cli`` gives the whole command.
"""

from . import demo_command, method_commands, run_commands, serve_commands, store_commands  # noqa: F401
from .group import cli, main

__all__ = ["cli", "main"]
