"""API tokens of the web service (``imgvault serve``): made here, shown once, kept only as a SHA-256 hash.

A token is 256 random bits (``secrets.token_urlsafe(32)``) behind the prefix ``ivt_``. The store keeps its
SHA-256, which is enough for a secret of that strength (no password hashing needed: there is nothing to
guess), so a reader of the database cannot sign in with what it holds. A token is looked up by its hash
and the hashes compared again with :func:`hmac.compare_digest`: the time a check takes depends on the
hash only, never on how much of a guessed token was right.

Each row is sealed (a MAC under the store's key, :mod:`.bindings`): its name, hash, rights, creation and
revocation. A row that does not verify (inserted, or edited, by whoever can write the database but does not
hold the key) grants nothing: :func:`check_token` refuses it and logs why.

The web service checks a token on every request. On SQLite, the records of valid tokens are kept in a
:class:`TokenCache` that is emptied whenever the database has changed, which costs one ``PRAGMA
data_version`` per check (see :mod:`.reads`): a token revoked or deleted by any process is refused from its
next request on. On PostgreSQL every check asks the database.
"""

import functools
import hashlib
import hmac
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, insert, select, update

from . import schema
from .bindings import token_context
from .engine import one_read, write_transaction
from .errors import IntegrityError, InvalidParameter, NotFound
from .reads import forget_in_child
from .records import iso_utc, utc_now

PREFIX = "ivt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_TOKEN = 200  # longer than any token we make: not worth hashing


@dataclass(frozen=True)
class TokenInfo:
    """A token as the store knows it: its name and rights, never the token itself."""

    name: str
    read_only: bool
    created: datetime
    revoked: datetime | None = None
    intact: bool = True  # False: its row failed its integrity check, and it grants nothing

    def to_dict(self) -> dict:
        return {"name": self.name, "read_only": self.read_only, "created": iso_utc(self.created),
                "revoked": iso_utc(self.revoked) if self.revoked else None, "intact": self.intact}  # fmt: skip


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row, intact: bool = True) -> TokenInfo:
    return TokenInfo(name=row.name, read_only=bool(row.read_only), created=row.created_at, revoked=row.revoked_at,
                     intact=intact)  # fmt: skip


def _intact(store, row) -> bool:
    """Whether the row's seal opens with its columns as they are: written by someone holding the key."""
    if row.seal is None:
        return False
    try:
        store.sealer.open("token.seal", row.name, bytes(row.seal), context=token_context(row._mapping))
    except IntegrityError:
        return False
    return True


def _seal_row(store, connection, name: str) -> None:
    """Seal the row of token ``name`` as the database holds it now (its times as the database gives them back)."""
    table = schema.api_tokens
    row = connection.execute(select(table).where(table.c.name == name)).first()
    sealer = store.sealer
    blob = sealer.seal("token.seal", name, b"", context=token_context(row._mapping))
    connection.execute(update(table).where(table.c.name == name).values(key_id=sealer.keyset.primary_id, seal=blob))


def check_token_name(name: str) -> str:
    """``name`` if it can name a token (letters, digits, ``.``, ``_``, ``-``; at most 64), else InvalidParameter."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameter(
            f"{name!r} cannot name a token: use 1 to 64 letters, digits, '.', '_' or '-' (first a letter or digit)"
        )
    return name


def create_token(store, name: str, *, read_only: bool = False) -> tuple[TokenInfo, str]:
    """A new token named ``name``; returns its record and the token, which is not kept anywhere.

    A name is used by one token at a time: a revoked token's name may be given to a new one.
    """
    check_token_name(name)
    table = schema.api_tokens
    token = PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(name=name, read_only=read_only, created=utc_now())
    with write_transaction(store.engine) as connection:
        row = connection.execute(select(table.c.revoked_at).where(table.c.name == name)).first()
        if row is not None and row.revoked_at is None:
            raise InvalidParameter(f'a token named "{name}" exists already (revoke it first)')
        connection.execute(delete(table).where(table.c.name == name))
        connection.execute(insert(table).values(name=name, token_sha256=_digest(token), read_only=read_only,
                                                created_at=info.created))  # fmt: skip
        _seal_row(store, connection, name)
    return info, token


def list_tokens(store) -> list[TokenInfo]:
    """Every token, revoked ones too, by name."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(schema.api_tokens).order_by(schema.api_tokens.c.name)).all()
    return [_info(row, _intact(store, row)) for row in rows]


def revoke_token(store, name: str) -> TokenInfo:
    """Revoke token ``name`` at once: the next request that shows it is refused."""
    table = schema.api_tokens
    with write_transaction(store.engine) as connection:
        revoked = connection.execute(
            update(table).where(table.c.name == name, table.c.revoked_at.is_(None)).values(revoked_at=utc_now())
        ).rowcount
        if revoked:
            # Sealed anew as it is now: whatever the row held before, revoked it grants nothing.
            _seal_row(store, connection, name)
        row = connection.execute(select(table).where(table.c.name == name)).first()
    if not revoked:
        raise NotFound(f'no token named "{name}"' if row is None else f'token "{name}" is revoked already')
    return _info(row)


@functools.cache
def _token_by_digest() -> Select:
    # Built once: every API request checks its token, and making the SELECT costs more than running it.
    table = schema.api_tokens
    return select(table).where(table.c.token_sha256 == bindparam("digest"))


def check_token(store, token: str) -> TokenInfo | None:
    """The token's record if ``token`` is a token of this store and not revoked, else None."""
    if not isinstance(token, str) or not token.startswith(PREFIX) or len(token) > _MAX_TOKEN or not token.isascii():
        return None
    digest = _digest(token)
    if store.token_cache is None:
        return _read_token(store, digest)
    return store.token_cache.get(digest, lambda: _read_token(store, digest))


def _read_token(store, digest: str) -> TokenInfo | None:
    with one_read(store.engine) as connection:
        row = connection.execute(_token_by_digest(), {"digest": digest}).first()
    if row is None or not hmac.compare_digest(row.token_sha256, digest) or row.revoked_at is not None:
        return None
    if not _intact(store, row):
        logging.getLogger("imgvault").warning(
            'token "%s" refused: its row failed its integrity check (written without the store\'s key)', row.name
        )
        return None
    return _info(row)


class TokenCache:
    """The records of valid tokens by hash, kept while the database is unchanged (see :mod:`.reads`).

    Any commit by another connection (a token revoked, created or deleted; an image put...) empties it, so
    it can never answer with a record the database no longer holds. Unknown and revoked tokens are not kept.
    """

    MAX_TOKENS = 1024  # more valid tokens than a store has; past it the cache starts over

    def __init__(self, reads):
        self._reads = reads
        self._lock = threading.Lock()
        self._version: tuple[int, int] | None = None
        self._tokens: dict[str, TokenInfo] = {}
        forget_in_child(self)  # a thread of the parent may hold the lock at the fork, and never let it go there

    def _forget_in_child(self) -> None:
        self._lock = threading.Lock()

    def get(self, digest: str, read) -> TokenInfo | None:
        """The record of the token with SHA-256 ``digest``: kept, or ``read()`` (kept if not None)."""
        with self._lock:
            # Asked before reading the token, under the lock: a commit after this makes the next call differ.
            version = self._reads.data_version()
            if version != self._version:
                self._version, self._tokens = version, {}
            info = self._tokens.get(digest)
        if info is not None:
            return info
        info = read()
        if info is not None:
            with self._lock:
                if self._version == version:  # else the database changed meanwhile: the record may be stale
                    if len(self._tokens) >= self.MAX_TOKENS:
                        self._tokens = {}
                    self._tokens[digest] = info
        return info
