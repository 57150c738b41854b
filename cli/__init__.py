"""imgvault.cli: the ``imgvault`` command. Commands only parse options, call the library and print."""

from .app import cli, main

__all__ = ["cli", "main"]
