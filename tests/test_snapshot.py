"""Snapshots: a Live to bytes and back, refused with a warning when stale or damaged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest
from event_factory import stored_event
from structlog.testing import capture_logs

from events.envelope import Event, Metadata, Source
from events.payloads import (
    EventCorrected,
    InvestmentCommitted,
    Location,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
    Payload,
    SiteAcquired,
)
from events.upcasters import register_upcaster, unregister_upcaster
from projections import SNAPSHOT_VERSION, Live, build, dump_snapshot, load_snapshot, snapshot


def ev(number: int, data: Payload, occurred_on: str) -> Event:
    """A stored event with a non-default source and metadata, so a snapshot must keep them."""
    return stored_event(
        number,
        data,
        occurred_on,
        source=Source(url="urn:test", quote="\u201cquoted\u201d"),
        metadata=Metadata(recorded_by="tester", tags=("t",)),
        hashes="123",
    )


def invest(amount: str) -> InvestmentCommitted:
    return InvestmentCommitted(
        org="a", site="s", amount=Money(amount=Decimal(amount), currency="EUR"), jobs=3
    )


HISTORY = [
    ev(1, OrganizationRegistered(id="a", name="A", parent="g"), "2022"),
    ev(
        2,
        SiteAcquired(site="s", name="S", location=Location(country="KR"), acquirer="a"),
        "2022-06",
    ),
    ev(3, MemorandumSigned(agreement="m", parties=("a", "b"), scope=("x",)), "2022-07-01"),
    ev(4, invest("1234.50"), "2023"),
    ev(
        5,
        EventCorrected(
            corrects=f"00000000-0000-4000-8000-{4:012x}",
            replacement=msgspec.to_builtins(invest("99.99")),
            reason="typo",
        ),
        "2030",
    ),
]


@pytest.fixture
def live() -> Live:
    live = Live()
    live.rebuild(HISTORY)
    return live


def snapshot_of(live: Live) -> dict[str, Any]:
    return msgspec.msgpack.decode(dump_snapshot(live))


class TestRoundTrip:
    """A snapshot loads back into an equal Live."""

    def test_round_trip(self, live):
        """Position, frontier, facts, corrections and every answer survive."""
        loaded = load_snapshot(dump_snapshot(live))
        assert loaded is not None
        assert (loaded.position, loaded.frontier) == (live.position, live.frontier)
        assert loaded.state.facts == live.state.facts
        assert loaded.state.corrected == live.state.corrected
        proj, again = live.projections(), loaded.projections()
        assert again.digests() == proj.digests() == build(HISTORY).digests()
        assert again.timeline() == proj.timeline()
        site = again.capacity_site("s")
        assert site is not None
        assert site.committed == {"EUR": Decimal("99.99")}

    def test_empty(self):
        """An empty Live round-trips too."""
        loaded = load_snapshot(dump_snapshot(Live()))
        assert loaded is not None
        assert (loaded.position, loaded.frontier, loaded.state.facts) == (0, None, [])

    def test_loaded_live_goes_on_folding(self, live):
        """A loaded Live folds later events like the original would."""
        loaded = load_snapshot(dump_snapshot(live))
        assert loaded is not None
        later = ev(6, invest("1"), "2024")
        assert loaded.apply(later)
        assert loaded.projections().digests() == build([*HISTORY, later]).digests()

    def test_envelope(self, live):
        """The snapshot names its version and payload versions, and carries the body's SHA-256."""
        envelope = snapshot_of(live)
        assert envelope["version"] == SNAPSHOT_VERSION
        assert envelope["payload_versions"]["site_acquired"] == 1
        assert isinstance(envelope["checksum"], str)
        assert len(envelope["checksum"]) == 64


class TestRefused:
    """A snapshot that does not match is refused: None and a warning."""

    def test_tampered_byte(self, live):
        """One changed byte in the body fails the checksum."""
        data = dump_snapshot(live)
        at = data.index(b"99.99")
        tampered = data[:at] + b"8" + data[at + 1 :]
        with capture_logs() as logs:
            assert load_snapshot(tampered) is None
        assert [(log["log_level"], log["reason"]) for log in logs] == [("warning", "checksum")]

    def test_any_changed_byte(self, live):
        """Changing any one byte anywhere makes the snapshot unusable."""
        data = dump_snapshot(live)
        for at in range(0, len(data), 37):
            changed = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
            with capture_logs() as logs:
                assert load_snapshot(changed) is None, at
            assert [log["log_level"] for log in logs] == ["warning"]

    def test_wrong_version(self, live, monkeypatch):
        """A snapshot of another version is refused, whatever its checksum."""
        monkeypatch.setattr(snapshot, "SNAPSHOT_VERSION", SNAPSHOT_VERSION + 1)
        data = dump_snapshot(live)
        monkeypatch.undo()
        with capture_logs() as logs:
            assert load_snapshot(data) is None
        assert len(logs) == 1
        assert logs[0]["log_level"] == "warning"
        assert logs[0]["reason"] == "version"
        assert logs[0]["found"] == SNAPSHOT_VERSION + 1

    @pytest.mark.parametrize("data", [b"", b"not json", b'{"version":1}', b"[1,2,3]"])
    def test_garbage(self, data):
        """Bytes that are not a snapshot are refused."""
        with capture_logs() as logs:
            assert load_snapshot(data) is None
        assert [log["log_level"] for log in logs] == ["warning"]

    def test_payload_schema_changed(self, live):
        """A snapshot written before a payload type got a new schema version is refused."""
        data = dump_snapshot(live)
        register_upcaster("site_acquired", 1, lambda data: data)
        try:
            with capture_logs() as logs:
                assert load_snapshot(data) is None
        finally:
            unregister_upcaster("site_acquired", 1)
        assert [log["reason"] for log in logs] == ["payload_versions"]
        assert load_snapshot(data) is not None

    def test_consistent_checksum_but_bad_content(self, live):
        """A body whose checksum matches but whose facts are out of order is refused."""
        envelope = snapshot_of(live)
        body = msgspec.msgpack.decode(msgspec.msgpack.encode(envelope["body"]))
        body["facts"].reverse()
        raw = msgspec.msgpack.encode(body)
        checksum = snapshot._checksum(raw, envelope["position"], envelope["anchor"])
        envelope.update(checksum=checksum, body=msgspec.Raw(raw))
        forged = msgspec.msgpack.encode(envelope)
        with capture_logs() as logs:
            assert load_snapshot(forged) is None
        assert [log["reason"] for log in logs] == ["inconsistent"]

    def test_an_envelope_position_not_the_body_s(self, live):
        """The anchor is checked at the envelope's position: a body of another is refused."""
        envelope = snapshot_of(live)
        envelope["position"] -= 1
        raw = bytes(msgspec.msgpack.encode(envelope["body"]))
        envelope["checksum"] = snapshot._checksum(raw, envelope["position"], envelope["anchor"])
        with capture_logs() as logs:
            assert load_snapshot(msgspec.msgpack.encode(envelope)) is None
        assert [log["reason"] for log in logs] == ["inconsistent"]

    @pytest.mark.parametrize("field", ["position", "anchor"])
    def test_the_checksum_covers_the_position_and_anchor(self, live, field):
        """Either changed (the checksum left as it was): refused on the checksum."""
        envelope = snapshot_of(live)
        envelope[field] = envelope[field] + 1 if field == "position" else "f" * 64
        with capture_logs() as logs:
            assert load_snapshot(msgspec.msgpack.encode(envelope)) is None
        assert [log["reason"] for log in logs] == ["checksum"]
