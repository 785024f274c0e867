"""`/v1/audit`: hash-chain verification and from-zero replay compared with the live state."""

from __future__ import annotations

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK

from projections import build
from service.auth import require_scope
from service.ledger import Ledger
from service.openapi import WRITE_SECURITY
from service.problems import problem_responses
from service.schemas import VerifyAnswer


class DigestPair(msgspec.Struct, kw_only=True):
    """One projection's digest, live and replayed."""

    live: str
    replayed: str
    match: bool


class ReplayAnswer(msgspec.Struct, kw_only=True):
    """A from-zero replay compared with the live state at the same position."""

    position: int
    match: bool
    projections: dict[str, DigestPair]


class AuditController(Controller):
    """Proofs: the log was never altered; replaying it rebuilds exactly the live state."""

    path = "/v1/audit"
    tags = ["audit"]  # noqa: RUF012 - Litestar's declared class attribute

    @get(
        "/verify",
        operation_id="VerifyChain",
        summary="Verify the hash chain",
        responses=problem_responses(401, 422, 503),
    )
    async def verify(self, ledger: NamedDependency[Ledger]) -> VerifyAnswer:
        """Recompute every data hash and chain link; `ok`, the head and the first bad position.

        One pass at a time (`service.coalesce`): requests that arrive during a pass wait for
        the next one, which answers them all.
        """
        result = await ledger.verification()
        return VerifyAnswer(
            ok=result.ok,
            head=result.head,
            checked=result.checked,
            first_bad_position=result.first_bad_position,
            reason=result.reason,
        )

    @post(
        "/replay",
        operation_id="ReplayAudit",
        summary="Rebuild from zero and compare digests with live",
        opt={"scope": "admin"},
        security=WRITE_SECURITY,
        before_request=require_scope,
        status_code=HTTP_200_OK,
        responses=problem_responses(401, 403, 422, 503),
        sync_to_thread=True,
    )
    def replay(self, ledger: NamedDependency[Ledger]) -> ReplayAnswer:
        """Fold the whole log from zero; compare each projection's digest with the live state's."""
        live = ledger.projector.catch_up()
        replayed = build(ledger.log.iter_events(upto=live.position))
        live_digests, replay_digests = live.digests(), replayed.digests()
        pairs = {
            name: DigestPair(
                live=live_digests[name],
                replayed=replay_digests[name],
                match=live_digests[name] == replay_digests[name],
            )
            for name in live_digests
        }
        return ReplayAnswer(
            position=live.position,
            match=all(pair.match for pair in pairs.values()) and replayed.position == live.position,
            projections=pairs,
        )
