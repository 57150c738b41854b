"""Record ids: ULIDs (https://github.com/ulid/spec), monotonic within a process.

48 bits of milliseconds then 80 random bits, in Crockford's base32: 26 characters that sort by creation
time (listings come out in insertion order by sorting on the primary key) and cannot be guessed. Ids made
in the same millisecond by one process increment the random part, as the spec's monotonic mode does, so
a batch keeps its order.
"""

import base64
import secrets
import threading
import time

# RFC 4648 base32 digits -> Crockford's, so that the C-coded b32encode does the bit slicing.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")
_lock = threading.Lock()
_last = 0


def new_id() -> str:
    """Return a new ULID string, greater than every id this process made before."""
    global _last
    with _lock:
        value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
        if value >> 80 <= _last >> 80:
            # Same (or an earlier, after a clock step) millisecond: continue from the last id.
            value = _last + 1 + secrets.randbits(16)
        _last = value
    # 20 bytes are 32 base32 digits; the last 26 hold the 128-bit value (the first digit 3 bits of it).
    return base64.b32encode(value.to_bytes(20, "big")).translate(_CROCKFORD)[6:].decode()
