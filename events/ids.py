"""Event ids: UUIDs; the ones the ledger generates are time-ordered (UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import time
import uuid

_RAND_BITS = 74
"""The random bits of a UUIDv7 (`rand_a` and `rand_b`), used here as a counter (RFC 9562 6.2,
method 2): within one millisecond each new id adds a random step to the last one."""
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _fresh_rand() -> int:
    """73 random bits: the top bit of the 74 left clear, so the steps have room to add up."""
    return int.from_bytes(os.urandom(10), "big") >> (80 - _RAND_BITS + 1)


def uuid7() -> str:
    """A new UUIDv7: 48 bits of Unix milliseconds, then random bits; sorts by creation time.

    Strictly increasing within the process, also within one millisecond (a batch's ids,
    say) and if the clock steps back: the random part is then the last id's plus a random
    step of up to 2**32, so the ids stay hard to guess and still sort in creation order.
    """
    global _last_ms, _last_rand  # noqa: PLW0603 - the counter of RFC 9562's method 2
    millis = time.time_ns() // 1_000_000
    with _lock:
        if millis > _last_ms:
            _last_ms, _last_rand = millis, _fresh_rand()
        else:
            _last_rand += 1 + int.from_bytes(os.urandom(4), "big")
            if _last_rand >> _RAND_BITS:  # used up (about 2**41 ids in one millisecond)
                _last_ms, _last_rand = _last_ms + 1, _fresh_rand()
        ms, rand = _last_ms, _last_rand
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))


def seed_id(name: str) -> str:
    """A fixed id for a seed event, so that seeding twice writes nothing the second time."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:seed:lotte-merck-announcement#{name}"))
