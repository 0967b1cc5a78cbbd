"""Phone numbers: every format a contact file holds -> E.164, or a reason."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from bulkcall_core import phones
from bulkcall_core.errors import PlanError
from bulkcall_core.phones import PhoneChecker, normalize_phone

# (raw value, selected country, E.164) — national, international and messy writings.
VALID_WRITINGS = [
    # United States
    ("(415) 555-0100", "US", "+14155550100"),
    ("415-555-0100", "US", "+14155550100"),
    ("415.555.0100", "US", "+14155550100"),
    ("415 555 0100", "US", "+14155550100"),
    ("4155550100", "US", "+14155550100"),
    ("1 (415) 555-0100", "US", "+14155550100"),
    ("+1 415-555-0100", "US", "+14155550100"),
    ("+1 (415) 555-0100", "GB", "+14155550100"),
    ("001 415 555 0100", "GB", "+14155550100"),
    ("011 44 7400 123456", "US", "+447400123456"),
    ("tel:+1-415-555-0100", "US", "+14155550100"),
    ("TEL:+14155550100", "DE", "+14155550100"),
    ("'+14155550100", "US", "+14155550100"),
    ("'4155550100", "US", "+14155550100"),
    ('="4155550100"', "US", "+14155550100"),
    ("4155550106.0", "US", "+14155550106"),
    ("  +1 415 555 0100  ", "US", "+14155550100"),
    ("+1\u00a0415\u00a0555\u00a00100", "US", "+14155550100"),
    (
        "\uff0b\uff11 \uff14\uff11\uff15 \uff15\uff15\uff15 \uff10\uff11\uff10\uff10",
        "US",
        "+14155550100",
    ),
    ("1-800-FLOWERS", "US", "+18003569377"),
    ("415-555-0100 (mobile)", "US", "+14155550100"),
    ("Mobile: 415-555-0100", "US", "+14155550100"),
    ("415/555-0100", "US", "+14155550100"),
    ("4 1 5 5 5 5 0 1 0 0", "US", "+14155550100"),
    ("\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660", "US", "+14155550100"),
    # United Kingdom
    ("07400 123456", "GB", "+447400123456"),
    ("07400123456", "GB", "+447400123456"),
    ("+44 (0)7400 123456", "GB", "+447400123456"),
    ("+44 7400 123456", "US", "+447400123456"),
    ("0044 7400 123456", "FR", "+447400123456"),
    ("020 7946 0000", "GB", "+442079460000"),
    # Germany
    ("030 123456", "DE", "+4930123456"),
    ("0151 23456789", "DE", "+4915123456789"),
    ("+49 30 123456", "US", "+4930123456"),
    ("0049 (0)30 123456", "DE", "+4930123456"),
    ("030/123456", "DE", "+4930123456"),
    ("+49 (0)30 / 1234 5678", "DE", "+493012345678"),
    # France
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("01.23.45.67.89", "FR", "+33123456789"),
    ("+33 6 12 34 56 78", "GB", "+33612345678"),
    # India
    ("098765 43210", "IN", "+919876543210"),
    ("9876543210", "IN", "+919876543210"),
    ("+91 98765-43210", "US", "+919876543210"),
    # Brazil
    ("(11) 96123-4567", "BR", "+5511961234567"),
    ("+55 11 96123-4567", "US", "+5511961234567"),
    # Australia
    ("0412 345 678", "AU", "+61412345678"),
    ("(02) 9876 5432", "AU", "+61298765432"),
    ("+61 412 345 678", "GB", "+61412345678"),
    # Italy keeps its leading zero after the code
    ("06 1234 5678", "IT", "+390612345678"),
    ("+39 06 1234 5678", "US", "+390612345678"),
]


@pytest.mark.parametrize(("raw", "country", "e164"), VALID_WRITINGS)
def test_valid_writings_become_e164(raw: str, country: str, e164: str) -> None:
    """Every usual writing of a number, national or international, ends as one E.164."""
    check = normalize_phone(raw, country=country)
    assert (check.phone, check.reason) == (e164, None)


# Numbers that start with their country code, without + or 00.
WITH_COUNTRY_CODE = [
    ("447400123456", "US", "+447400123456"),
    ("447400123456", "GB", "+447400123456"),
    ("14155550105", "US", "+14155550105"),
    ("14155550105", "DE", "+14155550105"),
    ("1 415 555 0105", "FR", "+14155550105"),
    ("(1) 415-555-0105", "GB", "+14155550105"),
    ("4930123456", "US", "+4930123456"),
    ("919876543210", "US", "+919876543210"),
    ("5511961234567", "US", "+5511961234567"),
    ("61412345678", "US", "+61412345678"),
    ("33612345678.0", "US", "+33612345678"),
    ("+447400123456", "US", "+447400123456"),
    ("00447400123456", "US", "+447400123456"),
]


@pytest.mark.parametrize(("raw", "country", "e164"), WITH_COUNTRY_CODE)
def test_numbers_with_country_code_ignore_the_selected_country(
    raw: str, country: str, e164: str
) -> None:
    """With the box checked, '447400123456' is +447400123456 whatever country is selected."""
    check = normalize_phone(raw, country=country, has_country_code=True)
    assert check.phone == e164


def test_country_code_digits_are_national_digits_when_unchecked() -> None:
    """Unchecked, '447400123456' is a (too long) US national number, not a UK one."""
    check = normalize_phone("447400123456", country="US")
    assert check.phone is None


def test_trunk_zero_with_box_checked_is_read_as_national() -> None:
    """A number starting with 0 cannot start with a country code: read as national."""
    check = normalize_phone("07400 123456", country="GB", has_country_code=True)
    assert check.phone == "+447400123456"


REJECTED = [
    (None, phones.REASON_MISSING),
    ("", phones.REASON_MISSING),
    ("   ", phones.REASON_MISSING),
    ("'", phones.REASON_MISSING),
    ("\u00a0", phones.REASON_MISSING),
    ("abc", phones.REASON_UNPARSEABLE),
    ("n/a", phones.REASON_UNPARSEABLE),
    ("call me", phones.REASON_UNPARSEABLE),
    ("123", phones.REASON_TOO_SHORT),
    ("+1 415 555 0100 999 999", phones.REASON_TOO_LONG),
    ("+999 1234567", phones.REASON_UNKNOWN_COUNTRY_CODE),
    ("+1 415 555 010", phones.REASON_TOO_SHORT),
    ("+1 099 555 0100", phones.REASON_INVALID),
    ("+41 12345678901", phones.REASON_WRONG_LENGTH),
    ("555-0100", phones.REASON_LOCAL_ONLY),
    ("415-555-0100 x123", phones.REASON_EXTENSION),
    ("415-555-0100 ext. 12", phones.REASON_EXTENSION),
    ("415-555-0100, 415-555-0101", phones.REASON_SEVERAL),
    ("415-555-0100 / 415-555-0101", phones.REASON_SEVERAL),
    ("+1 415 555 0100 or +1 415 555 0101", phones.REASON_SEVERAL),
    ("4155550100;4155550101", phones.REASON_SEVERAL),
    ("555-0100 / 555-0101", phones.REASON_SEVERAL),  # 7 + 7 digits: the fewest for two
    ("1.41556E+10", phones.REASON_SCIENTIFIC),
    ("4.15556e9", phones.REASON_SCIENTIFIC),
    ("1,41556E+10", phones.REASON_SCIENTIFIC),
    ("4.155550106E+09", phones.REASON_SCIENTIFIC),
    ("1E10", phones.REASON_SCIENTIFIC),
]


@pytest.mark.parametrize(("raw", "reason"), REJECTED)
def test_unusable_values_get_a_reason(raw: str | None, reason: str) -> None:
    """Missing, unparseable, invalid, too short/long, extensions, Excel notation: a reason."""
    check = normalize_phone(raw, country="US")
    assert (check.phone, check.reason) == (None, reason)


def test_scientific_reason_says_to_reexport_as_text() -> None:
    """The Excel reason tells the user digits are lost and what to do."""
    reason = normalize_phone("1.41556E+10").reason or ""
    assert "digits lost" in reason and "as text" in reason


def test_decimal_other_than_exact_dot_zero_is_not_stripped() -> None:
    """Only an exact '.0' float artefact is removed; '4155550106.5' is not a number."""
    assert normalize_phone("4155550106.5").phone is None
    assert normalize_phone("4155550106.00").phone is None


PREMIUM_AND_SHARED = [
    ("1-900-234-5678", "US", phones.REASON_PREMIUM),
    ("+1 900 555 0100", "GB", phones.REASON_PREMIUM),
    ("09012 345678", "GB", phones.REASON_PREMIUM),
    ("+44 909 8765432", "US", phones.REASON_PREMIUM),
    ("0900 1234567", "DE", phones.REASON_PREMIUM),
    ("0180 12345", "DE", phones.REASON_SHARED_COST),
    ("0891 12 34 56", "FR", phones.REASON_PREMIUM),
    ("0884 01 23 45", "FR", phones.REASON_SHARED_COST),
    ("1900 123 456", "AU", phones.REASON_PREMIUM),
    ("1300 123 456", "AU", phones.REASON_SHARED_COST),
    ("+881 6 12345678", "US", phones.REASON_GLOBAL_NETWORK),
]


@pytest.mark.parametrize(("raw", "country", "reason"), PREMIUM_AND_SHARED)
def test_premium_and_shared_cost_are_blocked_by_default(
    raw: str, country: str, reason: str
) -> None:
    """Toll fraud: premium-rate, shared-cost and satellite numbers are refused."""
    check = normalize_phone(raw, country=country)
    assert (check.phone, check.reason, check.blocked) == (None, reason, True)


@pytest.mark.parametrize(("raw", "country", "reason"), PREMIUM_AND_SHARED)
def test_blocked_numbers_are_allowed_when_blocking_is_off(
    raw: str, country: str, reason: str
) -> None:
    """block_premium=False lets the same numbers through, as E.164."""
    check = normalize_phone(raw, country=country, block_premium=False)
    assert check.phone is not None and check.phone.startswith("+")


def test_example_premium_and_shared_numbers_of_many_countries_are_blocked() -> None:
    """phonenumbers' own example premium/shared-cost number of every region is refused."""
    refused = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.number_type(example) == kind:
                refused.append(normalize_phone(e164).blocked)
    assert len(refused) > 100 and all(refused)


def test_allowed_countries_refuse_other_countries() -> None:
    """A channel limited to US and CA refuses a UK number, naming the allowed list."""
    check = normalize_phone("+44 7400 123456", allowed_countries={"US", "CA"})
    assert check.phone is None
    assert check.reason == "outside the channel's allowed countries (CA, US)"
    assert check.region == "GB" and check.blocked


def test_allowed_countries_accept_listed_countries() -> None:
    """US and Canadian numbers pass a US/CA channel (one calling code, two countries)."""
    allowed = {"us", "ca"}
    assert normalize_phone("+1 415 555 0100", allowed_countries=allowed).phone == "+14155550100"
    assert normalize_phone("+1 416 555 0100", allowed_countries=allowed).region == "CA"


def test_unknown_allowed_country_is_an_error() -> None:
    """A typo in the allowed countries is reported, not silently ignored."""
    with pytest.raises(PlanError, match="'UK'"):
        normalize_phone("+14155550100", allowed_countries={"UK"})


def test_region_of_valid_numbers() -> None:
    """A valid number carries its ISO region."""
    assert normalize_phone("+1 416 555 0100").region == "CA"
    assert normalize_phone("+33 6 12 34 56 78").region == "FR"
    assert normalize_phone("not a number").region is None


def test_checker_caches_each_distinct_value() -> None:
    """A PhoneChecker returns the very same result object for a repeated value."""
    checker = PhoneChecker(country="US")
    first = checker.check("(415) 555-0100")
    assert checker.check("(415) 555-0100") is first
    assert checker.check_all(["(415) 555-0100", None])[1].reason == phones.REASON_MISSING


def test_check_distinct_gives_what_check_all_gives() -> None:
    """check_distinct (planning's path for a factorized column) gives equal results to
    check_all for valid, blocked and rejected values, in order."""
    values = [raw for raw, _ in REJECTED] + ["(415) 555-0100", "1-900-234-5678", "12127077364"]
    assert PhoneChecker().check_distinct(values) == PhoneChecker().check_all(values)


def test_check_distinct_reuses_but_does_not_fill_the_cache() -> None:
    """A value checked before comes from the cache; new values are not kept (each call
    checks them afresh), so a million distinct values do not grow the cache."""
    checker = PhoneChecker()
    first = checker.check("(415) 555-0100")
    assert checker.check_distinct(["(415) 555-0100"])[0] is first
    fresh = checker.check_distinct(["(415) 555-0101"])[0]
    assert checker.check_distinct(["(415) 555-0101"])[0] is not fresh
    assert checker.check("(415) 555-0101") == fresh


def test_numeric_nan_is_missing() -> None:
    """A float NaN (a blank numeric cell) is 'missing', not a crash."""
    assert PhoneChecker().check(float("nan")).reason == phones.REASON_MISSING  # type: ignore[arg-type]


def _reference(text: str, region: str) -> tuple[str | None, str | None, bool]:
    """What phonenumbers itself says: (E.164 when callable, region when valid, blocked)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, None, False
    if number.extension or not phonenumbers.is_valid_number(number):
        return None, None, False
    kind = phonenumbers.number_type(number)
    blocked = kind in (PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST) or (
        number.country_code in phones.GLOBAL_NETWORK_CODES
    )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    number_region = phonenumbers.region_code_for_number(number)
    return (None if blocked else e164), (None if number_region == "001" else number_region), blocked


def _mutations(seed: int) -> list[tuple[str, str]]:
    """For every region: example numbers of each type and random one-digit changes of them,
    written as +E.164, national digits, and national with a trunk 0."""
    rng = random.Random(seed)
    kinds = [
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.VOIP,
    ]
    cases = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        code = phonenumbers.country_code_for_region(region)
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            for _ in range(4):
                digits = list(nsn)
                digits[rng.randrange(len(digits))] = str(rng.randrange(10))
                mutated = "".join(digits)[: len(digits) - rng.choice((0, 0, 1))]
                cases += [(f"+{code}{mutated}", region), (mutated, region), ("0" + mutated, region)]
    return cases


def _disagreements(cases: list[tuple[str, str]]) -> list[tuple]:
    """(text, region, ours, phonenumbers') for each case where the checker differs."""
    disagreements = []
    checkers: dict[str, PhoneChecker] = {}
    for text, region in cases:
        check = checkers.setdefault(region, PhoneChecker(country=region)).check(text)
        got = (check.phone, check.region, check.blocked)
        want = _reference(text, region)
        if got != want:
            disagreements.append((text, region, got, want))
    return disagreements


def test_fast_path_agrees_with_phonenumbers_everywhere() -> None:
    """For ~11k generated numbers of every region, the result is exactly what
    phonenumbers.parse + is_valid_number + number_type + region_code_for_number give."""
    cases = [(text, region) for text, region in _mutations(seed=2) if not text.startswith("00")]
    assert len(cases) > 10_000
    assert _disagreements(cases) == []


def test_country_options_list_every_region_by_name() -> None:
    """Every region phonenumbers knows is offered as 'Name (+code)', sorted by name."""
    options = phones.country_options()
    assert {code for code, _ in options} == set(phonenumbers.SUPPORTED_REGIONS)
    labels = dict(options)
    assert labels["GB"] == "United Kingdom (+44)"
    assert labels["US"] == "United States (+1)"
    assert labels["XK"] == "Kosovo (+383)"
    assert all("(+" in label and not label.startswith("(") for label in labels.values())
    names = [label for _, label in options]
    assert names.index("Afghanistan (+93)") < names.index("Zimbabwe (+263)")
    assert names[:3] == ["Afghanistan (+93)", "Åland Islands (+358)", "Albania (+355)"]


@pytest.mark.parametrize("code", ["XX", "UK", "", "USA", "001"])
def test_unknown_country_label_raises_with_help(code: str) -> None:
    """An unknown code is a PlanError that says how to find a good one."""
    with pytest.raises(PlanError, match="two-letter ISO 3166"):
        phones.country_label(code)


def test_country_codes_are_case_insensitive() -> None:
    """'gb' is GB."""
    assert phones.country_label("gb") == "United Kingdom (+44)"
    assert normalize_phone("07400 123456", country="gb").phone == "+447400123456"


def test_region_of_e164() -> None:
    """region_of gives the ISO code of valid numbers, None otherwise."""
    assert phones.region_of("+14165550100") == "CA"
    assert phones.region_of("+447400123456") == "GB"
    assert phones.region_of("+10995550100") is None
    assert phones.region_of("garbage") is None


def test_time_zone_of_single_zone_numbers() -> None:
    """US numbers map to their area code's zone."""
    assert phones.time_zone_of("+14155550100") == "America/Los_Angeles"
    assert phones.time_zone_of("+12125550100") == "America/New_York"
    assert phones.time_zone_of("+33612345678") == "Europe/Paris"


def test_time_zone_of_several_zones_is_the_first_listed() -> None:
    """Where phonenumbers lists several zones, the first is chosen; all are available."""
    zones = phones.time_zones_of("+61412345678")
    assert len(zones) > 1
    assert phones.time_zone_of("+61412345678") == zones[0]


def test_time_zone_of_unknown_is_none() -> None:
    """Garbage or numbers without zone data give None / no zones."""
    assert phones.time_zone_of("garbage") is None
    assert phones.time_zones_of("garbage") == ()


def _callable_examples() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    """(region, number) for the example mobile and fixed-line number of every region."""
    examples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None and phonenumbers.is_valid_number(number):
                examples.append((region, number))
    return examples


CALLABLE_EXAMPLES = _callable_examples()
WRITINGS = {
    "national": phonenumbers.PhoneNumberFormat.NATIONAL,
    "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "e164": phonenumbers.PhoneNumberFormat.E164,
}


@settings(max_examples=300, deadline=None)
@given(
    example=st.sampled_from(CALLABLE_EXAMPLES),
    writing=st.sampled_from(sorted(WRITINGS)),
    separator=st.sampled_from([" ", "-", ".", "\u00a0", ""]),
    wrapper=st.sampled_from(["{}", "'{}", " {} ", "tel:{}", '="{}"']),
)
def test_any_writing_of_a_valid_number_gives_its_e164(
    example: tuple[str, phonenumbers.PhoneNumber], writing: str, separator: str, wrapper: str
) -> None:
    """A valid number of any region, written nationally (with that region selected) or
    internationally, with any separators and export wrappers, is its own E.164."""
    region, number = example
    text = phonenumbers.format_number(number, WRITINGS[writing]).replace(" ", separator)
    check = normalize_phone(wrapper.format(text), country=region, block_premium=False)
    assert check.phone == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_national_digits_starting_with_the_country_code_agree_with_phonenumbers() -> None:
    """Digits written without + that start with the selected country's own calling code
    ("14155550100" in the US, "440..." in GB), valid or not, with and without a trunk 0 after
    the code: exactly what phonenumbers.parse + is_valid_number give."""
    cases = []
    for text, region in _mutations(seed=3):
        if text.startswith("+"):
            cases += [(text[1:], region), (text[1:].replace(" ", ""), region)]
            code = str(phonenumbers.country_code_for_region(region))
            cases.append((code + "0" + text[1 + len(code) :], region))
    assert len(cases) > 10_000
    assert _disagreements(cases) == []


def test_us_digits_with_leading_one_take_the_fast_path() -> None:
    """'12127077364' (US, country code written without +) is resolved without
    phonenumbers.parse: +1 and the 10-digit number; a CA setting reads it the same."""
    assert phones._resolve_fast("12127077364", "US") == (1, "2127077364")
    assert phones._resolve_fast("12127077364", "CA") == (1, "2127077364")
    assert PhoneChecker(country="US").check("1 212 707 7364").phone == "+12127077364"


@pytest.mark.parametrize("raw", ["555-010 / 555-0101", "+1 (415) 555-0100", "41-55-55-01-00"])
def test_cells_with_fewer_than_fourteen_digits_are_one_number(raw: str) -> None:
    """Fewer than 2 x 7 digits cannot be two numbers: never 'several numbers'."""
    assert PhoneChecker().check(raw).reason != phones.REASON_SEVERAL
