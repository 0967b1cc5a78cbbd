"""Phone numbers: whatever a contact file holds -> E.164, or a short reason why not.

Everything goes through `phonenumbers` (Google's libphonenumber metadata). A bulk file repeats
formats and numbers, so `PhoneChecker` caches one result per distinct raw value. Clean values
(`+14155550100`, `4155550100`) skip `phonenumbers.parse` and are classified against the same
metadata with one combined regular expression per region; tests/test_phones.py checks that this
gives exactly what `phonenumbers.parse` + `is_valid_number` + `number_type` give.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberType

from bulkcall_core.errors import PlanError

REASON_MISSING = "missing"
REASON_UNPARSEABLE = "not a phone number"
REASON_UNKNOWN_COUNTRY_CODE = "unknown country calling code"
REASON_TOO_SHORT = "too short"
REASON_TOO_LONG = "too long"
REASON_WRONG_LENGTH = "wrong number of digits"
REASON_LOCAL_ONLY = "missing its area code"
REASON_INVALID = "not a valid number"
REASON_SEVERAL = "several numbers in one cell; put one number per row"
REASON_EXTENSION = "has an extension (automated calls cannot dial extensions)"
REASON_SCIENTIFIC = (
    "digits lost to Excel's scientific notation (like 1.41556E+10); "
    "re-export the phone column formatted as text"
)
REASON_PREMIUM = "premium-rate number (blocked: toll fraud risk)"
REASON_SHARED_COST = "shared-cost number (blocked: toll fraud risk)"
REASON_GLOBAL_NETWORK = "satellite or international network number (blocked: toll fraud risk)"
REASON_COUNTRY_NOT_ALLOWED = "outside the channel's allowed countries"  # + " (CA, US)"

BLOCKED_REASONS = frozenset({REASON_PREMIUM, REASON_SHARED_COST, REASON_GLOBAL_NETWORK})

# Calling codes of satellite and shared international networks (Inmarsat, Iridium, Thuraya...):
# minutes cost dollars and they are a favourite of toll fraud, so they are blocked with premium.
GLOBAL_NETWORK_CODES = frozenset({870, 881, 882, 883})

# phonenumbers' own limits on a national significant number (its _MIN/_MAX_LENGTH_FOR_NSN).
_MIN_NSN, _MAX_NSN = 2, 17
_NON_GEO_REGION = "001"
# Names phonenumbers' locale data lacks (newer ITU regions).
_EXTRA_NAMES = {"AC": "Ascension Island", "TA": "Tristan da Cunha", "XK": "Kosovo"}

_CALLING_CODES = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
_CLEAN = re.compile(r"\+?[0-9]+")
_SEPARATORS = re.compile(r"[\s().\-/\\\u2010-\u2015]+")
# Clean digits, Excel's scientific notation (1.41556E+10, decimal comma too), and the text
# of a float ("4155550106.0": only an exact ".0" on digits is an artefact).
_SHAPE = re.compile(
    r"(?P<clean>\+?[0-9]+)"
    r"|(?P<scientific>[+-]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+)"
    r"|(?P<artefact>[0-9]+)\.0"
)
_EXCEL_TEXT_FORMULA = re.compile(r'="(.*)"')
_TEL_PREFIX = re.compile(r"(?i)tel:")
_LIST_SEPARATORS = re.compile(r"[,;/|&\n]|\s(?:or|and|ou|oder|y|o)\s", re.IGNORECASE)
_NON_DIGITS = re.compile(r"[^0-9]+")
_TRAILING_LABEL = re.compile(r"\s*\([^\d()]*\)\s*$")
_STARTS_WITH_CODE = re.compile(r"[\s(]*[1-9]")
# A cell holds several numbers when two of its parts have this many digits each.
_PART_DIGITS = 7
# So a clean cell of fewer characters (digits and maybe '+') holds at most one number.
_SEVERAL_MIN_DIGITS = 2 * _PART_DIGITS


@dataclass(frozen=True, slots=True)
class PhoneCheck:
    """The outcome of checking one raw value.

    `phone` is the E.164 number when it can be called; `reason` is None then, else a short
    human reason (one of the REASON_* texts). `region` is the ISO 3166 alpha-2 code of the
    number when known (also for blocked numbers), None for invalid ones.
    """

    phone: str | None
    reason: str | None
    region: str | None = None

    @property
    def blocked(self) -> bool:
        """True when a valid number is refused by policy (premium, shared-cost, country)."""
        return is_blocked_reason(self.reason)


def is_blocked_reason(reason: str | None) -> bool:
    """True for the reasons of valid numbers refused by policy (premium, country...)."""
    reason = reason or ""
    return reason in BLOCKED_REASONS or reason.startswith(REASON_COUNTRY_NOT_ALLOWED)


def normalize_phone(
    value: str | None,
    *,
    country: str = "US",
    has_country_code: bool = False,
    allowed_countries: Collection[str] | None = None,
    block_premium: bool = True,
) -> PhoneCheck:
    """Check one raw cell value and return its E.164 form or the reason it cannot be called.

    `country` (ISO alpha-2) is the region of numbers written without `+` or `00` (its own
    international prefix, like 011 in the US, also works); with `has_country_code` such
    numbers start with their calling code instead, except a number starting with a single 0,
    which cannot and is read as national. Extensions are refused (a broadcast cannot dial
    them), Excel's scientific notation is refused (its digits are lost), premium-rate,
    shared-cost and satellite numbers are refused unless `block_premium` is False, and so is
    any country outside `allowed_countries` when given. Raises PlanError for an unknown
    `country` or allowed country code.
    """
    checker = PhoneChecker(
        country=country,
        has_country_code=has_country_code,
        allowed_countries=allowed_countries,
        block_premium=block_premium,
    )
    return checker.check(value)


class PhoneChecker:
    """Checks many raw values under one setting, caching one result per distinct value."""

    def __init__(
        self,
        *,
        country: str = "US",
        has_country_code: bool = False,
        allowed_countries: Collection[str] | None = None,
        block_premium: bool = True,
    ) -> None:
        self.country = parse_country(country)
        self.has_country_code = has_country_code
        self.allowed_countries = (
            None
            if allowed_countries is None
            else frozenset(
                parse_country(code, field="allowed_countries") for code in allowed_countries
            )
        )
        self.block_premium = block_premium
        self._cache: dict[str | None, PhoneCheck] = {}

    def check(self, value: str | None) -> PhoneCheck:
        """Return the PhoneCheck of one raw value (cached)."""
        result = self._cache.get(value)
        if result is None:
            result = self._cache[value] = self._check(value)
        return result

    def check_all(self, values: Iterable[str | None]) -> list[PhoneCheck]:
        """Return the PhoneCheck of each value, in order."""
        return [self.check(value) for value in values]

    def check_distinct(self, values: Iterable[str | None]) -> list[PhoneCheck]:
        """Return the PhoneCheck of each value, in order, as `check_all` does, without
        caching new values: for values already distinct (a factorized column), where a
        cache of a million entries only costs time (~0.6 s) and memory."""
        cache = self._cache
        return [cache.get(value) or self._check(value) for value in values]

    def _check(self, value: str | None) -> PhoneCheck:
        text, reason, clean = _clean(value)
        if reason is not None:
            return PhoneCheck(None, reason)
        digits = self._international_form(text)
        resolved = _resolve_fast(digits, self.country) if clean else None
        if resolved is None:
            parsed = _resolve_with_parse(digits, self.country)
            if isinstance(parsed, str):
                return PhoneCheck(None, parsed)
            resolved = parsed
        calling_code, nsn = resolved
        return self._judge(calling_code, nsn)

    def _international_form(self, text: str) -> str:
        """Apply "numbers start with the country code": a leading digit 1-9 gets a '+'."""
        if text.startswith("00"):
            return "+" + text[2:]
        if self.has_country_code and _STARTS_WITH_CODE.match(text):
            return "+" + text.lstrip(" (")
        return text

    def _judge(self, calling_code: int, nsn: str) -> PhoneCheck:
        region, number_type = _classify(calling_code, nsn)
        if number_type is None:
            return PhoneCheck(None, _invalid_reason(calling_code, nsn))
        e164 = f"+{calling_code}{nsn}"
        iso = None if region == _NON_GEO_REGION else region
        if self.block_premium:
            blocked = _blocked_reason(calling_code, number_type)
            if blocked is not None:
                return PhoneCheck(None, blocked, iso)
        if self.allowed_countries is not None and iso not in self.allowed_countries:
            allowed = ", ".join(sorted(self.allowed_countries))
            return PhoneCheck(None, f"{REASON_COUNTRY_NOT_ALLOWED} ({allowed})", iso)
        return PhoneCheck(e164, None, iso)


def _clean(value: str | None) -> tuple[str, str | None, bool]:
    """Strip what exports add around a number.

    Returns (text, None, clean) where `clean` says the text is `+?digits`, or ("", reason,
    False) for a blank cell or Excel's scientific notation.
    """
    if not isinstance(value, str):
        if _is_blank(value):
            return "", REASON_MISSING, False
        value = str(value)
    text = value.strip()
    shaped = _shape(text)
    if shaped is None:
        text = _unwrap(text)
        if not text:
            return "", REASON_MISSING, False
        shaped = _shape(text)
    return shaped if shaped is not None else (text, None, False)


def _shape(text: str) -> tuple[str, str | None, bool] | None:
    """The common shapes, told apart in one pass; None for anything else."""
    match = _SHAPE.fullmatch(text)
    if match is None:
        compact = _SEPARATORS.sub("", text)
        clean = _CLEAN.fullmatch(compact) is not None
        # Several numbers need 2 x 7 digits: fewer, and the cell cannot hold two (fast path).
        if not (clean and len(compact) < _SEVERAL_MIN_DIGITS) and _several_numbers(text):
            return "", REASON_SEVERAL, False
        return (compact, None, True) if clean else None
    if match.lastgroup == "clean":
        return text, None, True
    if match.lastgroup == "scientific":
        return "", REASON_SCIENTIFIC, False
    return match.group("artefact"), None, True  # "4155550106.0": a float's text


def _several_numbers(text: str) -> bool:
    """'415-555-0100, 415-555-0101' or '... / ...': two parts of 7+ digits each. One is not
    picked: which person to call is a guess."""
    parts = _LIST_SEPARATORS.split(text)
    return (
        len(parts) > 1 and sum(len(_NON_DIGITS.sub("", part)) >= _PART_DIGITS for part in parts) > 1
    )


def _unwrap(text: str) -> str:
    """Full-width digits and odd spaces (NFKC), Excel's text markers ('..., ="..."), tel:."""
    text = unicodedata.normalize("NFKC", text).strip().lstrip("'").strip()
    formula = _EXCEL_TEXT_FORMULA.fullmatch(text)
    if formula:
        text = formula.group(1).strip()
    if _TEL_PREFIX.match(text):
        text = text[4:].strip()
    # A trailing label ("(mobile)") would be read as letters of a vanity number.
    return _TRAILING_LABEL.sub("", text)


def _is_blank(value: object) -> bool:
    """None, a float NaN or pandas' NA (whose comparisons raise)."""
    try:
        return value is None or bool(value != value)
    except TypeError:
        return True


def _resolve_fast(text: str, country: str) -> tuple[int, str] | None:
    """(calling code, national significant number) of a clean `+?digits` value, exactly as
    phonenumbers.parse would give it; None when parse's heuristics could apply."""
    if text.startswith("+"):
        calling_code, nsn = _split_calling_code(text[1:])
        if calling_code is None:
            return None
        rules = _rules_for_code(calling_code)
    else:
        rules = _rules_for_region(country)
        calling_code, nsn = rules.calling_code, text
        if rules.idd is not None and rules.idd.match(nsn):
            return None
        if nsn.startswith(str(calling_code)):  # "14155550100" in the US
            without_code = _without_own_calling_code(nsn, rules)
            if without_code is None:
                return None
            if len(without_code) < len(nsn):  # parse then reads it with the code's main region
                nsn, rules = without_code, _rules_for_code(calling_code)
    if len(nsn) < _MIN_NSN:
        return None
    stripped = _strip_national_prefix(nsn, rules)
    if stripped is None or not _MIN_NSN <= len(stripped) <= _MAX_NSN:
        return None
    return calling_code, stripped


def _without_own_calling_code(digits: str, rules: _Rules) -> str | None:
    """National digits that start with their region's own calling code, as parse reads them
    (its _maybe_extract_country_code): the rest without the code (and a trunk prefix) when the
    whole is not a valid pattern but the rest is, or the whole is too long; else `digits`
    unchanged. None when parse's finer rules could apply (left to parse)."""
    rest = digits[len(str(rules.calling_code)) :]
    if len(rest) < _MIN_NSN or rules.general is None or not rules.possible_lengths:
        return None
    rest = _prefix_stripped(rest, rules)
    if rest is None:
        return None
    valid_whole = rules.general.fullmatch(digits) is not None
    if (not valid_whole and rules.general.fullmatch(rest)) or rules.too_long(len(digits)):
        return rest
    return digits


def _strip_national_prefix(nsn: str, rules: _Rules) -> str | None:
    """The number without its trunk prefix (the 0 of 020 ...), decided as phonenumbers.parse
    decides it; None for prefixes that carry carrier codes or rewrite rules (left to parse)."""
    stripped = _prefix_stripped(nsn, rules)
    if stripped is None:
        return None
    return stripped if rules.takes_stripped_length(len(stripped)) else nsn


def _prefix_stripped(nsn: str, rules: _Rules) -> str | None:
    """`nsn` without a trunk prefix as phonenumbers' _maybe_strip_national_prefix_carrier_code
    strips it (no length check); None for carrier codes and rewrite rules (left to parse)."""
    match = rules.national_prefix.match(nsn) if rules.national_prefix else None
    if match is None:
        return nsn
    if rules.rewrites_prefix or match.re.groups or rules.general is None:
        return None
    stripped = nsn[match.end() :]
    if rules.general.fullmatch(nsn) and not rules.general.fullmatch(stripped):
        return nsn
    return stripped


def _split_calling_code(digits: str) -> tuple[int | None, str]:
    for size in (1, 2, 3):  # calling codes are prefix-free: the first hit is the code
        code = _CALLING_CODES.get(digits[:size])
        if code is not None:
            return code, digits[size:]
    return None, digits


def _resolve_with_parse(text: str, country: str) -> tuple[int, str] | str:
    """(calling code, national significant number) through phonenumbers.parse, or a reason."""
    try:
        number = phonenumbers.parse(text, country)
    except NumberParseException as exc:
        return _PARSE_REASONS.get(exc.error_type, REASON_UNPARSEABLE)
    if number.extension:
        return REASON_EXTENSION
    return number.country_code or 0, phonenumbers.national_significant_number(number)


_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: REASON_UNKNOWN_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: REASON_UNPARSEABLE,
    NumberParseException.TOO_SHORT_AFTER_IDD: REASON_TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: REASON_TOO_SHORT,
    NumberParseException.TOO_LONG: REASON_TOO_LONG,
}


def _invalid_reason(calling_code: int, nsn: str) -> str:
    number = phonenumbers.PhoneNumber(country_code=calling_code, national_number=int(nsn))
    if nsn.startswith("0"):
        number.italian_leading_zero = True
        zeros = len(nsn) - len(nsn.lstrip("0"))
        number.number_of_leading_zeros = max(1, min(zeros, len(nsn) - 1))
    length = phonenumbers.is_possible_number_with_reason(number)
    return {
        phonenumbers.ValidationResult.TOO_SHORT: REASON_TOO_SHORT,
        phonenumbers.ValidationResult.TOO_LONG: REASON_TOO_LONG,
        phonenumbers.ValidationResult.INVALID_LENGTH: REASON_WRONG_LENGTH,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: REASON_LOCAL_ONLY,
        phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: REASON_UNKNOWN_COUNTRY_CODE,
    }.get(length, REASON_INVALID)


def _blocked_reason(calling_code: int, number_type: int) -> str | None:
    if number_type == PhoneNumberType.PREMIUM_RATE:
        return REASON_PREMIUM
    if number_type == PhoneNumberType.SHARED_COST:
        return REASON_SHARED_COST
    if calling_code in GLOBAL_NETWORK_CODES:
        return REASON_GLOBAL_NETWORK
    return None


# --- classification against phonenumbers' metadata -------------------------------------------

# The order phonenumbers' _number_type_helper tests the types in: the first match wins.
_TYPE_ORDER = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
    ("fixed_line", PhoneNumberType.FIXED_LINE),
    ("mobile", PhoneNumberType.MOBILE),
)


@dataclass(frozen=True)
class _Rules:
    """One region's metadata, compiled for checking many numbers."""

    region: str
    calling_code: int
    general: re.Pattern[str] | None
    general_lengths: frozenset[int]
    types: re.Pattern[str] | None  # alternation of the type patterns, one named group each
    leading_digits: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    rewrites_prefix: bool  # a national_prefix_transform_rule exists
    idd: re.Pattern[str] | None
    possible_lengths: tuple[int, ...]
    local_only_lengths: frozenset[int]

    def takes_stripped_length(self, length: int) -> bool:
        """Whether parse keeps a number stripped of its national prefix at this length
        (phonenumbers' _test_number_length is not TOO_SHORT, LOCAL_ONLY or INVALID_LENGTH)."""
        lengths = self.possible_lengths
        if not lengths or length in self.local_only_lengths or length < lengths[0]:
            return False
        return length > lengths[-1] or length in lengths

    def too_long(self, length: int) -> bool:
        """phonenumbers' _test_number_length of a whole number says TOO_LONG."""
        lengths = self.possible_lengths
        return length not in self.local_only_lengths and length > lengths[-1]

    def number_type(self, nsn: str) -> int | None:
        """The PhoneNumberType of a national significant number, None when invalid."""
        if self.general is None or self.types is None:
            return None
        if self.general_lengths and len(nsn) not in self.general_lengths:
            return None
        if not self.general.fullmatch(nsn):
            return None
        match = self.types.fullmatch(nsn)
        return None if match is None else _GROUP_TYPES[match.lastgroup or ""]


_GROUP_TYPES = {f"t_{name}": number_type for name, number_type in _TYPE_ORDER}


def _compile_rules(metadata: PhoneMetadata, region: str) -> _Rules:
    general = metadata.general_desc
    alternatives = []
    for name, _ in _TYPE_ORDER:
        desc = getattr(metadata, name)
        if desc is None or not desc.national_number_pattern:
            continue
        lengths = [n for n in (desc.possible_length or ()) if n > 0]
        if desc.possible_length and not lengths:
            continue
        guard = "(?=(?:" + "|".join(f".{{{n}}}" for n in lengths) + r")\Z)" if lengths else ""
        alternatives.append(f"(?P<t_{name}>{guard}(?:{desc.national_number_pattern}))")

    def optional(pattern: str | None) -> re.Pattern[str] | None:
        return re.compile(pattern) if pattern else None

    return _Rules(
        region=region,
        calling_code=metadata.country_code or 0,
        general=optional(general.national_number_pattern if general else None),
        general_lengths=frozenset(general.possible_length or ()) if general else frozenset(),
        types=re.compile("|".join(alternatives)) if alternatives else None,
        leading_digits=optional(metadata.leading_digits),
        national_prefix=optional(metadata.national_prefix_for_parsing),
        rewrites_prefix=bool(metadata.national_prefix_transform_rule),
        idd=optional(metadata.international_prefix),
        possible_lengths=tuple(general.possible_length or ()) if general else (),
        local_only_lengths=frozenset(general.possible_length_local_only or ())
        if general
        else frozenset(),
    )


@cache
def _rules_for_region(region: str) -> _Rules:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None:  # every region phonenumbers lists has metadata
        raise PlanError(f"phonenumbers has no metadata for region {region!r}")
    return _compile_rules(metadata, region)


@cache
def _rules_for_code(calling_code: int) -> _Rules:
    """The rules phonenumbers.parse uses for a calling code: its main region's."""
    region = phonenumbers.region_code_for_country_code(calling_code)
    if region == _NON_GEO_REGION:
        metadata = PhoneMetadata.metadata_for_nongeo_region(calling_code)
        if metadata is None:  # every non-geographic calling code has metadata
            raise PlanError(f"phonenumbers has no metadata for calling code +{calling_code}")
        return _compile_rules(metadata, region)
    return _rules_for_region(region)


def _classify(calling_code: int, nsn: str) -> tuple[str | None, int | None]:
    """(region, PhoneNumberType or None when invalid), as phonenumbers' region_code_for_number
    and number_type decide them."""
    steps = _region_steps(calling_code)
    if not steps:
        return None, None
    if len(steps) == 1 and steps[0].rules is not None:  # one region (or all-alike regions)
        rules = steps[0].rules
        return rules.region, rules.number_type(nsn)
    for step in steps:
        if step.rules is not None:
            number_type = step.rules.number_type(nsn)
            if number_type is not None:
                return step.rules.region, number_type
        elif match := step.leading.match(nsn):  # type: ignore[union-attr]
            region = match.lastgroup or ""
            return region, _rules_for_region(region).number_type(nsn)
    return None, None


@dataclass(frozen=True)
class _Step:
    """One step of finding a number's region among those sharing its calling code: a run of
    regions told by leading digits (one alternation, first match wins, as phonenumbers tries
    them in order), or one region that needs full validation."""

    leading: re.Pattern[str] | None
    rules: _Rules | None


@cache
def _region_steps(calling_code: int) -> tuple[_Step, ...]:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(calling_code, ())
    if len(regions) == 1:
        return (_Step(None, _rules_for_code(calling_code)),)
    steps: list[_Step] = []
    run: list[_Rules] = []
    for region in regions:
        rules = _rules_for_region(region)
        if rules.leading_digits is None:
            steps.extend(_leading_step(run))
            run = []
            steps.append(_Step(None, rules))
        else:
            run.append(rules)
    steps.extend(_leading_step(run))
    return tuple(steps)


def _leading_step(run: list[_Rules]) -> list[_Step]:
    if not run:
        return []
    pattern = "|".join(f"(?P<{r.region}>{r.leading_digits.pattern})" for r in run)  # type: ignore[union-attr]
    return [_Step(re.compile(pattern), None)]


# --- countries, regions and time zones -------------------------------------------------------


def country_options() -> list[tuple[str, str]]:
    """Every region phonenumbers knows as (ISO code, "Name (+code)"), sorted by name.

    Names come from phonenumbers' own English locale data (CLDR-derived, shipped with the
    geocoder), so the list and the dial codes always agree with the metadata that validates
    the numbers, without another dependency.
    """
    return list(_country_options())


@cache
def _country_options() -> tuple[tuple[str, str], ...]:
    options = [(code, country_label(code)) for code in phonenumbers.SUPPORTED_REGIONS]
    return tuple(sorted(options, key=lambda option: _sort_key(option[1])))


def _sort_key(name: str) -> str:
    """'Åland Islands' sorts as 'aland islands', between Afghanistan and Albania."""
    letters = unicodedata.normalize("NFKD", name)
    return "".join(c for c in letters if not unicodedata.combining(c)).casefold()


def country_label(iso2: str) -> str:
    """ "United Kingdom (+44)" for "GB"; raises PlanError for a code phonenumbers does not know."""
    code = parse_country(iso2)
    return f"{_country_name(code)} (+{calling_code(code)})"


def parse_country(value: str, *, field: str = "country") -> str:
    """The upper-case ISO alpha-2 code of a region phonenumbers knows; else PlanError."""
    code = (value or "").strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        hint = " (the United Kingdom is GB)" if code == "UK" else ""
        raise PlanError(
            f"Unknown country code {value!r}{hint}; use a two-letter ISO 3166 code that has "
            "phone numbers, such as US, GB, DE or IN (the dashboard's 'To country code' "
            "list shows them all)",
            field=field,
        )
    return code


def calling_code(country: str) -> int:
    """The calling code of a region ("GB" -> 44); raises PlanError for an unknown code."""
    return phonenumbers.country_code_for_region(parse_country(country))


def _country_name(code: str) -> str:
    # Imported here: the geocoding package costs ~0.3 s to import and planning never needs it.
    from phonenumbers.geodata.locale import LOCALE_DATA

    names = LOCALE_DATA.get(code, {})
    name = names.get("en", "")
    if name.startswith("*"):  # "*xx": the name is stored under language xx
        name = names.get(name[1:], "")
    return name or _EXTRA_NAMES.get(code, code)


def region_of(e164: str) -> str | None:
    """The ISO alpha-2 region of an E.164 number, None when invalid or non-geographic."""
    number = _parse_e164(e164)
    if number is None:
        return None
    region, number_type = _classify(
        number.country_code or 0, phonenumbers.national_significant_number(number)
    )
    return None if number_type is None or region == _NON_GEO_REGION else region


def time_zones_of(e164: str) -> tuple[str, ...]:
    """Every IANA time zone phonenumbers gives for the number (empty when unknown)."""
    from phonenumbers import timezone as phone_timezone  # its data loads on first use

    number = _parse_e164(e164)
    if number is None:
        return ()
    zones = phone_timezone.time_zones_for_number(number)
    return tuple(zone for zone in zones if zone != phone_timezone.UNKNOWN_TIMEZONE)


def time_zone_of(e164: str) -> str | None:
    """One IANA time zone for a calling window, None when unknown.

    A calling window needs one zone. Most numbers map to one (US and Canadian numbers by area
    code, most countries); where phonenumbers gives several (UK mobiles: London, Jersey,
    Guernsey, Isle of Man; Russian or Australian mobiles), this returns the first it lists
    (alphabetical). Use time_zones_of() to see them all.
    """
    zones = time_zones_of(e164)
    return zones[0] if zones else None


def _parse_e164(e164: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
