"""Pure folds over the log's events: organizations, partnerships, capacity, timeline.

A view selects its events (`ViewSpec`: `as_of`, `known_at`, `at_position`), applies the
selected corrections and retractions, and folds them in valid-time order; `build` does
that from zero (`build_replayed` from the lean rows of a log's `iter_replay`), `Live`
keeps the current view up to date one event at a time (`merge` for backdated events and
records), and `dump_snapshot` / `load_snapshot` turn a `Live` into bytes and back. No
I/O here.
"""

from __future__ import annotations

from projections.build import PROJECTION_NAMES, Projections, build, build_replayed
from projections.capacity import (
    AcquisitionView,
    InitiativeView,
    InvestmentView,
    PlanView,
    SiteView,
    SummaryRow,
)
from projections.digests import digest_of
from projections.live import Captured, Live
from projections.organizations import OrganizationView, OrgSite
from projections.partnerships import AgreementView, PartnershipView
from projections.selection import ViewSpec
from projections.snapshot import SNAPSHOT_VERSION, dump_snapshot, last_rejection, load_snapshot
from projections.state import Fact, FoldState, SortKey, fold, sort_key
from projections.timeline import TimelineEntry

__all__ = [
    "PROJECTION_NAMES",
    "SNAPSHOT_VERSION",
    "AcquisitionView",
    "AgreementView",
    "Captured",
    "Fact",
    "FoldState",
    "InitiativeView",
    "InvestmentView",
    "Live",
    "OrgSite",
    "OrganizationView",
    "PartnershipView",
    "PlanView",
    "Projections",
    "SiteView",
    "SortKey",
    "SummaryRow",
    "TimelineEntry",
    "ViewSpec",
    "build",
    "build_replayed",
    "digest_of",
    "dump_snapshot",
    "fold",
    "last_rejection",
    "load_snapshot",
    "sort_key",
]
