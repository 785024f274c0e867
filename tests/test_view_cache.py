"""Past views are kept within a budget of events folded, built one at a time."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from events.seed import seed_events
from events.sqlite import SQLiteEventLog
from projections import ViewSpec, build
from service import projector
from service.cache import LRU
from service.projector import Projector


class TestLRU:
    def test_entries_past_the_budget_go_least_recent_first(self) -> None:
        cache: LRU[str, int] = LRU(size=10, budget=25)
        for key in "abc":
            cache.put(key, ord(key), weight=10)
        assert (len(cache), cache.weight) == (2, 20)
        assert cache.get("a") is None
        assert cache.get("b") == ord("b")
        cache.put("d", 0, weight=10)  # "c" is now the least recently used
        assert cache.get("c") is None
        assert cache.get("b") is not None

    def test_an_entry_over_the_budget_alone_is_not_kept(self) -> None:
        cache: LRU[str, int] = LRU(size=10, budget=25)
        cache.put("small", 1, weight=5)
        cache.put("huge", 2, weight=26)
        assert cache.get("huge") is None
        assert cache.get("small") == 1

    def test_putting_a_key_again_counts_it_once(self) -> None:
        cache: LRU[str, int] = LRU(size=10, budget=25)
        cache.put("a", 1, weight=10)
        cache.put("a", 2, weight=12)
        assert (len(cache), cache.weight, cache.get("a")) == (1, 12, 2)

    def test_without_a_budget_the_size_bounds_it(self) -> None:
        cache: LRU[int, int] = LRU(size=3)
        for key in range(5):
            cache.put(key, key)
        assert len(cache) == 3
        assert cache.get(0) is None


@pytest.fixture
def log(tmp_path: Path):
    store = SQLiteEventLog(tmp_path / "ledger.db")
    store.append(seed_events())
    try:
        yield store
    finally:
        store.close()


YEARS = [dt.date(year, 12, 31) for year in range(2020, 2026)]


class TestPastViews:
    def test_views_kept_stay_within_the_budget_and_answer_right(
        self, log: SQLiteEventLog, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Six past views of a 10-event log with room for 25 events: two kept, all right."""
        monkeypatch.setattr(projector, "VIEWS_BUDGET", 25)
        started = Projector(log, None, 0)
        events = list(log.iter_events())
        for as_of in YEARS:
            spec = ViewSpec(as_of=as_of)
            assert started.view(spec).digests() == build(events, spec).digests()
            assert started._views.weight <= 25
        assert len(started._views) == 2

    def test_concurrent_requests_for_one_past_view_build_it_once(
        self, log: SQLiteEventLog, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Eight threads ask for the same view at once: one build, the others wait for it."""
        builds: list[int] = []
        real = projector.build_view

        def counted(*args: object, **kwargs: object):
            builds.append(1)
            time.sleep(0.05)  # a build takes a while: the others ask meanwhile
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(projector, "build_view", counted)
        started = Projector(log, None, 0)
        spec = ViewSpec(as_of=YEARS[3])
        barrier = threading.Barrier(8)
        results = []

        def ask() -> None:
            barrier.wait()
            results.append(started.view(spec).digests())

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(results) == 8
        assert all(result == results[0] for result in results)
        assert len(builds) == 1
