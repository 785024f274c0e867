"""The ledger as a Python library: what a pipeline embedding it may rely on (a review)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

import events
import projections
import service
from events.errors import StoreError
from events.payloads import Money
from events.seed import seed_events
from events.sqlite import SQLiteEventLog
from projections import ViewSpec, build, build_replayed


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    with SQLiteEventLog(tmp_path / "ledger.db") as log:
        log.append(seed_events())
    return tmp_path / "ledger.db"


def test_an_answer_cannot_be_changed_in_place(seeded: Path) -> None:
    """A caller's edit of an answer's mapping changed the cached view and its digest."""
    with SQLiteEventLog(seeded) as log:
        view = build(log.iter_events())
        before = view.digest("capacity"), view.digest("partnerships")
        site = view.capacity_site("daejeon")
        pair = view.partnership("lotte-biologics", "merck-kgaa")
        assert site is not None
        assert pair is not None
        with pytest.raises(TypeError, match="read-only"):
            site.committed["USD"] = Decimal(1)
        with pytest.raises(TypeError, match="read-only"):
            pair.through.clear()
        for row in view.capacity_summary("country"):
            with pytest.raises(TypeError, match="read-only"):
                row.acquisitions.update({"XXX": Decimal(1)})
        copied = dict(site.committed)  # a copy is the caller's own
        copied["USD"] = Decimal(1)
        assert site.committed == {"USD": Decimal(326000000)}
        assert (view.digest("capacity"), view.digest("partnerships")) == before
        assert before == (
            build(log.iter_events()).digest("capacity"),
            build(log.iter_events()).digest("partnerships"),
        )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"as_of": dt.datetime(2023, 12, 31, tzinfo=dt.UTC)}, "as_of"),
        ({"known_at": dt.date(2030, 1, 1)}, "known_at"),
        ({"known_at": "2030-01-01T00:00:00Z"}, "known_at"),
        ({"at_position": -1}, "at_position"),
    ],
)
def test_a_view_spec_of_the_wrong_types_is_refused_where_it_is_made(
    spec: dict[str, object], field: str
) -> None:
    """It failed later, deep inside a build, with a bare TypeError or AttributeError."""
    with pytest.raises(TypeError, match=f"ViewSpec.{field}"):
        ViewSpec(**spec)  # type: ignore[arg-type]


def test_a_view_spec_of_the_right_types_builds(seeded: Path) -> None:
    with SQLiteEventLog(seeded) as log:
        view = build_replayed(log.iter_replay(), ViewSpec(as_of=dt.date(2023, 12, 31)))
        assert view.capacity_site("daejeon") is not None


def test_scans_after_close_are_refused(seeded: Path) -> None:
    """`close` says reads after it are refused: whole-log scans opened new connections."""
    log = SQLiteEventLog(seeded)
    log.close()
    for scan in (log.iter_events, log.iter_replay, log.export_lines):
        with pytest.raises(StoreError, match="closed"):
            next(iter(scan()))
    with pytest.raises(StoreError, match="closed"):
        log.verify()


def test_money_of_another_type_is_said_so() -> None:
    """A float (or an int, a str) was a bare AttributeError from deep in the check."""
    for amount in (1.5, 15, "15"):
        with pytest.raises(TypeError, match="must be a Decimal"):
            Money(amount=amount, currency="USD")  # type: ignore[arg-type]


def test_reads_take_what_a_caller_would_pass(seeded: Path, tmp_path: Path) -> None:
    """One type as a string, positions past any integer SQLite holds, a backup path as text."""
    with SQLiteEventLog(seeded) as log:
        assert [e.type for e in log.read(types="site_acquired")] == ["site_acquired"]
        assert log.read(after=2**63) == []
        assert len(list(log.iter_events(upto=2**64))) == log.head() == 10
        assert log.stream("site-daejeon", after=2**63) == ([], 2)
        log.backup(str(tmp_path / "copy.db"))
    with SQLiteEventLog(tmp_path / "copy.db") as copy:
        assert copy.verify().ok
        assert copy.head() == 10


def test_the_packages_say_they_are_typed() -> None:
    """PEP 561: without `py.typed`, `mypy --strict` on a user's script refused every import."""
    for package in (events, projections, service):
        assert Path(package.__file__ or "").with_name("py.typed").is_file()
