"""Event ids: UUIDs; the ones the ledger generates are time-ordered (UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    """A new UUIDv7: 48 bits of Unix milliseconds, then random bits; sorts by creation time."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))


def seed_id(name: str) -> str:
    """A fixed id for a seed event, so that seeding twice writes nothing the second time."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:seed:lotte-merck-announcement#{name}"))
