"""Record ids: ULIDs (https://github.com/ulid/spec).

48 bits of milliseconds then 80 random bits, in Crockford's base32: 26 characters that sort by creation
time (so listings come out in insertion order without a separate index) and cannot be guessed.
"""

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    """Return a new ULID string."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def is_valid_id(text: str) -> bool:
    """True if ``text`` has the shape of a ULID (26 Crockford base32 characters)."""
    return len(text) == 26 and all(c in _ALPHABET for c in text.upper()) and text[0] in "01234567"
