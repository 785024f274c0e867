"""The conformance suite every `EventLog` backend passes (DESIGN §6), through the protocol only.

A backend's test module subclasses `EventLogConformance` once and gives `make_log` (a new,
empty log) and `opener` (a picklable callable opening another handle on the same store, in
another thread or another process).

The suite is split by theme, one module each, composed here into that one class:
`base` (the two hooks, the `log` fixture, the empty log), `atomicity` (atomic batches,
idempotency), `concurrency` (expected versions raced by threads and processes, gap-free
positions, a tailing reader), `reads`, `records` (corrections and retractions). `builders`
holds the events and payloads the cases are made of, which other test modules import too.
"""

from __future__ import annotations

from conformance.atomicity import AtomicBatches, Idempotency
from conformance.base import ConformanceBase
from conformance.builders import (
    SOURCE,
    Opener,
    all_events,
    correction,
    event,
    retraction,
    run_threads,
    site,
    site_builtins,
)
from conformance.concurrency import ConcurrentAppends, ExpectedVersions
from conformance.reads import Reads
from conformance.records import Records

__all__ = [
    "SOURCE",
    "EventLogConformance",
    "Opener",
    "all_events",
    "correction",
    "event",
    "retraction",
    "run_threads",
    "site",
    "site_builtins",
]


class EventLogConformance(  # the themes last to first: pytest runs inherited tests base-first
    Records,
    Reads,
    ConcurrentAppends,
    Idempotency,
    ExpectedVersions,
    AtomicBatches,
    ConformanceBase,
):
    """Every guarantee of the `EventLog` protocol; subclass once per backend."""
