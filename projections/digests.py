"""Digests: the SHA-256 of a projection's canonical encoding, hashed as it is encoded.

A digest is `sha256(canonical(value))` (`events.codec.canonical`: msgspec JSON, keys
sorted, Decimals as strings, no whitespace). A large list is not encoded as one buffer
(at a million events the four projections come to well over a gigabyte of JSON): its
entries are encoded a chunk at a time and fed to the hash, which sees exactly the bytes
`canonical(list)` would give, `[`, the entries separated by commas, `]`. So the digest
is the same as hashing the whole encoding at once, with the memory of one chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Final, Protocol

from events.codec import CANONICAL

CHUNK: Final = 512
"""Entries encoded per call: large enough to amortize the call, small enough to stay in cache."""


class Hasher(Protocol):
    """What is fed: `hashlib.sha256()` and the like."""

    def update(self, data: bytes | memoryview, /) -> None:
        """Feed bytes."""


def feed_list(hasher: Hasher, items: Iterable[object]) -> None:
    """Feed the canonical encoding of a list of `items` to `hasher`, a chunk at a time."""
    update = hasher.update
    encode = CANONICAL.encode
    update(b"[")
    if isinstance(items, Sequence):
        chunks: Iterable[Sequence[object]] = (
            items[start : start + CHUNK] for start in range(0, len(items), CHUNK)
        )
    else:
        iterator = iter(items)
        chunks = iter(lambda: list(islice(iterator, CHUNK)), [])
    first = True
    for chunk in chunks:
        if not first:
            update(b",")
        first = False
        update(memoryview(encode(chunk))[1:-1])  # `[a,b]` -> `a,b`
    update(b"]")


def list_digest(items: Iterable[object]) -> str:
    """SHA-256 (hex) of the canonical encoding of a list, encoded a chunk at a time."""
    hasher = hashlib.sha256()
    feed_list(hasher, items)
    return hasher.hexdigest()


def object_digest(fields: dict[str, Iterable[object]]) -> str:
    """SHA-256 (hex) of the canonical encoding of an object whose every value is a list.

    The keys are fed in sorted order, as the canonical encoding writes them.
    """
    hasher = hashlib.sha256()
    update = hasher.update
    update(b"{")
    for number, key in enumerate(sorted(fields)):
        update(b"," if number else b"")
        update(CANONICAL.encode(key))
        update(b":")
        feed_list(hasher, fields[key])
    update(b"}")
    return hasher.hexdigest()


class ListHash:
    """`list_digest` of a list that grows at the end, fed only the entries added.

    Holds the hash of `[` and the entries so far; `hexdigest` closes a copy with `]`, so
    the digest of a list and of the same list grown by `extend` are each what
    `list_digest` gives, without hashing the earlier entries again.
    """

    __slots__ = ("_hasher", "size")

    def __init__(self) -> None:
        self._hasher = hashlib.sha256(b"[")
        self.size = 0

    def extended(self, items: Iterable[object]) -> ListHash:
        """A new `ListHash` of this list plus `items` (this one is left as it is)."""
        grown = ListHash()
        grown._hasher = self._hasher.copy()
        grown.size = self.size
        encode = CANONICAL.encode
        update = grown._hasher.update
        iterator = iter(items)
        while chunk := list(islice(iterator, CHUNK)):
            if grown.size:
                update(b",")
            update(memoryview(encode(chunk))[1:-1])  # `[a,b]` -> `a,b`
            grown.size += len(chunk)
        return grown

    def hexdigest(self) -> str:
        """The digest of the list so far."""
        closed = self._hasher.copy()
        closed.update(b"]")
        return closed.hexdigest()
