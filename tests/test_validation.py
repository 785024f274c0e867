"""Validation at intake: what `parse_event` refuses, and the JSON path each error names."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from events.errors import InvalidEvent
from events.intake import LineError, parse_event, parse_ndjson
from events.payloads import Money, SiteAcquired

EVENT_ID = "0190f1a2-7b3c-7d4e-8f60-123456789abc"


def valid() -> dict[str, Any]:
    """A valid wire event with every kind of field: ids, money, a location, a full source."""
    return {
        "event_id": EVENT_ID,
        "stream": "site-east-syracuse",
        "type": "site_acquired",
        "occurred_on": "2022",
        "sequence": 1,
        "data": {
            "site": "east-syracuse",
            "name": "Former Bristol Myers Squibb production facility",
            "location": {"city": "East Syracuse", "region": "New York", "country": "US"},
            "acquirer": "lotte-biologics",
            "seller": "bristol-myers-squibb",
            "price": {"amount": "160000000", "currency": "USD"},
        },
        "source": {
            "url": "urn:seed:lotte-merck-announcement",
            "publisher": "A trade paper",
            "published_on": "2024-06-03",
            "title": "Lotte and Merck",
            "quote": "Earlier that same year, the conglomerate purchased the site.",
        },
        "metadata": {"correlation_id": "c-1", "tags": ["seed"]},
    }


_MISSING = object()


def with_value(path: str, value: Any) -> bytes:
    """The valid event with the value at `path` (`$.data.price.amount`) replaced or removed."""
    event = copy.deepcopy(valid())
    keys: list[str | int] = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]$]+", path)]
    node: Any = event
    for key in keys[:-1]:
        node = node[key]
    if value is _MISSING:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return json.dumps(event).encode()


def refused(path: str, value: Any) -> InvalidEvent:
    """The error `parse_event` raises for the event with `value` at `path`."""
    with pytest.raises(InvalidEvent) as caught:
        parse_event(with_value(path, value))
    assert caught.value.message
    return caught.value


class TestTheValidEvent:
    def test_it_parses_into_typed_values(self) -> None:
        """The valid event parses, money as a Decimal, the payload as its Struct."""
        event = parse_event(json.dumps(valid()).encode())
        assert isinstance(event.data, SiteAcquired)
        assert event.data.price == Money(amount=Decimal(160_000_000), currency="USD")
        assert (event.event_id, event.occurred_on, event.sequence) == (EVENT_ID, "2022", 1)

    def test_an_id_is_generated_when_missing(self) -> None:
        """Without an event_id the ledger chooses a UUIDv7."""
        event = parse_event(with_value("$.event_id", _MISSING))
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", event.event_id
        )

    @pytest.mark.parametrize("claimed", [None, "mallory"])
    def test_recorded_by_is_the_ledgers(self, claimed: str | None) -> None:
        """`metadata.recorded_by` is the ledger's value whatever the client sent."""
        raw = with_value("$.metadata.recorded_by", claimed)
        assert parse_event(raw).metadata.recorded_by is None
        assert parse_event(raw, recorded_by="alice").metadata.recorded_by == "alice"

    @pytest.mark.parametrize("amount", ["0", "0.5", "326000000", "1" * 30, "0.000001"])
    def test_valid_amounts_are_accepted(self, amount: str) -> None:
        """Non-negative finite amounts of at most 30 digits are money."""
        event = parse_event(with_value("$.data.price.amount", amount))
        assert isinstance(event.data, SiteAcquired)
        assert event.data.price is not None
        assert event.data.price.amount == Decimal(amount)


class TestDates:
    @pytest.mark.parametrize(
        "occurred_on", ["2024", "2024-02", "2024-02-29", "2000-02-29", "1999-12-31"]
    )
    def test_partial_dates_are_accepted(self, occurred_on: str) -> None:
        """A year, a month or a real day is a valid `occurred_on`, kept as given."""
        assert parse_event(with_value("$.occurred_on", occurred_on)).occurred_on == occurred_on

    @pytest.mark.parametrize(
        "occurred_on",
        [
            "2024-02-30",
            "2023-02-29",
            "2024-04-31",
            "2024-13",
            "2024-00",
            "2024-01-00",
            "24",
            "2024-1-01",
            "2024-01-1",
            "0000",
            "",
            "2024-02-29T00:00:00",
            "2024/02/29",
            20240229,
        ],
    )
    @pytest.mark.parametrize("path", ["$.occurred_on", "$.source.published_on"])
    def test_impossible_or_malformed_dates_are_refused(self, path: str, occurred_on: Any) -> None:
        """A date that is not on the calendar or not in the form YYYY[-MM[-DD]] names its field."""
        assert refused(path, occurred_on).path == path

    @pytest.mark.parametrize(
        ("value", "message"),
        [("2024-02-30", "not a real date"), ("2024-13", "no month 13"), ("24", "regex")],
    )
    def test_date_messages_say_what_is_wrong(self, value: str, message: str) -> None:
        """The message says why the date is refused."""
        assert message in refused("$.occurred_on", value).message


class TestNoTrailingNewline:
    """A pattern's final `$` also matches before a trailing newline in Python: not here."""

    @pytest.mark.parametrize(
        "path",
        [
            "$.event_id",
            "$.stream",
            "$.occurred_on",
            "$.source.published_on",
            "$.data.site",
            "$.data.acquirer",
            "$.data.location.country",
            "$.data.price.currency",
        ],
    )
    def test_a_value_with_a_newline_after_it_is_refused(self, path: str) -> None:
        """A value and a newline is not the value: its path is named, with no lookahead shown."""
        node: Any = valid()
        for key in re.findall(r"[^.\[\]$]+", path):
            node = node[key]
        error = refused(path, node + "\n")
        assert error.path == path
        assert "(?!" not in error.message

    @pytest.mark.parametrize("path", ["$.occurred_on", "$.source.published_on"])
    def test_digits_of_other_scripts_are_not_a_date(self, path: str) -> None:
        """Full-width digits are not a date: dates sort as text, so ASCII digits only."""
        assert refused(path, "\uff12\uff10\uff12\uff14").path == path


class TestMoney:
    @pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U$D", "", 840, None])
    def test_bad_currencies_are_refused(self, currency: Any) -> None:
        """A currency that is not three upper-case letters names `price.currency`."""
        assert refused("$.data.price.currency", currency).path == "$.data.price.currency"

    @pytest.mark.parametrize(
        "amount",
        [
            "-1",
            "-0.01",
            "NaN",
            "nan",
            "sNaN",
            "Infinity",
            "-Infinity",
            "inf",
            "abc",
            "",
            "1" * 31,
            None,
            True,
        ],
    )
    def test_bad_amounts_are_refused(self, amount: Any) -> None:
        """A negative, infinite, NaN, oversized or non-numeric amount names `price.amount`."""
        assert refused("$.data.price.amount", amount).path == "$.data.price.amount"

    @pytest.mark.parametrize(
        ("amount", "message"), [("-1", "negative"), ("NaN", "finite"), ("Infinity", "finite")]
    )
    def test_amount_messages_say_what_is_wrong(self, amount: str, message: str) -> None:
        """The message of a refused amount says why."""
        assert message in refused("$.data.price.amount", amount).message

    def test_an_investment_amount_names_its_path(self) -> None:
        """Money nested under another name gives that name's path."""
        event = {
            "stream": "site-daejeon",
            "type": "investment_committed",
            "occurred_on": "2024-03",
            "data": {
                "org": "milliporesigma",
                "site": "daejeon",
                "amount": {"amount": "-326", "currency": "USD"},
            },
            "source": {"url": "urn:x"},
        }
        with pytest.raises(InvalidEvent) as caught:
            parse_event(json.dumps(event))
        assert caught.value.path == "$.data.amount.amount"


class TestIsoCodes:
    """Codes of the right shape that ISO never assigned are refused at intake, naming the field."""

    @pytest.mark.parametrize(("code", "hint"), [("UK", "use GB"), ("ZZ", None), ("XK", None)])
    def test_unassigned_countries_are_refused(self, code: str, hint: str | None) -> None:
        error = refused("$.data.location.country", code)
        assert error.path == "$.data.location.country"
        assert "ISO 3166-1" in error.message
        assert hint is None or hint in error.message

    @pytest.mark.parametrize("code", ["XYZ", "XXX", "XTS", "ABC"])
    def test_unassigned_currencies_are_refused(self, code: str) -> None:
        error = refused("$.data.price.currency", code)
        assert (error.path, "ISO 4217" in error.message) == ("$.data.price.currency", True)

    def test_an_organization_country_and_an_investment_currency_are_checked_too(self) -> None:
        org = {
            "stream": "org-acme",
            "type": "organization_registered",
            "occurred_on": "2024",
            "data": {"id": "acme", "name": "Acme", "country": "UK"},
            "source": {"url": "urn:x"},
        }
        with pytest.raises(InvalidEvent) as caught:
            parse_event(json.dumps(org))
        assert caught.value.path == "$.data.country"
        investment = {
            "stream": "site-x",
            "type": "investment_committed",
            "occurred_on": "2024",
            "data": {"org": "acme", "site": "x", "amount": {"amount": "1", "currency": "EURO"[:3]}},
            "source": {"url": "urn:x"},
        }
        assert parse_event(json.dumps(investment)).data.amount.currency == "EUR"  # type: ignore[attr-defined]
        investment["data"]["amount"]["currency"] = "EUX"  # type: ignore[index]
        with pytest.raises(InvalidEvent) as caught:
            parse_event(json.dumps(investment))
        assert caught.value.path == "$.data.amount.currency"

    @pytest.mark.parametrize(
        ("country", "currency"),
        [
            ("GB", "GBP"),
            ("KR", "KRW"),
            ("CH", "CHF"),
            ("HR", "HRK"),  # the kuna, withdrawn in 2023: a 2022 price was in it (a review)
            ("AN", "ANG"),  # the Netherlands Antilles (ISO 3166-3) and their guilder
            ("DE", "DEM"),
            ("CW", "XCG"),  # new in 2025
        ],
    )
    def test_assigned_codes_are_accepted(self, country: str, currency: str) -> None:
        event = json.loads(with_value("$.data.location.country", country))
        event["data"]["price"]["currency"] = currency
        data = parse_event(json.dumps(event)).data
        assert isinstance(data, SiteAcquired)
        assert (data.location.country, data.price and data.price.currency) == (country, currency)


def test_the_codes_taken_only_grow_whatever_pycountry_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `pycountry` listing fewer codes still takes every code the ledger took before.

    (An upgrade that drops a withdrawn code must not make two replicas disagree.)
    """
    import pycountry  # noqa: PLC0415 - only this test replaces its tables

    from events import iso_codes  # noqa: PLC0415 - its caches are cleared around the test

    for table in ("countries", "historic_countries", "currencies"):
        monkeypatch.setattr(pycountry, table, [])
    iso_codes.countries.cache_clear()
    iso_codes.currencies.cache_clear()
    try:
        assert iso_codes.country_error("HR") is None
        assert iso_codes.country_error("YU") is None
        assert iso_codes.currency_error("HRK") is None
        assert iso_codes.currency_error("EUR") is None
        assert iso_codes.currency_error("XXX") is not None
    finally:
        iso_codes.countries.cache_clear()
        iso_codes.currencies.cache_clear()


class TestIdentifiers:
    @pytest.mark.parametrize(
        "value",
        [
            "East-Syracuse",
            "east syracuse",
            "east_syracuse",
            "-east",
            "east-",
            "east--syracuse",
            "",
            "é",
            "x" * 121,
        ],
    )
    @pytest.mark.parametrize("path", ["$.data.site", "$.data.acquirer", "$.data.seller"])
    def test_bad_slugs_are_refused(self, path: str, value: str) -> None:
        """Ids with upper case, spaces, other punctuation or too many characters name the field."""
        assert refused(path, value).path == path

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            ("$.event_id", "0190F1A2-7B3C-7D4E-8F60-123456789ABC"),
            ("$.event_id", "not-a-uuid"),
            ("$.stream", "Site East"),
            ("$.stream", "site east"),
            ("$.data.location.country", "usa"),
            ("$.data.location.country", "us"),
            ("$.sequence", -1),
            ("$.sequence", "1"),
            ("$.source.quote", ""),
            ("$.source.quote", "q" * 10_001),
            ("$.source.url", ""),
            ("$.data.name", ""),
            ("$.occurred_on", None),
            ("$.metadata.tags", ["ok", ""]),
        ],
    )
    def test_other_bad_fields_name_their_path(self, path: str, value: Any) -> None:
        """Each malformed envelope or payload field names itself."""
        expected = "$.metadata.tags[1]" if path == "$.metadata.tags" else path
        assert refused(path, value).path == expected


class TestShape:
    @pytest.mark.parametrize(
        "parent", ["$", "$.data", "$.source", "$.data.location", "$.data.price", "$.metadata"]
    )
    def test_unknown_fields_are_refused(self, parent: str) -> None:
        """A field the schema does not know is refused with its own path."""
        path = f"{parent}.surprise"
        error = refused(path, 1)
        assert error.path == path
        assert "unknown field" in error.message

    @pytest.mark.parametrize(
        "path",
        [
            "$.stream",
            "$.type",
            "$.occurred_on",
            "$.data",
            "$.source",
            "$.data.site",
            "$.data.location.country",
            "$.source.url",
        ],
    )
    def test_missing_required_fields_are_named(self, path: str) -> None:
        """A required field left out is named by its path."""
        error = refused(path, _MISSING)
        assert error.path == path
        assert "missing required field" in error.message

    @pytest.mark.parametrize("event_type", ["site_bought", "Site_Acquired", "", "event", 7])
    def test_unknown_types_are_refused(self, event_type: Any) -> None:
        """A type that is not one of the payload tags names `$.type`."""
        assert refused("$.type", event_type).path == "$.type"

    def test_data_of_another_type_is_refused(self) -> None:
        """Data in the shape of another type is checked against the declared type."""
        assert refused("$.type", "memorandum_signed").path == "$.data.name"

    @pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'"event"', b'{"stream": "a"'])
    def test_what_is_not_an_event_object_is_refused(self, raw: bytes) -> None:
        """Bytes that are not a JSON object are refused at the root."""
        with pytest.raises(InvalidEvent) as caught:
            parse_event(raw)
        assert caught.value.path == "$"


class TestNdjson:
    def test_the_bad_line_is_numbered(self) -> None:
        """An NDJSON stream fails at its first bad line, with that line's number and path."""
        good = json.dumps(valid()).encode()
        with pytest.raises(LineError) as caught:
            parse_ndjson([good, b"", with_value("$.data.price.currency", "usd"), good])
        assert (caught.value.line, caught.value.path) == (3, "$.data.price.currency")
        assert str(caught.value).startswith("line 3: $.data.price.currency: ")

    def test_blank_lines_are_skipped(self) -> None:
        """Blank lines between events are ignored."""
        good = json.dumps(valid()).encode()
        assert (
            len(
                parse_ndjson(
                    [
                        good,
                        b"  \n",
                        good.replace(EVENT_ID.encode(), EVENT_ID[:-3].encode() + b"def"),
                    ]
                )
            )
            == 2
        )
