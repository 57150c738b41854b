"""The rotation lock: held while a rotation runs, and free the moment it ends (on both backends)."""

import pytest
from sqlalchemy import text

from imgvault.basics.errors import RotationInProgress
from imgvault.store.locks import _advisory_key, rotation_lock


def advisory_locks_held(store) -> int:
    """How many sessions hold the store's rotation advisory lock now (PostgreSQL)."""
    key = _advisory_key(store.store_id)
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    with store.engine.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = :high "
                 "AND objid::bigint = :low AND granted"), {"high": high, "low": low}).scalar()  # fmt: skip


def test_the_rotation_lock_is_free_as_soon_as_it_is_released(store, backend):
    for _ in range(20):
        with rotation_lock(store):
            with pytest.raises(RotationInProgress), rotation_lock(store):
                pass
            if backend == "postgresql":
                assert advisory_locks_held(store) == 1
        if backend == "postgresql":
            # Not left to the server noticing that the session's connection went away: released at once.
            assert advisory_locks_held(store) == 0
        with rotation_lock(store):
            pass
