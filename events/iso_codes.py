"""ISO 3166-1 alpha-2 countries and ISO 4217 currencies a new event may use.

The payload types check only the shape of a code (two or three upper-case letters), so a
row stored before this check still decodes; a new event's codes must also be ones ISO
assigned (`events.intake.check_rules`): "UK" and "GB" would otherwise be two countries in
every summary, and "XYZ" a currency whose totals nobody can convert.

The ledger records the past, so codes ISO has withdrawn count too (Croatia's kuna for a
2022 price, the Netherlands Antilles for a 2005 site), and the set only grows: the codes
below (ISO 3166-1 and 3166-3 and ISO 4217 as `pycountry` 26.2.16 ships them, and ISO 4217's
withdrawn codes) are kept whatever `pycountry` is installed, and any code a newer
`pycountry` adds is taken as well. Two replicas thus never disagree about a stored event.
"""

from __future__ import annotations

import functools

import pycountry

COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AN AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM
    BN BO BQ BR BS BT BU BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CS CT CU CV
    CW CX CY CZ DD DE DJ DK DM DO DY DZ EC EE EG EH ER ES ET FI FJ FK FM FO FQ FR FX GA
    GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU HV ID IE IL
    IM IN IO IQ IR IS IT JE JM JO JP JT KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK
    LR LS LT LU LV LY MA MC MD ME MF MG MH MI MK ML MM MN MO MP MQ MR MS MT MU MV MW MX
    MY MZ NA NC NE NF NG NH NI NL NO NP NQ NR NT NU NZ OM PA PC PE PF PG PH PK PL PM PN
    PR PS PT PU PW PY PZ QA RE RH RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO
    SR SS ST SU SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TP TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VD VE VG VI VN VU WF WK WS YD YE YT YU ZA ZM ZR ZW
    """.split()  # noqa: SIM905 - a table of codes, read as words
)
"""ISO 3166-1 alpha-2 codes, current (pycountry 26.2.16) and formerly used (ISO 3166-3)."""

CURRENCIES = frozenset(
    """
    ADP AED AFA AFN ALK ALL AMD ANG AOA AOK AON AOR ARA ARP ARS ARY ATS AUD AWG AYM AZM
    AZN BAD BAM BBD BDT BEC BEF BEL BGJ BGK BGL BHD BIF BMD BND BOB BOP BOV BRB BRC BRE
    BRL BRN BRR BSD BTN BUK BWP BYB BYN BYR BZD CAD CDF CHC CHE CHF CHW CLF CLP CNY COP
    COU CRC CSD CSJ CSK CUC CUP CVE CYP CZK DDM DEM DJF DKK DOP DZD ECS ECV EEK EGP ERN
    ESA ESB ESP ETB EUR FIM FJD FKP FRF GBP GEK GEL GHC GHP GHS GIP GMD GNE GNF GNS GQE
    GRD GTQ GWE GWP GYD HKD HNL HRD HRK HTG HUF IDR IEP ILP ILR ILS INR IQD IRR ISJ ISK
    ITL JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAJ LAK LBP LKR LRD LSL LSM LTL
    LTT LUC LUF LUL LVL LVR LYD MAD MDL MGA MGF MKD MLF MMK MNT MOP MRO MRU MTL MTP MUR
    MVQ MVR MWK MXN MXP MXV MYR MZE MZM MZN NAD NGN NIC NIO NLG NOK NPR NZD OMR PAB PEH
    PEI PEN PES PGK PHP PKR PLN PLZ PTE PYG QAR RHD ROK ROL RON RSD RUB RUR RWF SAR SBD
    SCR SDD SDG SDP SEK SGD SHP SIT SKK SLE SLL SOS SRD SRG SSP STD STN SUR SVC SYP SZL
    THB TJR TJS TMM TMT TND TOP TPE TRL TRY TTD TWD TZS UAH UAK UGS UGW UGX USD USN USS
    UYI UYN UYP UYU UYW UZS VEB VED VEF VES VNC VND VUV WST XAD XAF XAG XAU XBA XBB XBC
    XBD XCD XCG XDR XEU XFO XFU XOF XPD XPF XPT XSU XUA YDD YER YUD YUM YUN ZAL ZAR ZMK
    ZMW ZRN ZRZ ZWC ZWD ZWG ZWL ZWN ZWR
    """.split()  # noqa: SIM905 - a table of codes, read as words
)
"""ISO 4217 codes, current (pycountry 26.2.16) and withdrawn, but for `NOT_MONEY`."""

NOT_MONEY = frozenset({"XTS", "XXX"})
"""ISO 4217's codes for testing and for "no currency": no amount is committed in them."""

HINTS = {"UK": "GB", "EL": "GR"}
"""Codes people write for a country whose ISO 3166-1 code differs."""


@functools.cache
def countries() -> frozenset[str]:
    """The country codes taken: those above and any the installed `pycountry` knows."""
    known = {country.alpha_2 for country in pycountry.countries}
    known |= {getattr(old, "alpha_2", "") for old in pycountry.historic_countries}
    return COUNTRIES | (known - {""})


@functools.cache
def currencies() -> frozenset[str]:
    """The currency codes taken: those above and any the installed `pycountry` knows."""
    return (CURRENCIES | {currency.alpha_3 for currency in pycountry.currencies}) - NOT_MONEY


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
