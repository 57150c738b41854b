"""Where keys come from: a keyset file (mode 0600) or a passphrase stretched with scrypt.

The key file is JSON::

    {"imgvault_keyset": 1, "store_id": "...",
     "keys": [{"key_id": 3141592653, "key": "<base64 of 32 bytes>", "created": "2026-11-24T14:00:00Z"}]}

It is written atomically (temporary file, fsync, rename) so that a crash never leaves half a keyset,
and refused when other users can read it, as ssh refuses a private key with loose permissions.
"""

import base64
import binascii
import json
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from imgvault.basics.errors import ConfigError

from .crypto import KEY_SIZE

KEYSET_FORMAT = 1
# scrypt at N=2**17, r=8, p=1 (128 MiB, ~0.3 s): the strength recommended for interactive logins.
# The parameters are stored with each salt, so they can be raised later without breaking old stores.
SCRYPT_PARAMS = {"n": 2**17, "r": 8, "p": 1}


def read_key_file(path: Path, store_id: str) -> dict[int, bytes]:
    """The keys in the key file at ``path``, checked to belong to the store ``store_id``."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist (set IMGVAULT_KEY_FILE to where the key is kept)") from None
    _check_regular(path, mode)
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"key file {path} is accessible by other users (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
    try:
        document = json.loads(_read_regular(path))
        if document.get("imgvault_keyset") != KEYSET_FORMAT:
            raise ValueError("unknown keyset format")
        keys = {int(entry["key_id"]): base64.b64decode(entry["key"], validate=True) for entry in document["keys"]}
        if not keys or any(len(key) != KEY_SIZE for key in keys.values()):
            raise ValueError("bad key size")
        file_store_id = document["store_id"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ConfigError(f"key file {path} is not a valid imgvault keyset ({exc})") from None
    if file_store_id != store_id:
        raise ConfigError(f"key file {path} belongs to another store (store id {file_store_id}, not {store_id})")
    return keys


def _check_regular(path: Path, mode: int) -> None:
    # A FIFO would block every command until something writes to it; a device is no key file either.
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else "a special file"
        raise ConfigError(f"key file {path} is {kind}, not a regular file")


def _read_regular(path: Path) -> str:
    """The text of ``path``, opened without blocking and checked to be a regular file once open."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with open(fd, "rb") as handle:
        _check_regular(path, os.fstat(handle.fileno()).st_mode)
        return handle.read(1024 * 1024).decode()


def write_key_file(path: Path, store_id: str, keys: dict[int, bytes], *, exclusive: bool = False) -> None:
    """Write ``keys`` to ``path`` atomically with mode 0600; with ``exclusive``, refuse an existing file."""
    if exclusive and path.exists():
        raise ConfigError(f"key file {path} already exists; refusing to overwrite a key")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {
        "imgvault_keyset": KEYSET_FORMAT,
        "store_id": store_id,
        "keys": [
            {"key_id": key_id, "key": base64.b64encode(key).decode(), "created": now}
            for key_id, key in sorted(keys.items())
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            # link() fails if the target exists, so two concurrent inits cannot both write a key.
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise ConfigError(f"key file {path} already exists; refusing to overwrite a key") from None
            os.unlink(temporary)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def new_kdf_params() -> dict:
    """Fresh scrypt parameters with a random 16-byte salt, as stored with a passphrase key."""
    return {"kdf": "scrypt", **SCRYPT_PARAMS, "salt": base64.b64encode(secrets.token_bytes(16)).decode()}


def derive_key(passphrase: str, params: dict) -> bytes:
    """The 32-byte key that ``passphrase`` gives under the stored ``params``."""
    if params.get("kdf") != "scrypt":
        raise ConfigError(f"unknown key derivation {params.get('kdf')!r}")
    kdf = Scrypt(salt=base64.b64decode(params["salt"]), length=KEY_SIZE, n=params["n"], r=params["r"], p=params["p"])
    return kdf.derive(passphrase.encode())
