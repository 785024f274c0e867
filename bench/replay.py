"""Replay speed of the projections, against baselines measured in the same run.

    python bench/replay.py            # the full run: 1,000,000 events
    python bench/replay.py --quick    # the same measurements and keys over 50,000 events

The log is generated once per size and cached under `bench/.cache/` (gitignored): a
realistic mix written through `SQLiteEventLog.append` in batches of 1,000 with
`synchronous="NORMAL"` (untimed). Many organizations (a third with a parent), sites that
change hands, memoranda, partnerships, plans, initiatives, investments in nine
currencies, dates over 2000-2025 at day, month or year precision, news arriving in
valid-time order except backfill bursts of older announcements (about 1%), and a few
corrections and retractions. The last `2 * TAIL` events are ordinary in-order news.

Each measurement runs in its own child process (so setup memory and one arm's garbage
do not count against another), in several interleaved rounds; a time is the median:

- `replay`: `projections.build_replayed(log.iter_replay())` (the lean read the service
  rebuilds with), `.derive()` (every answer, the timeline's included) and `.digests()`,
  all timed: a cold start from zero. Peak RSS of that child is reported.
- `decode`: plain `sqlite3` `SELECT type, data ... ORDER BY position` and a typed
  `msgspec.json.Decoder(<payload class>)` per row, nothing kept (the floor of a replay).
- `read`: the same SELECT of every column, no decoding; `iter`: `log.iter_events()`
  discarding the events (read + the store's whole-envelope decode, no fold); `lean`:
  `log.iter_replay()` discarding its rows (the replay's read: its columns, decoded).
- `eventsourcing`: the library's `SQLiteApplicationRecorder.select_notifications` in pages
  of 5,000 and `Mapper.to_domain_event` (its JSON transcoder with the UUID, Decimal and
  datetime transcodings an `Application` registers) over the same events, stored as
  domain events holding the same envelope (written with its recorder first, untimed).
- `snapshot`: read and `load_snapshot` a snapshot taken at head - TAIL (made untimed by a
  from-zero rebuild), then fold the tail with `Live.apply`; on the first event it
  refuses, `Live.merge` of the rest of the tail (a rebuild from the whole log if the rest
  is `MERGE_AT_MOST` events or more), exactly as `service.projector.Projector` does.
  Ready means `Live.projections()`: the answers derive on first use (the `digests`
  seconds after it are reported apart, and in `snapshot_ready_vs_replay`).
- `snapshot_fallback`: the same with a snapshot whose TAIL-event tail holds a backfilled
  (out-of-order) event, so `Live.apply` refuses it and the rest of the tail is merged.

Progress goes to stderr; the last line of stdout is one JSON object of ratios and rates.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from events.envelope import Metadata, NewEvent, Source  # noqa: E402 - after the path set-up
from events.payloads import (  # noqa: E402
    PAYLOAD_TYPES,
    RECORD_TYPES,
    EventCorrected,
    EventRetracted,
    FacilityPlanAnnounced,
    InitiativeLaunched,
    InvestmentCommitted,
    Location,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
    PartnershipAgreed,
    Payload,
    SiteAcquired,
)
from events.rows import SELECT_COLUMNS  # noqa: E402
from events.sqlite import SQLiteEventLog  # noqa: E402

GENERATOR_VERSION = 2  # bump when the generated log changes: it names the cached files
TAIL = 1_000
BATCH = 1_000
ANALYSTS = 5
PAGE = 5_000
SEED = 20240531
CACHE = ROOT / "bench" / ".cache"
CHILD_TIMEOUT = 3_600.0


@dataclass(frozen=True)
class Config:
    """How much: every loop is bounded by the event count and the number of rounds."""

    events: int
    rounds: int


FULL = Config(events=1_000_000, rounds=3)
QUICK = Config(events=50_000, rounds=3)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


def rss_now_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# -- the generated log (untimed) ----------------------------------------------------------

CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "KRW", "JPY", "CHF", "GBP", "CNY", "SGD", "INR")
COUNTRIES = ("US", "US", "KR", "DE", "CH", "JP", "CN", "GB", "IE", "SG", "IN", "FR", "BE", "NL")
REGIONS = ("New York", "Massachusetts", "Gyeonggi", "Hesse", "Basel", "Kanagawa", "Jiangsu")
KINDS = ("CDMO", "CMO", "pharma", "biotech", "life science tools", "investor", "conglomerate")
MODALITIES = (
    "vaccines",
    "cell and gene therapies",
    "monoclonal antibodies",
    "antibody-drug conjugates",
    "mRNA",
    "peptides",
    "oligonucleotides",
    "viral vectors",
)
CAPABILITIES = (
    "process development",
    "clinical research",
    "commercial biological manufacturing",
    "fill-finish",
    "analytical testing",
    "drug substance",
    "drug product",
)
SCOPES = (
    "raw-material supply",
    "stable raw-material supply chain",
    "expansion",
    "staff training",
    "technology transfer",
    "co-development",
    "commercial manufacturing",
    "capacity reservation",
    "joint research",
)
PUBLISHERS = (
    "Fierce Pharma",
    "Endpoints News",
    "BioSpace",
    "Korea Biomedical Review",
    "Reuters",
    "Press release",
    "Pharmaceutical Technology",
    "BioPharma Dive",
)
PURPOSES = (
    "commercial production for customers in the region",
    "clinical supply",
    "a second drug-substance line",
    "late-stage and commercial fill-finish",
)
FIRST_DAY = date(2000, 1, 1)
DAYS = (date(2025, 12, 31) - FIRST_DAY).days
# announcement kinds and their weights (organizations and record events are counted apart)
MIX = (
    ("site_acquired", 8),
    ("memorandum_signed", 15),
    ("facility_plan_announced", 8),
    ("initiative_launched", 6),
    ("investment_committed", 32),
    ("partnership_agreed", 22),
)
LATE = 0.01  # share of announcements recorded late, in backfill bursts
BURST = 200  # a backfill burst holds about this many older announcements


class _Item(msgspec.Struct):
    """One event of the generated log before it is appended: its arrival key and content."""

    arrival: float
    event_id: str
    stream: str
    type: str
    occurred_on: str
    sequence: int | None
    data: Payload
    source: Source


class Generator:
    """Builds the events of a generated log, deterministically from `SEED`."""

    def __init__(self, count: int) -> None:
        self.rng = random.Random(SEED)
        self.count = count
        self.orgs = max(40, count // 40)
        self.sites = max(20, count // 25)
        self.corrections = max(3, count // 3_000)
        self.retractions = max(2, count // 10_000)
        self.agreements = 0
        self.initiatives = 0

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def org(self) -> str:
        return f"org-{int(self.orgs * self.rng.random() ** 2)}"  # a few big players

    def site(self) -> str:
        return f"site-{int(self.sites * self.rng.random() ** 1.5)}"

    def location(self, site: str) -> Location:
        number = int(site.rsplit("-", 1)[1])
        return Location(
            country=COUNTRIES[number % len(COUNTRIES)],
            city=f"City {number % 997}",
            region=REGIONS[number % len(REGIONS)] if number % 3 else None,
        )

    def money(self, low: int, high: int) -> Money:
        currency = self.rng.choice(CURRENCIES)
        scale = 1_000 if currency in {"KRW", "JPY"} else 1
        amount = self.rng.randrange(low, high) * 100_000 * scale
        return Money(amount=Decimal(amount), currency=currency)

    def when(self) -> tuple[str, date]:
        """A valid time (day, month or year precision) and the day it was published."""
        day = FIRST_DAY + timedelta(days=self.rng.randrange(DAYS))
        roll = self.rng.random()
        if roll < 0.75:
            return day.isoformat(), day
        if roll < 0.93:
            return day.isoformat()[:7], day
        return day.isoformat()[:4], day

    def source(self, published: date, quote: str) -> Source:
        publisher = self.rng.choice(PUBLISHERS)
        slug = publisher.lower().replace(" ", "-")
        article = self.rng.randrange(10_000_000)
        return Source(
            url=f"https://news.example.com/{slug}/{published.year}/{article}",
            publisher=publisher,
            published_on=published.isoformat(),
            title=f"{quote[:60].rstrip()} …",
            quote=quote,
        )

    def organization(self, number: int) -> tuple[str, Payload, str]:
        org_id = f"org-{number}"
        parent = (
            f"org-{self.rng.randrange(number)}" if number and self.rng.random() < 0.35 else None
        )
        data = OrganizationRegistered(
            id=org_id,
            name=f"Company {number} Biologics",
            country=self.rng.choice(COUNTRIES),
            kind=self.rng.choice(KINDS),
            parent=parent,
            aliases=(f"C{number} Bio",) if self.rng.random() < 0.2 else (),
        )
        quote = f"Company {number} Biologics, a {data.kind}, said it would expand its operations."
        if parent:
            quote += f" The company is part of {parent}."
        return f"organization-{org_id}", data, quote

    def announcement(self, kind: str) -> tuple[str, Payload, str]:
        rng = self.rng
        if kind == "site_acquired":
            site = self.site()
            acquirer, seller = self.org(), self.org() if rng.random() < 0.7 else None
            price = self.money(100, 20_000) if rng.random() < 0.8 else None
            data: Payload = SiteAcquired(
                site=site,
                name=f"Manufacturing site {site}",
                location=self.location(site),
                acquirer=acquirer,
                seller=seller,
                price=price,
            )
            return f"site-{site}", data, f"{acquirer} bought the {site} facility from {seller}."
        if kind in {"memorandum_signed", "partnership_agreed"}:
            self.agreements += 1
            parties = tuple(
                dict.fromkeys(self.org() for _ in range(rng.choice((2, 2, 2, 2, 3, 4))))
            )
            if len(parties) < 2:
                parties = (*parties, f"org-{self.orgs - 1 - self.agreements % 7}")
            scope = tuple(rng.sample(SCOPES, rng.randrange(1, 4)))
            site = self.site() if rng.random() < 0.4 else None
            if kind == "memorandum_signed":
                agreement = f"mou-{self.agreements}"
                data = MemorandumSigned(
                    agreement=agreement, parties=parties, scope=scope, site=site
                )
            else:
                agreement = f"deal-{self.agreements}"
                initiative = (
                    f"initiative-{rng.randrange(self.initiatives)}"
                    if self.initiatives and rng.random() < 0.2
                    else None
                )
                data = PartnershipAgreed(
                    agreement=agreement,
                    parties=parties,
                    scope=scope,
                    initiative=initiative,
                    site=site,
                )
            quote = f"{' and '.join(parties)} signed an agreement focused on {', '.join(scope)}."
            return f"agreement-{agreement}", data, quote
        if kind == "facility_plan_announced":
            site, org = self.site(), self.org()
            data = FacilityPlanAnnounced(
                org=org, site=site, location=self.location(site), purpose=rng.choice(PURPOSES)
            )
            return f"site-{site}", data, f"{org} unveiled plans to establish a plant at {site}."
        if kind == "initiative_launched":
            initiative = f"initiative-{self.initiatives}"
            self.initiatives += 1
            site, org = self.site(), self.org()
            data = InitiativeLaunched(
                org=org,
                initiative=initiative,
                name=f"Bio Venture Initiative {self.initiatives}",
                site=site,
                description="joint lab space and expertise to support biopharma upstarts",
            )
            return f"site-{site}", data, f"{org} revealed plans to set up {initiative} at {site}."
        site, org = self.site(), self.org()
        amount = self.money(10, 50_000)
        data = InvestmentCommitted(
            org=org,
            site=site,
            amount=amount,
            location=self.location(site) if rng.random() < 0.5 else None,
            jobs=rng.randrange(10, 2_000) if rng.random() < 0.7 else None,
            jobs_by_year=rng.randrange(2005, 2035) if rng.random() < 0.5 else None,
            modalities=tuple(rng.sample(MODALITIES, rng.randrange(0, 4))),
            capabilities=tuple(rng.sample(CAPABILITIES, rng.randrange(0, 4))),
        )
        quote = (
            f"{org} announced it would pump {amount.currency} {amount.amount} into a new "
            f"manufacturing center at {site}."
        )
        return f"site-{site}", data, quote

    def item(self, stream: str, data: Payload, quote: str) -> _Item:
        occurred_on, published = self.when()
        sequence = self.rng.choice((1, 2)) if self.rng.random() < 0.05 else None
        return _Item(
            0.0,
            self.uuid(),
            stream,
            data.TYPE,
            occurred_on,
            sequence,
            data,
            self.source(published, quote),
        )

    def items(self) -> list[_Item]:
        """Every event, in arrival order (see the module docstring)."""
        rng = self.rng
        records = self.corrections + self.retractions
        announcements = self.count - self.orgs - records
        kinds = rng.choices([k for k, _ in MIX], [w for _, w in MIX], k=announcements)
        items = [self.item(*self.organization(n)) for n in range(self.orgs)]
        items += [self.item(*self.announcement(kind)) for kind in kinds]
        items.sort(key=_valid_time)
        total = len(items)
        for index, item in enumerate(items):
            item.arrival = float(index)
        # backfill bursts: older announcements recorded together, later than their time
        bursts = max(1, int(total * LATE) // BURST)
        clean = total - 2 * TAIL  # the last events are ordinary in-order news
        for _ in range(bursts):
            at = rng.randrange(total // 10, clean - 2)
            for _ in range(BURST):
                item = items[rng.randrange(at)]
                if item.arrival < at:
                    item.arrival = at + rng.random()
        # corrections and retractions: recorded some time after their target
        targets = rng.sample(range(total // 2), self.corrections + self.retractions)
        records_out: list[_Item] = []
        for number, target_index in enumerate(targets):
            target = items[target_index]
            if number < self.corrections:
                data: Payload = EventCorrected(
                    corrects=target.event_id,
                    replacement=msgspec.to_builtins(self.corrected(target.data)),
                    reason="the source published a correction",
                )
            else:
                data = EventRetracted(retracts=target.event_id, reason="the source withdrew it")
            record = self.item(target.stream, data, "The publisher corrected its report.")
            record.occurred_on = target.occurred_on
            record.arrival = min(target.arrival + rng.randrange(1, total // 4), clean - 1.5) + 0.5
            records_out.append(record)
        items += records_out
        items.sort(key=lambda item: item.arrival)
        return items

    def corrected(self, data: Payload) -> Payload:  # noqa: PLR0911 - one per type
        if isinstance(data, InvestmentCommitted):
            return msgspec.structs.replace(data, amount=self.money(10, 50_000), jobs=None)
        if isinstance(data, SiteAcquired):
            return msgspec.structs.replace(data, price=self.money(100, 20_000))
        if isinstance(data, OrganizationRegistered):
            return msgspec.structs.replace(data, name=f"{data.name} Inc")
        if isinstance(data, (MemorandumSigned, PartnershipAgreed)):
            return msgspec.structs.replace(data, scope=(*data.scope, "corrected scope"))
        if isinstance(data, FacilityPlanAnnounced):
            return msgspec.structs.replace(data, purpose="corrected purpose")
        if isinstance(data, InitiativeLaunched):
            return msgspec.structs.replace(data, description="corrected description")
        return data


def _valid_time(item: _Item) -> tuple[str, int, str]:
    size = len(item.occurred_on)
    start = item.occurred_on + ("" if size == 10 else "-01" if size == 7 else "-01-01")
    return (start, item.sequence or 0, item.event_id)


def generate(count: int, path: Path) -> None:
    """Write the generated log of `count` events to `path` (a new file)."""
    began = time.perf_counter()
    items = Generator(count).items()
    log(f"generated {len(items):,} events in memory in {time.perf_counter() - began:.1f}s")
    rng = random.Random(SEED + 1)
    store = SQLiteEventLog(path, synchronous="NORMAL")
    try:
        for start in range(0, len(items), BATCH):
            # one import job per batch (its correlation id), each event typed in by an analyst
            job = f"import-{start // BATCH}"
            metadata = [
                Metadata(recorded_by=f"analyst-{n}", correlation_id=job, tags=("news",))
                for n in range(ANALYSTS)
            ]
            batch = [
                NewEvent(
                    event_id=item.event_id,
                    stream=item.stream,
                    type=item.type,
                    occurred_on=item.occurred_on,
                    sequence=item.sequence,
                    data=item.data,
                    source=item.source,
                    metadata=rng.choice(metadata),
                )
                for item in items[start : start + BATCH]
            ]
            store.append(batch)
            if start % (BATCH * 100) == 0:
                log(f"  appended {start + len(batch):,} in {time.perf_counter() - began:.0f}s")
        if store.head() != count:
            raise SystemExit(f"generated log holds {store.head()} events, not {count}")
    finally:
        store.close()
    log(f"wrote {count:,} events to {path} in {time.perf_counter() - began:.1f}s")


def cached_log(count: int) -> Path:
    """The generated log of `count` events, made once and kept under `bench/.cache/`."""
    path = CACHE / f"replay-v{GENERATOR_VERSION}-{count}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    drop(tmp)
    child("generate", tmp, extra=["--events", str(count)])
    tmp.replace(path)
    return path


def drop(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- the eventsourcing library's copy of the log (untimed) -------------------------------


def es_write(ledger: Path, path: Path) -> None:
    """Copy the ledger's events into an `eventsourcing` recorder, one aggregate per stream."""
    import es_baseline  # noqa: PLC0415 - an optional dependency, beside this script

    mapper = es_baseline.mapper()
    recorder = es_baseline.recorder(path)
    store = SQLiteEventLog(ledger, synchronous="NORMAL")
    began = time.perf_counter()
    try:
        batch: list[Any] = []
        for event in store.iter_events():
            domain_event = es_baseline.Announced(
                originator_id=es_baseline.aggregate_id(event.stream),
                originator_version=event.stream_version,
                timestamp=event.recorded_at,
                event_id=event.event_id,
                type=event.type,
                schema_version=event.schema_version,
                occurred_on=event.occurred_on,
                sequence=event.sequence,
                data=es_baseline.plain(event.data),
                source=es_baseline.plain(event.source),
                metadata=es_baseline.plain(event.metadata),
                data_hash=event.data_hash,
                prev_hash=event.prev_hash,
                hash=event.hash,
            )
            batch.append(mapper.to_stored_event(domain_event))
            if len(batch) == BATCH:
                recorder.insert_events(batch)
                batch = []
        if batch:
            recorder.insert_events(batch)
    finally:
        store.close()
        recorder.datastore.close()
    log(f"wrote the eventsourcing copy {path} in {time.perf_counter() - began:.1f}s")


def cached_es(ledger: Path) -> Path:
    path = ledger.with_name(ledger.stem + "-eventsourcing-v2.db")
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    drop(tmp)
    child("es-write", ledger, extra=["--out", str(tmp)])
    tmp.replace(path)
    return path


# -- the measurements, each in a child process --------------------------------------------


def arm_read(db: Path, *, decode: bool) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    decoders = {name: msgspec.json.Decoder(cls) for name, cls in PAYLOAD_TYPES.items()}
    sql = f"SELECT {'type, data' if decode else SELECT_COLUMNS} FROM events ORDER BY position"
    count = 0
    try:
        start = time.perf_counter()
        conn.execute("BEGIN")
        cursor = conn.execute(sql)
        if decode:
            while rows := cursor.fetchmany(PAGE):
                for event_type, data in rows:
                    decoders[event_type].decode(data)
                count += len(rows)
        else:
            while rows := cursor.fetchmany(PAGE):
                count += len(rows)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    return {"events": count, "seconds": seconds}


def arm_iter(db: Path, *, lean: bool = False) -> dict[str, Any]:
    store = SQLiteEventLog(db, synchronous="NORMAL")
    count = 0
    try:
        start = time.perf_counter()
        for _ in store.iter_replay() if lean else store.iter_events():
            count += 1
        seconds = time.perf_counter() - start
    finally:
        store.close()
    return {"events": count, "seconds": seconds}


class GcTimer:
    """Seconds the cyclic garbage collector ran (through `gc.callbacks`)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += 1


def arm_replay(db: Path, *, profile: bool, gc_off: bool) -> dict[str, Any]:
    from projections import build_replayed  # noqa: PLC0415 - imported before the clock, not timed

    store = SQLiteEventLog(db, synchronous="NORMAL")
    rss_before = rss_now_kib()
    timer = GcTimer()
    gc.callbacks.append(timer)
    if gc_off:  # a diagnosis: what the cyclic garbage collector costs the replay
        gc.disable()
    profiler = cProfile.Profile() if profile else None
    try:
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        proj = build_replayed(store.iter_replay())
        built = time.perf_counter()
        built_rss = peak_rss_kib()
        proj.derive()  # every answer, the timeline's included, ready to serve
        derived = time.perf_counter()
        digests = proj.digests()
        done = time.perf_counter()
        if profiler is not None:
            profiler.disable()
    finally:
        gc.callbacks.remove(timer)
        store.close()
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    return {
        "events": proj.position,
        "seconds": done - start,
        "build_seconds": built - start,
        "derive_seconds": derived - built,
        "digests_seconds": done - derived,
        "gc_seconds": timer.seconds,
        "gc_collections": timer.collections,
        "rss_before_kib": rss_before,
        "build_peak_rss_kib": built_rss,
        "peak_rss_kib": peak_rss_kib(),
        "digests": digests,
    }


def store_head(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT max(position) FROM events").fetchone()[0] or 0)
    finally:
        conn.close()


def arm_es(db: Path) -> dict[str, Any]:
    import es_baseline  # noqa: PLC0415 - an optional dependency, beside this script

    mapper = es_baseline.mapper()
    recorder = es_baseline.recorder(db)
    count, last = 0, 0
    try:
        start = time.perf_counter()
        while notifications := recorder.select_notifications(last, PAGE, inclusive_of_start=False):
            for notification in notifications:
                mapper.to_domain_event(notification)
            count += len(notifications)
            last = notifications[-1].id
        seconds = time.perf_counter() - start
    finally:
        recorder.datastore.close()
    return {"events": count, "seconds": seconds}


def snapshot_point(db: Path, *, fallback: bool) -> tuple[int, int]:
    """Where to snapshot: (position, tail end).

    Without `fallback`: head - TAIL, the tail running to the head. With it: TAIL / 2
    events before the last backfilled announcement of the log (older than an event
    recorded before it, so `Live.apply` refuses it), the tail running TAIL events from
    there: a start that must rebuild from (almost) the whole log.
    """
    head = store_head(db)
    if not fallback:
        return max(0, head - TAIL), head
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    late = 0
    try:
        newest: tuple[str, int, str] | None = None
        rows = conn.execute(
            "SELECT position, type, occurred_on, sequence, event_id FROM events ORDER BY position"
        )
        for position, event_type, occurred_on, sequence, event_id in rows:
            if event_type in RECORD_TYPES:
                continue
            size = len(occurred_on)
            start = occurred_on + ("" if size == 10 else "-01" if size == 7 else "-01-01")
            key = (start, sequence or 0, event_id)
            if newest is not None and key < newest:
                late = position
            else:
                newest = key
    finally:
        conn.close()
    if not late:
        msg = "no backfilled event in the log"
        raise SystemExit(msg)
    at = max(0, late - TAIL // 2)
    return at, min(head, at + TAIL)


def arm_snapshot_prep(db: Path, out: Path, fallback: bool) -> dict[str, Any]:
    from projections import Live, dump_snapshot  # noqa: PLC0415

    at, end = snapshot_point(db, fallback=fallback)
    store = SQLiteEventLog(db, synchronous="NORMAL")
    try:
        live = Live()
        live.rebuild_replayed(store.iter_replay(upto=at))
        out.write_bytes(dump_snapshot(live))
    finally:
        store.close()
    return {"position": live.position, "tail_end": end, "bytes": out.stat().st_size}


def arm_snapshot(db: Path, snapshot: Path, end: int) -> dict[str, Any]:
    from projections import load_snapshot  # noqa: PLC0415
    from service.projector import MERGE_AT_MOST  # noqa: PLC0415

    store = SQLiteEventLog(db, synchronous="NORMAL")
    applied = merged = 0
    rebuilt = False
    try:
        start = time.perf_counter()
        live = load_snapshot(snapshot.read_bytes())
        if live is None:
            msg = "the snapshot was refused"
            raise SystemExit(msg)
        loaded = time.perf_counter()
        events = store.iter_events(after=live.position, upto=end)
        for event in events:
            if not live.apply(event):  # as service.projector.Projector.catch_up does
                short = live.position > 0 and end - event.position < MERGE_AT_MOST
                rest = [event, *events] if short else []
                if short and live.merge(rest):
                    merged = len(rest)
                else:
                    live.rebuild_replayed(store.iter_replay(upto=end))
                    rebuilt = True
                break
            applied += 1
        proj = live.projections()
        ready = time.perf_counter()
        proj.digests()
        answered = time.perf_counter()
    finally:
        store.close()
    if live.position != end:
        raise SystemExit(f"snapshot start ended at {live.position}, not {end}")
    return {
        "seconds": ready - start,
        "load_seconds": loaded - start,
        "tail_seconds": ready - loaded,
        "digests_seconds": answered - ready,
        "applied": applied,
        "merged": merged,
        "rebuilt": rebuilt,
        "peak_rss_kib": peak_rss_kib(),
    }


def run_arm(args: argparse.Namespace) -> None:
    db = Path(args.db)
    arm = args.arm
    if arm == "generate":
        generate(args.events, db)
        result: dict[str, Any] = {}
    elif arm == "es-write":
        es_write(db, Path(args.out))
        result = {}
    elif arm == "read":
        result = arm_read(db, decode=False)
    elif arm == "decode":
        result = arm_read(db, decode=True)
    elif arm in {"iter", "lean"}:
        result = arm_iter(db, lean=arm == "lean")
    elif arm == "replay":
        result = arm_replay(db, profile=args.profile, gc_off=args.gc_off)
    elif arm == "eventsourcing":
        result = arm_es(db)
    elif arm == "snapshot-prep":
        result = arm_snapshot_prep(db, Path(args.out), args.fallback)
    elif arm == "snapshot":
        result = arm_snapshot(db, Path(args.snapshot), args.end)
    else:
        raise SystemExit(f"no arm {arm!r}")
    print(json.dumps(result))


def child(arm: str, db: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """Run one arm in a fresh interpreter; its last stdout line is its JSON result."""
    command = [sys.executable, str(Path(__file__).resolve()), "--arm", arm, "--db", str(db)]
    done = subprocess.run(  # noqa: PLW1510 - checked below, with the child's output
        [*command, *(extra or [])],
        stdout=subprocess.PIPE,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    if done.returncode != 0:
        raise SystemExit(f"arm {arm} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:  # noqa: PLR0915 - one run, step by step
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 events: under a minute")
    parser.add_argument("--events", type=int, help="how many events (default 1,000,000)")
    parser.add_argument("--rounds", type=int, help="how many rounds of the arms (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile one replay (stderr)")
    parser.add_argument("--gc-off", action="store_true", help="one replay without the cyclic GC")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fallback", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arm:
        run_arm(args)
        return

    cfg = QUICK if args.quick else FULL
    count = args.events or cfg.events
    rounds = args.rounds or cfg.rounds
    began = time.perf_counter()
    log(
        f"{count:,} events, {rounds} rounds; sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus"
    )
    db = cached_log(count)
    es_db = cached_es(db)
    log(f"logs ready in {time.perf_counter() - began:.1f}s: {db} ({db.stat().st_size >> 20} MiB)")

    if args.profile or args.gc_off:  # a diagnosis, not a measurement: no JSON line of ratios
        flags = [
            flag for flag, on in (("--profile", args.profile), ("--gc-off", args.gc_off)) if on
        ]
        run = child("replay", db, extra=flags)
        log(f"replay: {run['seconds']:.3f}s{_detail(run)}")
        return

    scratch = Path(tempfile.mkdtemp(prefix="bench-replay-", dir=CACHE))
    try:
        snapshots: dict[str, tuple[Path, int]] = {}
        for name, fallback in (("snapshot", False), ("snapshot_fallback", True)):
            path = scratch / f"{name}.json"
            extra = ["--out", str(path), *(["--fallback"] if fallback else [])]
            prep = child("snapshot-prep", db, extra)
            snapshots[name] = (path, prep["tail_end"])
            log(
                f"{name}: at {prep['position']:,}, tail to {prep['tail_end']:,},"
                f" {prep['bytes'] >> 20} MiB"
            )

        runs: dict[str, list[dict[str, Any]]] = {}
        arms: dict[str, tuple[str, list[str]]] = {
            "read": ("read", []),
            "decode": ("decode", []),
            "iter": ("iter", []),
            "lean": ("lean", []),
            "replay": ("replay", []),
            "eventsourcing": ("eventsourcing", []),
        }
        for name, (path, end) in snapshots.items():
            arms[name] = ("snapshot", ["--snapshot", str(path), "--end", str(end)])
        for round_no in range(1, rounds + 1):
            for name, (arm, extra) in arms.items():
                target = es_db if arm == "eventsourcing" else db
                run = child(arm, target, extra)
                runs.setdefault(name, []).append(run)
                events = run.get("events", count)
                if arm != "snapshot" and events != count:
                    raise SystemExit(f"{name} read {events} events, not {count}")
                log(f"round {round_no} {name:>17}: {run['seconds']:7.3f}s" + _detail(run))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    digests = {json.dumps(run["digests"], sort_keys=True) for run in runs["replay"]}
    if len(digests) != 1:
        msg = "replays disagree on the digests"
        raise SystemExit(msg)

    def median(name: str, key: str = "seconds") -> float:
        return statistics.median(run[key] for run in runs[name])

    names = ("read", "decode", "iter", "lean", "replay", "eventsourcing")
    rate = {name: count / median(name) for name in names}
    replay_seconds = median("replay")
    snap, fallback = runs["snapshot"], runs["snapshot_fallback"]
    result: dict[str, Any] = {
        "replay_vs_decode": rate["replay"] / rate["decode"],
        "replay_vs_eventsourcing": rate["replay"] / rate["eventsourcing"],
        "snapshot_start_vs_replay": replay_seconds / median("snapshot"),
        "peak_rss_mib": mib(max(run["peak_rss_kib"] for run in runs["replay"])),
        "snapshot_fallback_vs_replay": replay_seconds / median("snapshot_fallback"),
        "snapshot_fallback_vs_build": median("replay", "build_seconds")
        / median("snapshot_fallback"),
        "snapshot_ready_vs_replay": replay_seconds
        / statistics.median(run["seconds"] + run["digests_seconds"] for run in snap),
        "iter_vs_decode": rate["iter"] / rate["decode"],
        "lean_vs_decode": rate["lean"] / rate["decode"],
    }
    result = {k: round(v, 2) for k, v in result.items()}
    result.update({f"{name}_eps": round(value) for name, value in rate.items()})
    result.update(
        {
            "replay_seconds": round(replay_seconds, 3),
            "replay_build_seconds": round(median("replay", "build_seconds"), 3),
            "replay_derive_seconds": round(median("replay", "derive_seconds"), 3),
            "replay_digests_seconds": round(median("replay", "digests_seconds"), 3),
            "replay_gc_seconds": round(median("replay", "gc_seconds"), 3),
            "replay_rss_before_mib": mib(median("replay", "rss_before_kib")),
            "replay_build_peak_rss_mib": mib(median("replay", "build_peak_rss_kib")),
            "snapshot_start_seconds": round(median("snapshot"), 3),
            "snapshot_load_seconds": round(median("snapshot", "load_seconds"), 3),
            "snapshot_tail_seconds": round(median("snapshot", "tail_seconds"), 3),
            "snapshot_tail_rebuilt": any(run["rebuilt"] for run in snap),
            "snapshot_fallback_seconds": round(median("snapshot_fallback"), 3),
            "snapshot_fallback_rebuilt": any(run["rebuilt"] for run in fallback),
            "snapshot_fallback_merged": statistics.median(run["merged"] for run in fallback),
            "events": count,
            "tail": TAIL,
            "quick": args.quick,
            "rounds": rounds,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "wall_seconds": round(time.perf_counter() - began, 1),
        }
    )
    print(json.dumps(result))


def _detail(run: dict[str, Any]) -> str:
    keys = (
        "build_seconds",
        "derive_seconds",
        "digests_seconds",
        "gc_seconds",
        "load_seconds",
        "tail_seconds",
    )
    parts = [f"{key.removesuffix('_seconds')} {run[key]:.3f}s" for key in keys if key in run]
    if "peak_rss_kib" in run:
        parts.append(f"peak {mib(run['peak_rss_kib'])} MiB")
    if "rebuilt" in run:
        parts.append(f"applied {run['applied']}, merged {run['merged']}, rebuilt {run['rebuilt']}")
    return f" ({', '.join(parts)})" if parts else ""


if __name__ == "__main__":
    main()
