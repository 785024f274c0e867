"""Organizations as a view's facts register them, and the roll-up to top-level parents.

Derived at query time from the fold state, so the roll-up is right whatever order the
registrations and the agreements they explain arrived in.
"""

from __future__ import annotations

from bisect import bisect_left

from events.payloads import OrganizationRegistered
from projections.state import Fact, FoldState


def upto(indexes: list[int], count: int) -> list[int]:
    """The entries of an ascending index list below `count` (the facts a view can see).

    Always a copy: a live fold may append to `indexes` while the caller iterates.
    """
    if not indexes or indexes[-1] < count:
        return indexes[:]
    return indexes[: bisect_left(indexes, count)]


class Registry:
    """The latest registration of each organization (in valid-time order) and its parents.

    An organization's top-level parent is the end of its chain of parents; a parent that
    is not registered is a top-level organization too. A cycle of parents (a data error)
    rolls up to the smallest id in the cycle, so the answer still depends on the facts only.
    """

    def __init__(self, state: FoldState, count: int) -> None:
        facts = state.facts
        self.registered: dict[str, OrganizationRegistered] = {}
        self.registration: dict[str, Fact] = {}
        """The fact of each registration in `registered` (its event, date and source)."""
        registrations = state.organizations
        for org_id in list(registrations):  # a copy: a live fold may add keys meanwhile
            seen = upto(registrations[org_id], count)
            if seen:
                fact = facts[seen[-1]]
                if isinstance(fact.data, OrganizationRegistered):
                    self.registered[org_id] = fact.data
                    self.registration[org_id] = fact
        self.parent: dict[str, str] = {
            org_id: data.parent
            for org_id, data in self.registered.items()
            if data.parent is not None
        }
        self._tops: dict[str, str] = {}

    def chain(self, org_id: str) -> list[str]:
        """The organization, its parent, its parent's parent … (each once, cycles cut)."""
        chain = [org_id]
        seen = {org_id}
        current = self.parent.get(org_id)
        while current is not None and current not in seen:
            chain.append(current)
            seen.add(current)
            current = self.parent.get(current)
        return chain

    def top(self, org_id: str) -> str:
        """The top-level parent an organization rolls up to (itself if it has no parent)."""
        top = self._tops.get(org_id)
        if top is not None:
            return top
        chain = self.chain(org_id)
        loop_start = self.parent.get(chain[-1])
        top = chain[-1] if loop_start is None else min(chain[chain.index(loop_start) :])
        self._tops[org_id] = top
        return top

    def subsidiaries(self) -> dict[str, list[str]]:
        """Each parent's direct subsidiaries, sorted."""
        children: dict[str, list[str]] = {}
        for org_id in sorted(self.parent):
            children.setdefault(self.parent[org_id], []).append(org_id)
        return children
