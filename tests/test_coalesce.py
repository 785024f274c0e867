"""A costly check run once for everyone waiting: `service.coalesce.Coalesced` (audit verify)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_fixtures import init_ledger, serving
from litestar import Litestar
from litestar.testing import TestClient

from service.coalesce import Coalesced


class Gate:
    """A `fn` that blocks until released and answers its run's number."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def __call__(self) -> int:
        self.calls += 1
        number = self.calls
        self.entered.set()
        assert self.release.wait(10)
        if self.fail:
            msg = f"run {number} failed"
            raise RuntimeError(msg)
        return number


async def wait_entered(gate: Gate) -> None:
    for _ in range(1000):
        if gate.entered.is_set():
            gate.entered.clear()
            return
        await asyncio.sleep(0.005)
    pytest.fail("the run did not begin")


def test_callers_during_a_run_share_the_next_one() -> None:
    """One run at a time; those who asked during run 1 are answered by run 2, together."""
    gate = Gate()
    coalesced: Coalesced[int] = Coalesced(gate)

    async def main() -> tuple[int, list[int]]:
        first = asyncio.ensure_future(coalesced())
        await wait_entered(gate)  # run 1 is going
        later = [asyncio.ensure_future(coalesced()) for _ in range(20)]
        await asyncio.sleep(0.05)
        assert gate.calls == 1  # nobody started a second run beside it
        gate.release.set()
        return await first, list(await asyncio.gather(*later))

    first, later = asyncio.run(asyncio.wait_for(main(), 30))
    assert first == 1
    assert later == [2] * 20  # a run begun after they asked, never the older one
    assert coalesced.runs == gate.calls == 2


def test_a_failed_run_fails_those_it_answers_and_the_next_call_runs_again() -> None:
    gate = Gate(fail=True)
    gate.release.set()
    coalesced: Coalesced[int] = Coalesced(gate)

    async def main() -> list[BaseException | int]:
        return list(await asyncio.gather(coalesced(), coalesced(), return_exceptions=True))

    outcomes = asyncio.run(asyncio.wait_for(main(), 30))
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    gate.fail = False
    assert asyncio.run(asyncio.wait_for(coalesced(), 30)) == gate.calls


def test_a_cancelled_caller_leaves_the_run_to_the_others() -> None:
    gate = Gate()
    coalesced: Coalesced[int] = Coalesced(gate)

    async def main() -> int:
        starter = asyncio.ensure_future(coalesced())
        await wait_entered(gate)
        waiter = asyncio.ensure_future(coalesced())
        await asyncio.sleep(0)
        starter.cancel()
        gate.release.set()
        return await waiter

    assert asyncio.run(asyncio.wait_for(main(), 30)) == 2
    assert gate.calls == 2


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with serving(init_ledger(tmp_path / "ledger.db")) as client:
        yield client


def test_verify_over_http_runs_once_per_request_in_sequence(client: TestClient[Litestar]) -> None:
    """Requests one after another each get a pass of their own over the whole log."""
    verification = client.app.state.ledger.verification
    before = verification.runs
    for _ in range(3):
        answer = client.get("/v1/audit/verify").json()
        assert answer["ok"] is True
        assert answer["checked"] == answer["head"] == 10
    assert verification.runs == before + 3
