"""Answering after an append: a live view that carries answers, against one derived from zero.

    python bench/live_answers.py            # the 50,000-event replay log, 9 appends per case
    python bench/live_answers.py --quick    # the same log and keys, 3 appends per case

The log is `bench/replay.py`'s generated one (made once, cached under `bench/.cache/`).
A `Live` is rebuilt from it and every answer derived once. Then, for each kind of append
(an investment at a site, a memorandum of a pair) and each question (one partnership,
one site, one organization, each with its projection's digest as the view envelope
carries it; the timeline's digest), in turn: an in-order event of that kind is applied,
the question is timed on `live.projections()`, and everything else is derived again
untimed, as a service answering all routes would. `carry` is the live view as the service
has it (`projections.advance`); `zero` is the same with nothing carried
(`Projections.carry` returning nothing), what every answer after an append cost before.
The last line of stdout is one JSON object: the median milliseconds of each, and
`<case>_speedup` = zero / carry.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402 - after the path set-up
from replay import cached_log  # noqa: E402
from replay_log import log  # noqa: E402

from events.envelope import Event  # noqa: E402
from events.payloads import AnyPayload, InvestmentCommitted, MemorandumSigned, Money  # noqa: E402
from events.sqlite import SQLiteEventLog  # noqa: E402
from projections import Live, Projections  # noqa: E402

EVENTS = 50_000


def measure(db: Path, repeats: int, *, carry: bool) -> dict[str, float]:
    store = SQLiteEventLog(db, synchronous="NORMAL")
    try:
        live = Live()
        live.rebuild_replayed(store.iter_replay())
        template = store.read(after=store.head() - 1, limit=1)[0]
    finally:
        store.close()
    first = live.projections().derive()
    first.digests()
    pair = first.partnerships()[0].orgs
    site = first.capacity_sites()[0].site
    org = first.organizations()[0].id
    original = Projections.carry
    if not carry:
        Projections.carry = lambda _self: {}  # type: ignore[method-assign]
    kinds: dict[str, Callable[[int], AnyPayload]] = {
        "investment": lambda _i: InvestmentCommitted(
            org=pair[0], site=site, amount=Money(amount=Decimal(5), currency="USD")
        ),
        "memorandum": lambda i: MemorandumSigned(agreement=f"bench-{i}", parties=pair),
    }
    asks: dict[str, Callable[[Projections], object]] = {
        "partnership": lambda p: (p.partnership(*pair), p.digest("partnerships")),
        "site": lambda p: (p.capacity_site(site), p.digest("capacity")),
        "organization": lambda p: (p.organization(org), p.digest("organizations")),
        "timeline_digest": lambda p: p.digest("timeline"),
    }
    results: dict[str, float] = {}
    try:
        for kind, make in kinds.items():
            for name, ask in asks.items():
                times = []
                for _ in range(repeats):
                    number = len(live.state.facts)
                    event: Event = msgspec.structs.replace(
                        template,
                        position=live.position + 1,
                        event_id=f"bench-live-{number}",
                        type=make(number).TYPE,
                        occurred_on="2099-12-31",  # after every generated event: in order
                        sequence=number,
                        data=make(number),
                    )
                    if not live.apply(event):
                        msg = "the appended event was refused"
                        raise SystemExit(msg)
                    start = time.perf_counter()
                    ask(live.projections())
                    times.append(time.perf_counter() - start)
                    live.projections().derive().digests()  # untimed: the rest, as a service
                results[f"{name}_after_{kind}_ms"] = round(1000 * statistics.median(times), 2)
    finally:
        Projections.carry = original  # type: ignore[method-assign]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 appends per case")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 9
    db = cached_log(EVENTS)
    began = time.perf_counter()
    carried = measure(db, repeats, carry=True)
    log(f"carry: {carried}")
    zero = measure(db, repeats, carry=False)
    log(f"zero: {zero}")
    result: dict[str, Any] = {}
    for key, value in carried.items():
        case = key.removesuffix("_ms")
        result[f"{case}_speedup"] = round(zero[key] / value, 1) if value else None
    result.update({f"carry_{k}": v for k, v in carried.items()})
    result.update({f"zero_{k}": v for k, v in zero.items()})
    result.update(
        {
            "events": EVENTS,
            "repeats": repeats,
            "quick": args.quick,
            "wall_seconds": round(time.perf_counter() - began, 1),
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
