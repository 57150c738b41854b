"""API tokens of the web service (``imgvault serve``): made here, shown once, kept only as a SHA-256 hash.

A token is 256 random bits (``secrets.token_urlsafe(32)``) behind the prefix ``ivt_``. The store keeps its
SHA-256, which is enough for a secret of that strength (no password hashing needed: there is nothing to
guess), so a reader of the database cannot sign in with what it holds. A token is looked up by its hash
and the hashes compared again with :func:`hmac.compare_digest`: the time a check takes depends on the
hash only, never on how much of a guessed token was right.

Each row is sealed (a MAC under the store's key, :mod:`.bindings`): its name, hash, rights, creation and
revocation. A row that does not verify (inserted, or edited, by whoever can write the database but does not
hold the key) grants nothing: :func:`check_token` refuses it and logs why.

The web service checks a token on every request, and keeps the records of valid tokens while the database
is unchanged (:mod:`imgvault.web.tokens`).
"""

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from imgvault.basics.errors import IntegrityError, InvalidParameter, NotFound

from . import queries
from .bindings import token_context
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


def _intact(store, row: queries.TokenRow) -> bool:
    """Whether the row's seal opens with its columns as they are: written by someone holding the key."""
    if row.seal is None:
        return False
    try:
        store.sealer.open("token.seal", row.name, bytes(row.seal), context=token_context(row._asdict()))
    except IntegrityError:
        return False
    return True


def _seal_row(store, connection, name: str) -> None:
    """Seal the row of token ``name`` as the database holds it now (its times as the database gives them back)."""
    from sqlalchemy import update

    from . import schema

    table = schema.api_tokens
    row = store.database.first(queries.TOKEN_BY_NAME, connection, name=name)
    sealer = store.sealer
    blob = sealer.seal("token.seal", name, b"", context=token_context(row._asdict()))
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
    from sqlalchemy import delete, insert

    from . import schema

    check_token_name(name)
    table = schema.api_tokens
    token = PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(name=name, read_only=read_only, created=utc_now())
    with store.database.writing() as connection:
        row = store.database.first(queries.TOKEN_BY_NAME, connection, name=name)
        if row is not None and row.revoked_at is None:
            raise InvalidParameter(f'a token named "{name}" exists already (revoke it first)')
        connection.execute(delete(table).where(table.c.name == name))
        connection.execute(insert(table).values(name=name, token_sha256=_digest(token), read_only=read_only,
                                                created_at=info.created))  # fmt: skip
        _seal_row(store, connection, name)
    return info, token


def list_tokens(store) -> list[TokenInfo]:
    """Every token, revoked ones too, by name."""
    return [_info(row, _intact(store, row)) for row in store.database.rows(queries.TOKENS)]


def revoke_token(store, name: str) -> TokenInfo:
    """Revoke token ``name`` at once: the next request that shows it is refused."""
    from sqlalchemy import update

    from . import schema

    table = schema.api_tokens
    with store.database.writing() as connection:
        revoked = connection.execute(
            update(table).where(table.c.name == name, table.c.revoked_at.is_(None)).values(revoked_at=utc_now())
        ).rowcount
        if revoked:
            # Sealed anew as it is now: whatever the row held before, revoked it grants nothing.
            _seal_row(store, connection, name)
        row = store.database.first(queries.TOKEN_BY_NAME, connection, name=name)
    if not revoked:
        raise NotFound(f'no token named "{name}"' if row is None else f'token "{name}" is revoked already')
    return _info(row)


def check_token(store, token: str, read=None) -> TokenInfo | None:
    """The token's record if ``token`` is a token of this store and not revoked, else None.

    ``read(digest, read_token)``, if given, is asked instead of reading the record: a cache of records
    (:class:`imgvault.web.tokens.TokenCache`) calls ``read_token()`` when it does not hold it.
    """
    if not isinstance(token, str) or not token.startswith(PREFIX) or len(token) > _MAX_TOKEN or not token.isascii():
        return None
    digest = _digest(token)
    if read is None:
        return _read_token(store, digest)
    return read(digest, lambda: _read_token(store, digest))


def _read_token(store, digest: str) -> TokenInfo | None:
    row = store.database.first(queries.TOKEN_BY_DIGEST, digest=digest)
    if row is None or not hmac.compare_digest(row.token_sha256, digest) or row.revoked_at is not None:
        return None
    if not _intact(store, row):
        logging.getLogger("imgvault").warning(
            'token "%s" refused: its row failed its integrity check (written without the store\'s key)', row.name
        )
        return None
    return _info(row)
