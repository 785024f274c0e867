"""Keyed digests: what they are (recomputed from answers alone) and how they are kept up to date."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from http_fixtures import init_ledger, serving
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from events.codec import canonical
from projections.digests import RUN, KeyedHash


def recomputed(entries: list[tuple[Any, Any]]) -> str:
    """The documented digest of keyed entries, computed without `projections.digests`."""
    runs: list[list[Any]] = []
    run: list[Any] = []
    for key, entry in sorted(entries, key=lambda item: item[0]):
        run.append(entry)
        if zlib.crc32(canonical(key)) % RUN == 0:
            runs.append(run)
            run = []
    runs += [run] if run else []
    hashes = b"".join(hashlib.sha256(canonical(run)).digest() for run in runs)
    return hashlib.sha256(hashes).hexdigest()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Litestar]]:
    db = init_ledger(tmp_path_factory.mktemp("keyed") / "ledger.db")
    with serving(db) as client:
        yield client


class TestAnAuditorRecomputes:
    """A digest in an answer's `view` can be checked against the answer's own data."""

    @pytest.mark.parametrize(
        ("url", "key"),
        [("/v1/organizations", lambda e: e["id"]), ("/v1/partnerships", lambda e: e["orgs"])],
    )
    def test_a_list_digest_from_its_entries(self, client, url, key) -> None:
        body = client.get(url).json()
        assert body["data"]
        assert body["view"]["digest"] == recomputed([(key(e), e) for e in body["data"]])

    def test_the_capacity_digest_from_sites_and_summaries(self, client) -> None:
        sites = client.get("/v1/capacity/sites").json()
        by_country = client.get("/v1/capacity/summary", params={"by": "country"}).json()
        by_org = client.get("/v1/capacity/summary", params={"by": "organization"}).json()
        whole = {
            "sites": recomputed([(e["site"], e) for e in sites["data"]]),
            "by_country": by_country["data"],
            "by_organization": by_org["data"],
        }
        expected = hashlib.sha256(canonical(whole)).hexdigest()
        assert sites["view"]["digest"] == by_country["view"]["digest"] == expected


keys = st.text(alphabet="abcdefghij-0123", min_size=1, max_size=6)
mappings = st.dictionaries(keys, st.integers(0, 10**6), max_size=60)


def sorted_of(mapping: dict[str, int]) -> dict[str, object]:
    """A key-sorted mapping of fresh entry objects, as a derivation makes them."""
    return {key: {"key": key, "value": mapping[key]} for key in sorted(mapping)}


class TestUpdates:
    @settings(max_examples=300, deadline=None)
    @given(before=mappings, added=mappings, data=st.data())
    def test_an_update_equals_the_hash_from_zero(self, before, added, data) -> None:
        """Entries added, removed, replaced or kept (the same objects): the same digest."""
        old = sorted_of(before)
        removed = data.draw(st.sets(st.sampled_from(sorted(old)))) if old else set()
        replaced = data.draw(st.sets(st.sampled_from(sorted(old)))) if old else set()
        kept = {key: entry for key, entry in old.items() if key not in removed}
        fresh = sorted_of({**added, **dict.fromkeys(replaced - removed, -1)})
        new = {key: {**kept, **fresh}[key] for key in sorted({**kept, **fresh})}
        base = KeyedHash.of(old)
        digest_before = base.hexdigest()
        updated = base.updated(new)
        assert updated.hexdigest() == KeyedHash.of(new).hexdigest()
        assert updated.hexdigest() == recomputed(list(new.items()))
        assert base.hexdigest() == digest_before  # the earlier hash is left as it was
        assert updated.entries is new

    def test_a_small_change_re_encodes_only_its_run(self, monkeypatch) -> None:
        """One replaced entry among thousands encodes that entry's run, nothing else."""
        old = {f"org-{n:05d}": {"n": n} for n in range(5000)}
        base = KeyedHash.of(old)
        new = dict(old)
        new["org-02500"] = {"n": -1}
        encoded: list[int] = []
        real = hashlib.sha256

        def counting(data: bytes = b"") -> Any:
            encoded.append(len(data))
            return real(data)

        monkeypatch.setattr(hashlib, "sha256", counting)
        updated = base.updated(new)
        monkeypatch.undo()
        assert len(encoded) == 1  # the run of org-02500; the digest hashes at hexdigest
        assert encoded[0] < len(canonical(list(new.values()))) // 100
        assert updated.hexdigest() == KeyedHash.of(new).hexdigest() != base.hexdigest()
