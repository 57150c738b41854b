"""The errors imgvault reports to people.

Every expected failure is an :class:`ImgVaultError`; its message is complete and specific (it names the
file, the id, the collection) so that the command line can print it as one ``Error: ...`` line.
Mistakes in how the library is called stay ``TypeError`` / ``ValueError``.
"""


class ImgVaultError(Exception):
    """Base class of every error imgvault reports to a person."""


class ConfigError(ImgVaultError):
    """The home folder, database URL, key file or passphrase is missing or does not fit the store."""


class NotFound(ImgVaultError):
    """A record that was asked for by id or name does not exist."""


class ImageNotFound(NotFound):
    """No image with this id."""


class CollectionNotFound(NotFound):
    """No collection with this name."""


class IntegrityError(ImgVaultError):
    """A sealed payload failed to open: wrong key, unknown key id, or tampered, truncated or moved data.

    Deliberately one error for every cause (as ``cryptography.fernet.InvalidToken``): the reason a blob
    does not open is not something to tell an attacker, and no caller should act on the difference.
    """


class InvalidImage(ImgVaultError):
    """A file offered to the store is not an image the store accepts."""


class EncodedNotFound(NotFound):
    """No encoded image with this id."""


class InvalidParameter(ImgVaultError, ValueError):
    """A method parameter is out of range for the data (k too large for the image, unknown method...).

    Also a ``ValueError``: for Python callers it is a mistake in the call, as scikit-learn reports it.
    """


class PluginError(ImgVaultError):
    """A method plugin does not load, or breaks the method contract; the message names the plugin and what."""


class InvalidMetadata(ImgVaultError, ValueError):
    """User metadata the store does not accept (too large, or not JSON text)."""


class RotationInProgress(ImgVaultError):
    """Another key rotation holds the store: rotations run one at a time, and a second one fails fast."""


class WorkerFailed(ImgVaultError):
    """A worker process that validates files ended without answering (killed, out of memory), or failed."""
