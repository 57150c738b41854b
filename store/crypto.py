"""Sealed blobs: AES-256-GCM with the blob's place in the store bound into the associated data.

A sealed blob is self-describing::

    offset  size  field
         0     4  magic b"IVLT"
         4     1  format version
         5     4  key id (big-endian unsigned)
         9    12  nonce, drawn at random inside :meth:`Sealer.seal`
        21   n+16 AES-256-GCM ciphertext and tag

The associated data is the 21-byte header followed by the store id, the record kind and the record id,
each length-prefixed (2 bytes), then the record's context with a 4-byte length prefix. The context is
what the blob is bound to besides its place: the plaintext columns of its record that must not change
under it (an encoded image's source image, model, method and parameters; an image's collection and
size...), given as bytes or as a mapping (encoded as canonical JSON). A blob copied to another row,
another kind of record or another store, or whose record's bound columns were edited, therefore fails
its tag check, as a blob under the wrong key does. This is an on-disk format: changing it means a new
version constant and a reader for the old one.
"""

import functools
import json
import os
import secrets
import struct
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from imgvault.basics.errors import IntegrityError

MAGIC = b"IVLT"
# Format versions:
#   1 -- AES-256-GCM, 96-bit random nonce, AAD = header + store id + kind + record id (first version).
#        Still opened, but only where no context is asked for (migration 0003 re-seals them as 2).
#   2 -- as 1, and the AAD ends with the record's context (4-byte length, then the bytes), which binds
#        the blob to the record's plaintext columns. An empty context is allowed.
VERSION = 2
VERSION_1 = 1
HEADER = struct.Struct(">4sBI12s")
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
# Canonical JSON for contexts; one encoder, made once (json.dumps with these options makes one per call).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def new_key_id(taken: Mapping[int, object] = {}) -> int:
    """A random non-zero 32-bit key id that is not in ``taken``."""
    while True:
        key_id = secrets.randbits(32)
        if key_id and key_id not in taken:
            return key_id


def blob_key_id(blob: bytes) -> int:
    """The key id recorded in a sealed blob's header (unauthenticated until the blob is opened)."""
    if len(blob) < HEADER.size + TAG_SIZE or blob[:4] != MAGIC:
        raise IntegrityError("sealed data is not an imgvault blob")
    return HEADER.unpack_from(blob)[2]


_SHORT_LENGTH, _LENGTH = struct.Struct(">H"), struct.Struct(">I")


def _field(text: str) -> bytes:
    encoded = text.encode()
    return _SHORT_LENGTH.pack(len(encoded)) + encoded


# Record kinds are a handful of constants; their fields are made once.
_kind_field = functools.lru_cache(maxsize=64)(_field)


class Keyset:
    """Keys by id, one of them primary: new blobs are sealed with the primary, any key opens its own.

    Parameters
    ----------
    keys : mapping of int to bytes
        32-byte AES keys by key id.
    primary_id : int
        The id of the key new blobs are sealed with; must be in ``keys``.
    """

    def __init__(self, keys: Mapping[int, bytes], primary_id: int):
        if primary_id not in keys:
            raise ValueError(f"primary key id {primary_id} is not in the keyset")
        for key_id, key in keys.items():
            if len(key) != KEY_SIZE:
                raise ValueError(f"key {key_id} is {len(key)} bytes, AES-256 needs {KEY_SIZE}")
        self.keys = dict(keys)
        self.primary_id = primary_id
        self._aeads = {key_id: AESGCM(key) for key_id, key in self.keys.items()}

    @classmethod
    def generate(cls) -> "Keyset":
        """A keyset with one fresh random primary key."""
        key_id = new_key_id()
        return cls({key_id: AESGCM.generate_key(bit_length=256)}, key_id)

    def aead(self, key_id: int) -> AESGCM | None:
        return self._aeads.get(key_id)


class Sealer:
    """Seals and opens the payloads of one store.

    Parameters
    ----------
    keyset : Keyset
    store_id : str
        The store's own random id, bound into every blob so that blobs cannot move between stores.
    reload : callable, optional
        Returns the store's keyset read again. :meth:`open` calls it once for a blob sealed with a key id
        this keyset lacks (another process rotated the store's key since it was loaded), and keeps what
        it returns; without it such a blob is refused like any other.

    Examples
    --------
    >>> sealer = Sealer(Keyset.generate(), store_id="s1")
    >>> blob = sealer.seal("image", "01ABC", b"pixels")
    >>> sealer.open("image", "01ABC", blob)
    b'pixels'
    """

    def __init__(self, keyset: Keyset, store_id: str, *, reload: Callable[[], Keyset] | None = None):
        self.keyset = keyset
        self.store_id = store_id
        self.reload = reload
        self._store_field = _field(store_id)

    def _associated_data(self, header: bytes, kind: str, record_id: str, context: bytes | None) -> bytes:
        if context is None:
            return b"".join((header, self._store_field, _kind_field(kind), _field(record_id)))
        return b"".join((header, self._store_field, _kind_field(kind), _field(record_id), _LENGTH.pack(len(context)),
                         context))  # fmt: skip

    def seal(self, kind: str, record_id: str, data: bytes, *, context: bytes | Mapping | None = None) -> bytes:
        """Encrypt and authenticate ``data`` as the payload of record ``record_id`` of kind ``kind``.

        ``context`` (bytes, or a mapping of JSON values) binds the blob to more of its record: :meth:`open`
        must be given the same context.
        """
        keyset = self.keyset  # read once: open() may replace it meanwhile, on another thread
        key_id = keyset.primary_id
        header = HEADER.pack(MAGIC, VERSION, key_id, os.urandom(NONCE_SIZE))
        aad = self._associated_data(header, kind, record_id, context_bytes(context))
        return header + keyset.aead(key_id).encrypt(header[9:], data, aad)

    def open(self, kind: str, record_id: str, blob: bytes, *, context: bytes | Mapping | None = None) -> bytes:
        """Return the plaintext of ``blob``, or raise :class:`IntegrityError` whatever is wrong with it."""
        if not isinstance(blob, bytes) or len(blob) < HEADER.size + TAG_SIZE:
            raise _integrity_error(kind, record_id)
        magic, version, key_id, nonce = HEADER.unpack_from(blob)
        aead = self.keyset.aead(key_id)
        if aead is None and magic == MAGIC and self.reload is not None:
            self.keyset = self.reload()
            aead = self.keyset.aead(key_id)
        try:
            context = context_bytes(context)
        except TypeError:
            if not isinstance(context, Mapping):
                raise  # not a context at all: the caller's mistake
            # A value JSON cannot hold (bytes, in a row altered in SQLite): seal refuses it, so no blob has it.
            raise _integrity_error(kind, record_id) from None
        if version == VERSION_1 and not context:
            context = None  # a version 1 blob binds no context; it cannot stand in where one is asked for
        elif version != VERSION:
            raise _integrity_error(kind, record_id)
        if magic != MAGIC or aead is None:
            raise _integrity_error(kind, record_id)
        header = blob[: HEADER.size]
        try:
            return aead.decrypt(nonce, blob[HEADER.size :], self._associated_data(header, kind, record_id, context))
        except InvalidTag:
            raise _integrity_error(kind, record_id) from None


def _integrity_error(kind: str, record_id: str) -> IntegrityError:
    # The same error whatever is wrong, made only when something is (a listing opens many blobs).
    return IntegrityError(
        f"{kind} {record_id} failed its integrity check: the key is wrong, or the stored data was altered or moved"
    )


def context_bytes(context: bytes | Mapping | None) -> bytes:
    """A context as the bytes bound into the associated data: mappings as canonical JSON."""
    if type(context) is bytes:
        return context
    if context is None:
        return b""
    if isinstance(context, bytes):
        return bytes(context)
    if isinstance(context, Mapping):
        return _CANONICAL_JSON.encode(dict(context)).encode()
    raise TypeError(f"a context is bytes or a mapping, not {type(context).__name__}")
