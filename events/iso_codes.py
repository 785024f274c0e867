"""ISO 3166-1 alpha-2 countries and ISO 4217 currencies, as `pycountry` ships them.

The payload types check only the shape of a code (two or three upper-case letters), so a
row stored before this check still decodes; a new event's codes must also be assigned ones
(`events.intake.check_rules`): "UK" and "GB" would otherwise be two countries in every
summary, and "XYZ" a currency whose totals nobody can convert.
"""

from __future__ import annotations

import functools

import pycountry

NOT_MONEY = frozenset({"XTS", "XXX"})
"""ISO 4217's codes for testing and for "no currency": no amount is committed in them."""

HINTS = {"UK": "GB", "EL": "GR"}
"""Codes people write for a country whose ISO 3166-1 code differs."""


@functools.cache
def countries() -> frozenset[str]:
    """Every officially assigned ISO 3166-1 alpha-2 code."""
    return frozenset(country.alpha_2 for country in pycountry.countries)


@functools.cache
def currencies() -> frozenset[str]:
    """Every ISO 4217 currency code but those of `NOT_MONEY`."""
    return frozenset(currency.alpha_3 for currency in pycountry.currencies) - NOT_MONEY


def country_error(code: str) -> str | None:
    """Why `code` is not a country code, or None if it is one."""
    if code in countries():
        return None
    hint = HINTS.get(code)
    also = f" (for that country, use {hint})" if hint else ""
    return f"{code} is not an ISO 3166-1 alpha-2 country code{also}"


def currency_error(code: str) -> str | None:
    """Why `code` is not a currency code, or None if it is one."""
    if code in currencies():
        return None
    return f"{code} is not an ISO 4217 currency code"
