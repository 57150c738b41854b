"""Where a store lives: the home folder, the database URL, the key file or passphrase.

Resolved once from arguments and the environment, so that every command and the Python API agree:

=====================  ======================================  ==========================================
variable               default                                 meaning
=====================  ======================================  ==========================================
``IMGVAULT_HOME``      ``./imgvault-data``                     the folder holding everything below
``IMGVAULT_DB_URL``    ``sqlite:///$IMGVAULT_HOME/store.db``   the store database (any SQLAlchemy URL)
``IMGVAULT_KEY_FILE``  ``$IMGVAULT_HOME/keyset.json``          the keyset (keep it away from the data)
``IMGVAULT_PASSPHRASE`` unset                                  derive the key from this instead of a file
=====================  ======================================  ==========================================
"""

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "imgvault-data"


@dataclass(frozen=True)
class Settings:
    """The resolved locations of one store.

    Parameters
    ----------
    home : Path
        The home folder (absolute).
    db_url : str
        SQLAlchemy URL of the store database.
    key_file : Path
        Path of the keyset file (used when no passphrase is given).
    passphrase : str or None
        When set, keys are derived from it with scrypt and no key file is used.
    """

    home: Path
    db_url: str
    key_file: Path
    passphrase: str | None = None

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from ``home`` (or ``IMGVAULT_HOME``, or ``./imgvault-data``) and the environment."""
        env = os.environ if environ is None else environ
        home_path = Path(home if home is not None else env.get("IMGVAULT_HOME") or DEFAULT_HOME)
        home_path = home_path.expanduser().absolute()
        db_url = env.get("IMGVAULT_DB_URL") or sqlite_url(home_path / "store.db")
        key_file = Path(env.get("IMGVAULT_KEY_FILE") or home_path / "keyset.json").expanduser().absolute()
        return cls(home=home_path, db_url=db_url, key_file=key_file, passphrase=env.get("IMGVAULT_PASSPHRASE") or None)

    @property
    def sqlite_path(self) -> Path | None:
        """The database file when the store is SQLite on disk, else None."""
        return sqlite_file(self.db_url)

    def describe_db(self) -> str:
        """The database as a person would name it: the file path, or the URL without its password."""
        if self.sqlite_path is not None:
            return str(self.sqlite_path)
        from sqlalchemy.engine import make_url

        return make_url(self.db_url).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (the store's or MLflow's), percent-decoded as SQLAlchemy reads it; None
    for any other URL, and for an in-memory database."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix) :] in ("", ":memory:"):
        return None
    return Path(urllib.parse.unquote(url[len(prefix) :].split("?", 1)[0]))


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite file ``path``, percent-encoded: a home's path may hold ``%``, ``#``,
    ``?`` or other characters that a URL would otherwise read as its own."""
    return "sqlite:///" + urllib.parse.quote(str(path))
