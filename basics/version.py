"""The installed imgvault version (light: the command line reads it for --version)."""

from importlib.metadata import PackageNotFoundError, version


def imgvault_version() -> str:
    try:
        return version("imgvault")
    except PackageNotFoundError:
        return "unknown"
