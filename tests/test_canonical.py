"""The canonical encoding: every payload round-trips, and equal values give equal bytes."""

from __future__ import annotations

import hashlib
import json
import random
import string
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from events.codec import CANONICAL, canonical, data_hash, decode_payload
from events.envelope import Metadata, Source
from events.errors import InvalidEvent
from events.intake import check_rules, parse_event
from events.payloads import (
    PAYLOAD_TYPES,
    EventCorrected,
    EventRetracted,
    FacilityPlanAnnounced,
    InitiativeLaunched,
    InvestmentCommitted,
    Location,
    MemorandumSigned,
    Money,
    OrganizationRegistered,
    PartnershipAgreed,
    Payload,
    SiteAcquired,
)
from events.rows import encode_new

GOLDEN_DATA_HASH = "1ee18eafc262047315d0211ca7fd497f7ec67fcf84cb43b03c4d70d336abe4fd"
"""The data hash of the fixed event in `TestStableHash`, computed once and pinned."""

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

slugs = st.lists(
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8), min_size=1, max_size=4
).map("-".join)
countries = st.text(string.ascii_uppercase, min_size=2, max_size=2)
currencies = st.text(string.ascii_uppercase, min_size=3, max_size=3)
labels = st.text(min_size=1, max_size=40)
texts = st.text(min_size=1, max_size=200)
amounts = st.one_of(
    st.integers(0, 10**25).map(Decimal),
    st.decimals(min_value=0, max_value=Decimal("1e12"), places=2, allow_nan=False),
    st.decimals(min_value=0, max_value=Decimal("1e6"), places=6, allow_nan=False),
).filter(lambda d: len(d.as_tuple().digits) <= 30)
money = st.builds(Money, amount=amounts, currency=currencies)
locations = st.builds(
    Location, country=countries, city=st.none() | labels, region=st.none() | labels
)
event_ids = st.uuids().map(str)
party_lists = st.lists(slugs, min_size=2, max_size=5, unique=True).map(tuple)  # intake: once each
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
partial_dates = st.dates().flatmap(
    lambda d: st.sampled_from([f"{d.year:04d}", f"{d.year:04d}-{d.month:02d}", d.isoformat()])
)
sources = st.builds(
    Source,
    url=st.text(min_size=1, max_size=80),
    publisher=st.none() | labels,
    published_on=st.none() | partial_dates,
    title=st.none() | labels,
    quote=st.none() | texts,
)

PAYLOADS: dict[str, st.SearchStrategy[Any]] = {
    "organization_registered": st.builds(
        OrganizationRegistered,
        id=slugs,
        name=labels,
        country=st.none() | countries,
        kind=st.none() | labels,
        parent=st.none() | slugs,
        aliases=st.lists(labels, max_size=3).map(tuple),
    ),
    "site_acquired": st.builds(
        SiteAcquired,
        site=slugs,
        name=labels,
        location=locations,
        acquirer=slugs,
        seller=st.none() | slugs,
        price=st.none() | money,
    ),
    "memorandum_signed": st.builds(
        MemorandumSigned,
        agreement=slugs,
        parties=party_lists,
        scope=st.lists(labels, max_size=3).map(tuple),
        site=st.none() | slugs,
    ),
    "facility_plan_announced": st.builds(
        FacilityPlanAnnounced,
        org=slugs,
        site=st.none() | slugs,
        location=st.none() | locations,
        purpose=st.none() | texts,
    ),
    "initiative_launched": st.builds(
        InitiativeLaunched,
        org=slugs,
        initiative=slugs,
        name=labels,
        site=st.none() | slugs,
        description=st.none() | texts,
    ),
    "investment_committed": st.builds(
        InvestmentCommitted,
        org=slugs,
        site=slugs,
        amount=money,
        location=st.none() | locations,
        jobs=st.none() | st.integers(0, 10_000_000_000),
        jobs_by_year=st.none() | st.integers(1900, 2200),
        modalities=st.lists(labels, max_size=3).map(tuple),
        capabilities=st.lists(labels, max_size=3).map(tuple),
    ),
    "partnership_agreed": st.builds(
        PartnershipAgreed,
        agreement=slugs,
        parties=party_lists,
        scope=st.lists(labels, max_size=3).map(tuple),
        initiative=st.none() | slugs,
        site=st.none() | slugs,
    ),
    "event_corrected": st.builds(
        EventCorrected,
        corrects=event_ids,
        replacement=st.dictionaries(st.text(max_size=10), json_values, max_size=6),
        reason=texts,
    ),
    "event_retracted": st.builds(EventRetracted, retracts=event_ids, reason=texts),
}


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def test_every_payload_type_has_a_strategy() -> None:
    """The strategies cover every payload type the log knows."""
    assert set(PAYLOADS) == set(PAYLOAD_TYPES)


class TestRoundTrip:
    @pytest.mark.parametrize("event_type", sorted(PAYLOADS))
    @SETTINGS
    @given(data=st.data())
    def test_decode_of_encode_is_identity(self, event_type: str, data: st.DataObject) -> None:
        """`decode_payload(type, canonical(x))` gives back `x`, and re-encodes to the same bytes."""
        value: Payload = data.draw(PAYLOADS[event_type])
        encoded = canonical(value)
        decoded = decode_payload(event_type, encoded)
        assert decoded == value
        assert type(decoded) is type(value)
        assert canonical(decoded) == encoded

    @SETTINGS
    @given(source=sources)
    def test_sources_round_trip(self, source: Source) -> None:
        """A source decodes from its canonical bytes to an equal source."""
        assert msgspec.json.decode(canonical(source), type=Source) == source


class TestEqualValuesEqualBytes:
    @pytest.mark.parametrize("event_type", sorted(PAYLOADS))
    @SETTINGS
    @given(data=st.data(), seed=st.integers(0, 2**32))
    def test_key_order_never_matters(self, event_type: str, data: st.DataObject, seed: int) -> None:
        """A payload sent with keys, or built with fields, in any order encodes alike."""
        value: Payload = data.draw(PAYLOADS[event_type])
        rng = random.Random(seed)
        plain = msgspec.to_builtins(value)
        respelled = json.dumps(shuffled(plain, rng), indent=rng.choice([None, 1])).encode()
        assert canonical(decode_payload(event_type, respelled)) == canonical(value)
        fields = list(msgspec.structs.asdict(value).items())
        rng.shuffle(fields)
        assert canonical(type(value)(**dict(fields))) == canonical(value)

    @pytest.mark.parametrize("event_type", sorted(PAYLOADS))
    @SETTINGS
    @given(data=st.data())
    def test_canonical_is_sorted_compact_utf8(self, event_type: str, data: st.DataObject) -> None:
        """The canonical bytes are JSON with sorted keys, no whitespace, UTF-8 (not escaped)."""
        encoded = canonical(data.draw(PAYLOADS[event_type]))
        expected = json.dumps(
            json.loads(encoded), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert encoded == expected.encode()

    @SETTINGS
    @given(data=st.data(), seed=st.integers(0, 2**32))
    def test_equal_wire_events_have_equal_hashes(self, data: st.DataObject, seed: int) -> None:
        """Two spellings of one wire event give the same canonical parts and data hash."""
        event_type = data.draw(st.sampled_from(sorted(set(PAYLOADS) - {"event_corrected"})))
        payload = data.draw(PAYLOADS[event_type])
        assume(follows_the_rules(payload))  # of the intake, beyond the types: parse would refuse
        wire = {
            "event_id": data.draw(event_ids),
            "stream": data.draw(slugs),
            "type": event_type,
            "occurred_on": data.draw(partial_dates),
            "data": msgspec.to_builtins(payload),
            "source": msgspec.to_builtins(data.draw(sources)),
            "metadata": {"tags": ["a", "b"], "correlation_id": "c-1"},
        }
        rng = random.Random(seed)
        first = encode_new(parse_event(json.dumps(wire)))
        second = encode_new(parse_event(json.dumps(shuffled(wire, rng), indent=2)))
        assert first == second
        assert first.data_hash == data_hash(first.data, first.source)


def follows_the_rules(payload: Payload) -> bool:
    """Whether the intake's rules beyond the types (`check_rules`) take this payload."""
    try:
        check_rules(payload)
    except InvalidEvent:
        return False
    return True


class TestStableHash:
    def test_a_known_payload_has_a_known_data_hash(self) -> None:
        """The data hash of a fixed event never changes: canonical bytes are a contract."""
        payload = SiteAcquired(
            site="east-syracuse",
            name="Former Bristol Myers Squibb production facility",
            location=Location(city="East Syracuse", region="New York", country="US"),
            acquirer="lotte-biologics",
            seller="bristol-myers-squibb",
            price=Money(amount=Decimal(160_000_000), currency="USD"),
        )
        source = Source(
            url="urn:seed:lotte-merck-announcement", quote="A \u201cquoted\u201d caf\u00e9."
        )
        data, src = canonical(payload), canonical(source)
        assert data == (
            b'{"acquirer":"lotte-biologics","location":{"city":"East Syracuse","country":"US",'
            b'"region":"New York"},"name":"Former Bristol Myers Squibb production facility",'
            b'"price":{"amount":"160000000","currency":"USD"},"seller":"bristol-myers-squibb",'
            b'"site":"east-syracuse"}'
        )
        assert src == (
            b'{"published_on":null,"publisher":null,'
            b'"quote":"A \xe2\x80\x9cquoted\xe2\x80\x9d caf\xc3\xa9.","title":null,'
            b'"url":"urn:seed:lotte-merck-announcement"}'
        )
        whole = b'{"data":' + data + b',"source":' + src + b"}"
        assert data_hash(data, src) == hashlib.sha256(whole).hexdigest() == GOLDEN_DATA_HASH

    def test_metadata_defaults_encode_alike(self) -> None:
        """Default metadata has one canonical form, whether given or omitted."""
        assert CANONICAL.encode(Metadata()) == CANONICAL.encode(Metadata(tags=()))
        assert CANONICAL.encode(Metadata()) == (
            b'{"causation_id":null,"correlation_id":null,"recorded_by":null,"tags":[]}'
        )
