"""Digests: SHA-256 over canonical encodings, never of one buffer of a whole projection.

The encoding is `events.codec.canonical` (msgspec JSON, keys sorted, Decimals as strings,
no whitespace), in two forms. A list that only grows at its end (the timeline) is digested as
`sha256(canonical(list))`: its entries are encoded a chunk at a time and fed to the hash,
which sees exactly the bytes `canonical(list)` would give, `[`, the entries separated by
commas, `]` (`list_digest`, `ListHash`, which goes on from where it stopped). A mapping
keyed and sorted by id, whose entries change anywhere (organizations, partnerships,
sites), is digested by run (`KeyedHash`): the SHA-256 of the SHA-256s of runs of about
32 entries, cut where a key says so, so that a change re-encodes one run, not them all.
"""

from __future__ import annotations

import hashlib
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from typing import Any, Final, Protocol

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


def digest_of(value: object) -> str:
    """SHA-256 (hex) of a value's canonical encoding."""
    return hashlib.sha256(CANONICAL.encode(value)).hexdigest()


def list_digest(items: Iterable[object]) -> str:
    """SHA-256 (hex) of the canonical encoding of a list, encoded a chunk at a time."""
    hasher = hashlib.sha256()
    feed_list(hasher, items)
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


RUN: Final = 32
"""Entries per run on average: a key ends a run with odds 1 in `RUN` (see `ends_run`)."""


def ends_run(key: object) -> bool:
    """Whether a key ends a run: the CRC-32 of its canonical encoding is a multiple of `RUN`."""
    return zlib.crc32(CANONICAL.encode(key)) % RUN == 0


class KeyedHash:
    """The digest of a key-sorted mapping of immutable entries, kept up to date by run.

    The entries, in key order, are cut into runs after every entry whose key `ends_run`
    (the last run may end without one; none is empty). A run's hash is the SHA-256 of its
    entries' canonical list encoding, and the digest is the SHA-256 of the runs' 32-byte
    hashes, in order. Where runs end depends on the keys alone, so the digest depends on
    the entries only, and anyone can recompute it from an answer:

        runs, run = [], []
        for key, entry in sorted(items):
            run.append(entry)
            if crc32(canonical(key)) % 32 == 0:
                runs.append(run); run = []
        runs += [run] if run else []
        digest = sha256(b"".join(sha256(canonical(r)).digest() for r in runs)).hexdigest()

    `updated` gives the hash of a later mapping whose unchanged entries are the same
    objects (a live view carries them): only the runs holding an added, removed or
    replaced entry are encoded again. A run is encoded in one call over entries adjacent
    in key order, as a whole list's digest would be. Neither object is changed.
    """

    __slots__ = ("_hashes", "_lasts", "_runs", "entries")

    def __init__(
        self,
        entries: Mapping[Any, object],
        runs: list[list[Any]],
        hashes: list[bytes],
    ) -> None:
        self.entries = entries
        """The mapping this is the hash of (kept: `updated` compares the next one with it)."""
        self._runs = runs
        self._lasts = [run[-1] for run in runs]
        self._hashes = hashes

    @classmethod
    def of(cls, entries: Mapping[Any, object]) -> KeyedHash:
        """The hash of `entries` (iterated in key order), every run encoded."""
        runs: list[list[Any]] = []
        run: list[Any] = []
        for key in entries:
            run.append(key)
            if ends_run(key):
                runs.append(run)
                run = []
        if run:
            runs.append(run)
        return cls(entries, runs, [_run_hash(entries, run) for run in runs])

    def updated(
        self, entries: Mapping[Any, object], changed: Iterable[Any] | None = None
    ) -> KeyedHash:
        """The hash of `entries`, encoding again only the runs whose entries changed.

        `changed`: the keys of every entry of `entries` that is not the very object it is
        in `self.entries` (added or replaced; more does no harm), if the caller knows
        them; else they are found by comparing the two mappings, entry by entry.
        """
        if entries is self.entries:
            return self
        old = self.entries
        if changed is None:
            get = old.get
            changed = [key for key, entry in entries.items() if get(key, _GONE) is not entry]
        else:
            changed = list(changed)
        if len(changed) > max(len(entries) // 4, 256):  # as cheap from zero
            return KeyedHash.of(entries)
        runs = _Runs(self._runs, self._lasts, self._hashes)
        added = [key for key in changed if key not in old]
        if len(old) + len(added) != len(entries):
            for key in old.keys() - entries.keys():
                runs.remove(key)
        for key in added:
            runs.insert(key)
        for key in changed:
            runs.touch(key)
        hashes = [
            _run_hash(entries, run) if digest is None else digest
            for run, digest in zip(runs.runs, runs.hashes, strict=True)
        ]
        return KeyedHash(entries, runs.runs, hashes)

    def hexdigest(self) -> str:
        """SHA-256 (hex) of the runs' hashes."""
        return hashlib.sha256(b"".join(self._hashes)).hexdigest()


_GONE: Final = object()


def _run_hash(entries: Mapping[Any, object], keys: list[Any]) -> bytes:
    return hashlib.sha256(CANONICAL.encode([entries[key] for key in keys])).digest()


class _Runs:
    """Copies of a `KeyedHash`'s runs being edited: a changed run's hash is None."""

    def __init__(self, runs: list[list[Any]], lasts: list[Any], hashes: list[bytes]) -> None:
        self.runs = list(runs)
        self.lasts = list(lasts)
        self.hashes: list[bytes | None] = list(hashes)
        self._mine: set[int] = set()  # ids of the run lists copied here (free to change)

    def _own(self, index: int) -> list[Any]:
        run = self.runs[index]
        if id(run) not in self._mine:
            run = self.runs[index] = list(run)
            self._mine.add(id(run))
        self.hashes[index] = None
        return run

    def _new(self, index: int, run: list[Any]) -> None:
        self.runs.insert(index, run)
        self.lasts.insert(index, run[-1])
        self.hashes.insert(index, None)
        self._mine.add(id(run))

    def _drop(self, index: int) -> None:
        del self.runs[index], self.lasts[index], self.hashes[index]

    def touch(self, key: object) -> None:
        """Mark the run holding `key` as changed."""
        self.hashes[bisect_left(self.lasts, key)] = None

    def insert(self, key: object) -> None:
        """Put a new key in its run, splitting the run after it if the key ends a run."""
        index = bisect_left(self.lasts, key)
        if index == len(self.runs):  # after every key: the last run, unless that one ended
            if not self.runs or ends_run(self.lasts[-1]):
                self._new(index, [key])
                return
            index -= 1
        run = self._own(index)
        at = bisect_left(run, key)
        run.insert(at, key)
        if ends_run(key) and at + 1 < len(run):
            self._new(index + 1, run[at + 1 :])
            del run[at + 1 :]
        self.lasts[index] = run[-1]

    def remove(self, key: object) -> None:
        """Take a key out of its run, joining the run to the next if the key ended it."""
        index = bisect_left(self.lasts, key)
        run = self._own(index)
        run.remove(key)
        if key == self.lasts[index] and index + 1 < len(self.runs):  # the end is gone: join
            run.extend(self.runs[index + 1])
            self._drop(index + 1)
        if run:
            self.lasts[index] = run[-1]
        else:
            self._drop(index)
