"""Checking API tokens on every request, with the records of valid tokens kept while the database is unchanged.

On a SQLite file, a check costs one ``PRAGMA data_version`` when the token's record is kept: any commit by
another connection (any process) empties the cache, so a token revoked or deleted from the command line is
refused from its next request on. On other databases every check asks the database.
"""

import threading

from imgvault.store.database import forget_in_child
from imgvault.store.tokens import TokenInfo, check_token


class Tokens:
    """The token checks of one store, cached where the database can tell that it changed."""

    def __init__(self, store):
        self.store = store
        self._cache = TokenCache(store.database) if store.database.data_version() is not None else None
        self._read = self._cache.get if self._cache is not None else None  # what check_token asks for a record

    def check(self, token: str) -> TokenInfo | None:
        """The record of ``token`` if it is a valid token of the store, else None (see :func:`check_token`)."""
        return check_token(self.store, token, self._read)


class TokenCache:
    """The records of valid tokens by hash, kept while the database is unchanged (its ``data_version``).

    Any commit by another connection (a token revoked, created or deleted; an image put...) empties it, so
    it can never answer with a record the database no longer holds. Unknown and revoked tokens are not kept.
    """

    MAX_TOKENS = 1024  # more valid tokens than a store has; past it the cache starts over

    def __init__(self, database):
        self._database = database
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
            version = self._database.data_version()
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
