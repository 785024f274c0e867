"""The live state follows appends without a read: lag back to 0, periodic snapshots written."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from http_fixtures import bearer, init_ledger, make_token, org_event, serving
from prometheus_client.parser import text_string_to_metric_families

from projections import load_snapshot

WITHIN = 10.0


def lag(client) -> float:
    """The `ledger_projection_lag` gauge, as `/metrics` has it (a scrape folds nothing)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "ledger_projection_lag":
                return float(sample.value)
    msg = "no ledger_projection_lag"
    raise AssertionError(msg)


def test_appends_alone_are_folded_and_snapshotted(tmp_path: Path) -> None:
    """30 appends and no read: the lag returns to 0 and a periodic snapshot is written.

    Found by a review: the live state folded only when something read it, so under
    write-only traffic the lag grew and no periodic snapshot was ever written.
    """
    db = init_ledger(tmp_path / "ledger.db")
    snapshot = tmp_path / "live.snapshot"
    token = make_token(db, "writer", "append")
    with serving(db, snapshot_every=10, snapshot_path=str(snapshot)) as client:
        for _ in range(30):
            event = org_event(event_id=str(uuid.uuid4()))
            response = client.post("/v1/events", json={"events": [event]}, headers=bearer(token))
            assert response.status_code == 201, response.text
        deadline = time.monotonic() + WITHIN
        while lag(client) > 0 or snapshot_position(snapshot) < 20:  # seed 10 + a period of 10
            assert time.monotonic() < deadline, f"lag {lag(client)}, snapshot {snapshot.exists()}"
            time.sleep(0.05)


def snapshot_position(path: Path) -> int:
    """The position of the snapshot at `path` (-1: none yet, or one being replaced)."""
    try:
        written = load_snapshot(path.read_bytes())
    except OSError:
        return -1
    return -1 if written is None else written.position


def test_another_process_s_appends_are_followed_too(tmp_path: Path) -> None:
    """Appended through another handle (as `ledger append` beside the service): followed."""
    from events.intake import parse_event  # noqa: PLC0415 - only this test appends so
    from events.sqlite import SQLiteEventLog  # noqa: PLC0415

    db = init_ledger(tmp_path / "ledger.db")
    with serving(db) as client:
        assert lag(client) == 0
        other = SQLiteEventLog(db)
        try:
            other.append([parse_event(json.dumps(org_event()))])
        finally:
            other.close()
        deadline = time.monotonic() + WITHIN
        while lag(client) > 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
