"""Record ids: ULIDs (https://github.com/ulid/spec), monotonic within a process.

48 bits of milliseconds then 80 random bits, in Crockford's base32: 26 characters that sort by creation
time (listings come out in insertion order by sorting on the primary key) and cannot be guessed. Ids made
in the same millisecond by one process increment the random part, as the spec's monotonic mode does, so
a batch keeps its order.
"""

import os
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two digits (10 bits) at a time: the 128-bit value is 26 digits, 13 lookups (a put makes one id per image).
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = range(120, -1, -10)
_lock = threading.Lock()
_last = 0


def new_id() -> str:
    """Return a new ULID string, greater than every id this process made before."""
    global _last
    with _lock:
        milliseconds = time.time_ns() // 1_000_000
        if milliseconds <= _last >> 80:
            # Same (or an earlier, after a clock step) millisecond: continue from the last id.
            value = _last + 1 + int.from_bytes(os.urandom(2))
        else:
            value = milliseconds << 80 | int.from_bytes(os.urandom(10))
        _last = value
    # 26 digits hold 130 bits: the first digit carries the value's top 3 bits.
    return "".join([_PAIRS[value >> shift & 1023] for shift in _SHIFTS])
