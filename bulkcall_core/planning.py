"""Planning: a Table (or contact records) + PlanOptions -> a frozen Plan.

The plan says exactly whom a campaign calls and why every other row is left out: missing,
unparseable or invalid numbers, blocked ones (premium-rate, shared-cost, countries outside the
channel's list), numbers on the do-not-call list, and repeats of a number already called.

Built for a million rows: phone values are checked once per distinct raw value (`pd.factorize`
+ `phones.PhoneChecker`), the row-level work is numpy, and recipients are a lazy view over
arrays rather than a million objects.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import orjson
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from bulkcall_core import phones
from bulkcall_core.phones import PhoneCheck, PhoneChecker
from bulkcall_core.sources import Table, require_column

REASON_DO_NOT_CALL = "on the do-not-call list"

# Distinct values re-checked under the other country-code setting for the warnings: enough
# for a reliable share, small enough (~10 ms) to add nothing noticeable to a 1M-row plan.
WARNING_SAMPLE_SIZE = 2_000
# A setting warning needs at least this share of the rows that have a number: below it, a few
# odd rows are not evidence that the whole setting is wrong (they are listed as problems).
WARNING_MIN_SHARE = 0.10
# Share of valid numbers outside the selected country that earns a warning: "most", since
# numbers written with + are read right whatever the country, and mixed files are common.
FOREIGN_MIN_SHARE = 0.5
# Chunks of distinct values checked between two progress reports.
PROGRESS_CHUNK = 20_000
# Recipients per batch for bulk inserts (campaigns, contact lists).
DEFAULT_BATCH_SIZE = 50_000

# Characters JSON must escape in a string (orjson escapes exactly these, nothing else).
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'

HAS_CODE_LABEL = "'Phone numbers in the uploaded file start with the country code'"

Progress = Callable[[float], None]


@dataclass(frozen=True)
class PlanOptions:
    """How to read the phone column and which numbers to leave out."""

    phone_column: str
    name_column: str | None = None
    country: str = "US"  # region of numbers written without + or 00
    numbers_have_country_code: bool = False
    allow_duplicates: bool = False
    allowed_countries: frozenset[str] | None = None  # the channel's destinations; None = any
    block_premium: bool = True  # premium-rate, shared-cost, satellite: toll fraud
    do_not_call: frozenset[str] = frozenset()  # E.164 numbers never called


@dataclass(frozen=True, slots=True)
class Recipient:
    """One number to call: its spreadsheet row, E.164 phone, name and the row's other cells."""

    row: int
    phone: str
    name: str | None
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that will not be called: its raw phone value and why."""

    row: int
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row not called because `first_row` has the same number (duplicates not allowed)."""

    row: int
    phone: str
    first_row: int


class _Fields:
    """The 'other columns' of the source rows, converted a batch at a time: a million rows of
    eight columns are never all turned into Python objects at once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._arrow: list[pa.ChunkedArray] | None = None

    def json_many(self, positions: np.ndarray) -> list[str]:
        """The fields of each row as JSON object text, exactly `orjson.dumps` of `many`."""
        columns = self._arrow_columns()
        if columns is None:
            return [_dump_json(item) for item in self.many(positions)]
        if not columns:
            return ["{}"] * len(positions)
        taken = [column.take(positions).combine_chunks() for column in columns]
        return _json_objects(list(self.frame.columns), taken)

    def _arrow_columns(self) -> list[pa.ChunkedArray] | None:
        """Every column as Arrow strings when they all are (as sources reads files) under
        unique text names; None for other tables (they take the dict path)."""
        if self._arrow is None:
            names = list(self.frame.columns)
            arrays = [self.frame[name].array for name in names]
            if len(set(names)) < len(names) or not all(isinstance(n, str) for n in names):
                return None
            if not all(isinstance(a, pd.arrays.ArrowStringArray) for a in arrays):
                return None
            self._arrow = [pa.chunked_array(pa.array(a)).cast(pa.large_string()) for a in arrays]
        return self._arrow

    def many(self, positions: np.ndarray) -> list[dict[str, str]]:
        part = self.frame.iloc[positions]
        names = list(part.columns)
        columns = [_object_array(_blank_to_na(part[name])).tolist() for name in names]
        if not columns:
            return [{} for _ in range(len(positions))]
        return [
            {name: value for name, value in zip(names, row, strict=True) if value is not None}
            for row in zip(*columns, strict=True)
        ]


class _RecordFields(_Fields):
    def __init__(self, records: Sequence[dict[str, str]]) -> None:
        self.records = records

    def _arrow_columns(self) -> None:
        return None

    def many(self, positions: np.ndarray) -> list[dict[str, str]]:
        return [{k: v for k, v in (self.records[p] or {}).items() if _filled(v)} for p in positions]


def _json_objects(names: list[str], columns: list[pa.Array]) -> list[str]:
    """'{"name":"value",...}' per row from Arrow string columns, blank cells left out."""
    members = pc.binary_join_element_wise(
        *(_json_members(name, column) for name, column in zip(names, columns, strict=True)),
        _text(""),
    )
    inner = pc.utf8_slice_codeunits(members, 1)  # without the first member's comma
    return pc.binary_join_element_wise(_text("{"), inner, _text("}"), _text("")).to_pylist()


def _json_members(name: str, column: pa.Array) -> pa.Array:
    """',"name":"value"' per cell ('' for a blank one), escaped exactly as orjson does."""
    key = "," + _dump_json(name) + ":"
    filled = pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(column), _text("")), False)
    members = pc.binary_join_element_wise(_text(key + '"'), column, _text('"'), _text(""))
    escaped = pc.and_(filled, pc.fill_null(pc.match_substring_regex(column, _NEEDS_ESCAPE), False))
    if pc.any(escaped).as_py():  # rare: quotes, backslashes, control characters
        rare = [key + _dump_json(value) for value in pc.filter(column, escaped).to_pylist()]
        members = pc.replace_with_mask(members, escaped, pa.array(rare, type=members.type))
    return pc.if_else(filled, members, _text(""))


def _text(value: str) -> pa.Scalar:
    """A scalar of the type the Arrow columns are cast to (kernels want one string type)."""
    return pa.scalar(value, pa.large_string())


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _blank_to_na(column: pd.Series) -> pd.Series:
    """Whitespace-only cells as missing (the reader trims cells; hand-made tables may not)."""
    try:
        blank = column.str.strip() == ""
    except AttributeError:  # an object column holding no text at all
        return column
    return column.mask(blank.fillna(False).astype(bool))


def _filled(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


class RecipientList(Sequence[Recipient]):
    """The recipients of a plan in file order: a read-only view over columnar arrays.

    Indexing, slicing and iterating build `Recipient` objects on demand, so a million-row plan
    holds arrays, not a million objects.
    """

    def __init__(
        self,
        positions: np.ndarray,
        rows: np.ndarray,
        phones: np.ndarray,
        names: np.ndarray,
        fields: _Fields,
    ) -> None:
        self._positions = positions  # index of each recipient in the source rows
        self._rows = rows
        self._phones = phones
        self._names = names
        self._fields = fields

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> Recipient: ...
    @overload
    def __getitem__(self, index: slice) -> RecipientList: ...
    def __getitem__(self, index: int | slice) -> Recipient | RecipientList:
        if isinstance(index, slice):
            return RecipientList(
                self._positions[index],
                self._rows[index],
                self._phones[index],
                self._names[index],
                self._fields,
            )
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"recipient index {index} out of range (0..{count - 1})")
        return Recipient(**self._dicts(index % count, index % count + 1)[0])

    def __iter__(self) -> Iterator[Recipient]:
        for batch in self.batches():
            for item in batch:
                yield Recipient(**item)

    def __repr__(self) -> str:
        return f"<RecipientList of {len(self):,}>"

    @property
    def phones(self) -> np.ndarray:
        """The E.164 numbers, in order (read-only)."""
        view = self._phones.view()
        view.flags.writeable = False
        return view

    def batches(self, size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Lists of at most `size` dicts {"row", "phone", "name", "fields"}, in order."""
        if size < 1:
            raise ValueError(f"batch size must be at least 1, not {size}")
        for start in range(0, len(self), size):
            yield self._dicts(start, min(start + size, len(self)))

    def rows(
        self, size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[list[tuple[int, str | None, str, str]]]:
        """Lists of at most `size` tuples (row, name, phone, fields as JSON text), in order:
        what `batches` gives, without a dict per recipient (the fields JSON is built a column
        at a time for Arrow-backed tables)."""
        if size < 1:
            raise ValueError(f"batch size must be at least 1, not {size}")
        for start in range(0, len(self), size):
            stop = min(start + size, len(self))
            yield list(
                zip(
                    self._rows[start:stop].tolist(),
                    _names(self._names[start:stop]),
                    self._phones[start:stop].tolist(),
                    self._fields.json_many(self._positions[start:stop]),
                    strict=True,
                )
            )

    def _dicts(self, start: int, stop: int) -> list[dict[str, Any]]:
        fields = self._fields.many(self._positions[start:stop])
        return [
            {"row": row, "phone": phone, "name": name, "fields": other}
            for row, phone, name, other in zip(
                self._rows[start:stop].tolist(),
                self._phones[start:stop],
                _names(self._names[start:stop]),
                fields,
                strict=True,
            )
        ]


def _names(names: np.ndarray) -> list[str | None]:
    """Names stripped; blank or missing ones as None."""
    return [(name.strip() or None) if isinstance(name, str) else None for name in names.tolist()]


@dataclass(frozen=True)
class Plan:
    """Who a campaign calls and why every other row is left out.

    rows = valid + invalid; `blocked` and `do_not_call` are parts of `invalid`;
    to_call = valid - duplicates (duplicates is 0 when duplicates are allowed).
    """

    rows: int
    valid: int
    invalid: int
    duplicates: int
    blocked: int
    do_not_call: int
    to_call: int
    recipients: Sequence[Recipient]
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]
    duplicate_rows: tuple[Duplicate, ...] = field(default=())

    def recipient_batches(self, size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[dict]]:
        """The recipients as lists of dicts {"row", "phone", "name", "fields"} for bulk inserts."""
        recipients = self.recipients
        if isinstance(recipients, RecipientList):
            yield from recipients.batches(size)
            return
        for start in range(0, len(recipients), size):
            chunk = recipients[start : start + size]
            yield [
                {"row": r.row, "phone": r.phone, "name": r.name, "fields": r.fields} for r in chunk
            ]

    def recipient_rows(
        self, size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[list[tuple[int, str | None, str, str]]]:
        """The recipients as lists of tuples (row, name, phone, fields as JSON text) for bulk
        inserts: the same data as `recipient_batches`, several times cheaper to build."""
        recipients = self.recipients
        if isinstance(recipients, RecipientList):
            yield from recipients.rows(size)
            return
        for batch in self.recipient_batches(size):
            yield [(r["row"], r["name"], r["phone"], _dump_json(r["fields"] or {})) for r in batch]

    def to_json(self) -> dict[str, Any]:
        """The plan as the command line's --json object."""
        recipients = [
            {"row": item["row"], "name": item["name"], "phone": item["phone"]}
            for batch in self.recipient_batches()
            for item in batch
        ]
        return {
            "rows": self.rows,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "to_call": self.to_call,
            "blocked": self.blocked,
            "do_not_call": self.do_not_call,
            "recipients": recipients,
            "problems": [
                {"row": p.row, "value": p.value, "reason": p.reason} for p in self.problems
            ],
            "warnings": list(self.warnings),
            "duplicate_rows": [
                {"row": d.row, "phone": d.phone, "first_row": d.first_row}
                for d in self.duplicate_rows
            ],
        }


def plan_table(table: Table, options: PlanOptions, *, progress: Progress | None = None) -> Plan:
    """Plan a campaign over a file read by `sources.read_table`.

    Each recipient keeps its spreadsheet row number, its name (the name column, stripped) and
    the row's other non-blank cells. `progress` gets fractions 0..1 while numbers are checked.
    Raises ColumnNotFoundError for an unknown phone or name column, PlanError for an unknown
    country code.
    """
    phone_column = require_column(table, options.phone_column, field="phone_column")
    name_column = (
        require_column(table, options.name_column, field="name_column")
        if options.name_column
        else None
    )
    data = table.data
    others = [c for c in table.columns if c not in (phone_column, name_column)]
    names = _object_array(data[name_column]) if name_column else np.full(len(data), None, object)
    return _plan(
        _Source(
            rows=np.asarray(table.row_numbers, dtype=np.int64),
            raw=data[phone_column],
            names=names,
            fields=_Fields(data[others]),
            column=phone_column,
        ),
        options,
        progress,
    )


def plan_records(
    records: Iterable[tuple[int, str | None, str | None, dict[str, str]]],
    options: PlanOptions,
    *,
    progress: Progress | None = None,
) -> Plan:
    """Plan a campaign over records (row, raw phone, name, other fields), such as a contact
    list: the same checks, allowed countries, do-not-call list and duplicate rule as a file.
    `options.phone_column` and `name_column` are not used. Raises PlanError for an unknown
    country code."""
    rows: list[int] = []
    raw: list[str | None] = []
    names: list[str | None] = []
    fields: list[dict[str, str]] = []
    for row, phone, name, other in records:
        rows.append(row)
        raw.append(phone)
        names.append(name)
        fields.append(other)
    source = _Source(
        rows=np.asarray(rows, dtype=np.int64),
        raw=pd.Series(raw, dtype=object),
        names=np.asarray(names, dtype=object),
        fields=_RecordFields(fields),
        column="phone",
    )
    return _plan(source, options, progress)


@dataclass(frozen=True)
class _Source:
    rows: np.ndarray  # spreadsheet row number of each source row
    raw: pd.Series  # raw phone values
    names: np.ndarray  # raw names (object)
    fields: _Fields
    column: str  # phone column name, for warnings


@dataclass(frozen=True)
class _Distinct:
    """The check of each distinct raw phone value; the last entry stands for blank cells."""

    values: list[str | None]
    checks: list[PhoneCheck]  # after the do-not-call list
    codes: np.ndarray  # per source row: index into values/checks
    counts: np.ndarray  # per distinct value: how many rows have it
    phone: np.ndarray  # E.164 or None (object)
    reason: pd.Series  # reason or None, as a Series for fast isin()
    region: pd.Series  # ISO region or None

    @property
    def numbered(self) -> int:
        """Rows that have a phone value at all."""
        return int(self.counts[:-1].sum())

    def rows_with(self, reasons: Iterable[str]) -> int:
        return int(self.counts[self.reason.isin(set(reasons)).to_numpy()].sum())

    def foreign(self, country: str) -> np.ndarray:
        """Valid values whose calling code is not the country's (mask per distinct value)."""
        home = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[phones.calling_code(country)]
        return pd.notna(self.phone) & ~self.region.isin(home).to_numpy()


def _plan(source: _Source, options: PlanOptions, progress: Progress | None) -> Plan:
    with _cyclic_gc_paused():
        return _build(source, options, progress)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector paused while a plan makes a million small objects (checks,
    their cache, duplicates): it frees nothing here, as they hold no cycles, yet traversed
    them again and again: 1.3 of 6.6 CPU s for 1M rows. Reference counting still frees
    everything meanwhile; the collector runs again afterwards (unless the caller had it off)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(source: _Source, options: PlanOptions, progress: Progress | None) -> Plan:
    checker = _checker(options, options.numbers_have_country_code)
    distinct = _check_distinct(source.raw, checker, options.do_not_call, progress)
    valid = pd.notna(distinct.phone)[distinct.codes]
    valid_rows, problem_rows = np.flatnonzero(valid), np.flatnonzero(~valid)
    keep, duplicates = _deduplicate(valid_rows, distinct, source.rows, options.allow_duplicates)
    codes = distinct.codes[keep]
    recipients = RecipientList(
        keep, source.rows[keep], distinct.phone[codes], source.names[keep], source.fields
    )
    reasons = distinct.reason.dropna().unique()
    plan = Plan(
        rows=len(source.rows),
        valid=len(valid_rows),
        invalid=len(problem_rows),
        duplicates=len(duplicates),
        blocked=distinct.rows_with(r for r in reasons if phones.is_blocked_reason(r)),
        do_not_call=distinct.rows_with([REASON_DO_NOT_CALL]),
        to_call=len(keep),
        recipients=recipients,
        problems=_problems(problem_rows, source, distinct),
        warnings=tuple(_warnings(source, options, distinct)),
        duplicate_rows=duplicates,
    )
    if progress:
        progress(1.0)
    return plan


def _checker(options: PlanOptions, has_country_code: bool) -> PhoneChecker:
    return PhoneChecker(
        country=options.country,
        has_country_code=has_country_code,
        allowed_countries=options.allowed_countries,
        block_premium=options.block_premium,
    )


def _check_distinct(
    raw: pd.Series, checker: PhoneChecker, do_not_call: frozenset[str], progress: Progress | None
) -> _Distinct:
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    values: list[str | None] = np.asarray(uniques, dtype=object).tolist()
    checks: list[PhoneCheck] = []
    for start in range(0, len(values), PROGRESS_CHUNK):
        checks.extend(checker.check_distinct(values[start : start + PROGRESS_CHUNK]))
        if progress:
            progress(0.9 * min(1.0, (start + PROGRESS_CHUNK) / len(values)))
    values.append(None)
    checks.append(PhoneCheck(None, phones.REASON_MISSING))
    if do_not_call:
        checks = [_apply_do_not_call(check, do_not_call) for check in checks]
    codes = np.where(codes < 0, len(values) - 1, codes).astype(np.int64)
    return _Distinct(
        values=values,
        checks=checks,
        codes=codes,
        counts=np.bincount(codes, minlength=len(values)),
        phone=np.array([c.phone for c in checks], dtype=object),
        reason=pd.Series([c.reason for c in checks], dtype=object),
        region=pd.Series([c.region for c in checks], dtype=object),
    )


def _apply_do_not_call(check: PhoneCheck, do_not_call: frozenset[str]) -> PhoneCheck:
    if check.phone is not None and check.phone in do_not_call:
        return PhoneCheck(None, REASON_DO_NOT_CALL, check.region)
    return check


def _deduplicate(
    valid_rows: np.ndarray, distinct: _Distinct, row_numbers: np.ndarray, allow: bool
) -> tuple[np.ndarray, tuple[Duplicate, ...]]:
    """(positions of the rows to call, the duplicate rows left out), in file order."""
    if allow or len(valid_rows) == 0:
        return valid_rows, ()
    # Different raw values can be one number ("(415) 555-0100", "+1 415-555-0100"): number
    # ids come from the E.164 phone of each distinct value; the first row of each is kept.
    number_of_value, _ = pd.factorize(distinct.phone, use_na_sentinel=True)
    numbers = number_of_value[distinct.codes[valid_rows]]
    repeated = pd.Series(numbers).duplicated(keep="first").to_numpy()
    if not repeated.any():
        return valid_rows, ()
    first_position = np.empty(numbers.max() + 1, dtype=np.int64)
    first_position[numbers[~repeated]] = valid_rows[~repeated]
    repeats = valid_rows[repeated]
    firsts = first_position[numbers[repeated]]
    duplicates = tuple(
        Duplicate(row, phone, first)
        for row, phone, first in zip(
            row_numbers[repeats].tolist(),
            distinct.phone[distinct.codes[repeats]],
            row_numbers[firsts].tolist(),
            strict=True,
        )
    )
    return valid_rows[~repeated], duplicates


def _problems(
    problem_rows: np.ndarray, source: _Source, distinct: _Distinct
) -> tuple[Problem, ...]:
    values, checks = distinct.values, distinct.checks
    return tuple(
        Problem(row, values[code] or "", checks[code].reason or "")
        for row, code in zip(
            source.rows[problem_rows].tolist(), distinct.codes[problem_rows].tolist(), strict=True
        )
    )


def _object_array(column: pd.Series) -> np.ndarray:
    """Cells as a numpy object array, blanks as None (pandas' str dtype holds them as NaN)."""
    return column.to_numpy(dtype=object, na_value=None)


# --- warnings --------------------------------------------------------------------------------

# Reasons that a different country-code setting could turn into a valid number.
_RECHECKABLE = (
    phones.REASON_UNPARSEABLE,
    phones.REASON_UNKNOWN_COUNTRY_CODE,
    phones.REASON_TOO_SHORT,
    phones.REASON_TOO_LONG,
    phones.REASON_WRONG_LENGTH,
    phones.REASON_LOCAL_ONLY,
    phones.REASON_INVALID,
)


def _warnings(source: _Source, options: PlanOptions, distinct: _Distinct) -> list[str]:
    """Hints that a setting or the column looks wrong, each with how many rows it affects."""
    numbered = distinct.numbered
    if len(source.rows) == 0:
        return []
    if numbered == 0:
        return [f"Column '{source.column}' has no phone numbers: is it the phone column?"]
    warnings = _scientific_warnings(distinct, numbered)
    setting = _setting_warning(options, distinct, numbered)
    if setting:
        return [*warnings, setting]
    if not options.numbers_have_country_code:
        # Checked, the selected country is not where the numbers are expected to be: each
        # number carries its own code (national numbers read as foreign are warned above).
        warnings.extend(_foreign_warnings(options, distinct))
    warnings.extend(_column_warnings(source, distinct, numbered))
    return warnings


def _scientific_warnings(distinct: _Distinct, numbered: int) -> list[str]:
    count = distinct.rows_with([phones.REASON_SCIENTIFIC])
    if count == 0:
        return []
    scope = "Every number" if count == numbered else f"{count:,} of {numbered:,} numbers"
    verb = "is" if count == numbered else "are"
    return [
        f"{scope} in the phone column {verb} in Excel's scientific notation (like "
        "1.41556E+10): the digits are lost and cannot be recovered; re-export the file with "
        "the phone column formatted as text"
    ]


def _setting_warning(options: PlanOptions, distinct: _Distinct, numbered: int) -> str | None:
    """Re-check a bounded sample of suspect values under the other country-code setting;
    warn when a large share of the rows only makes sense under it."""
    candidates = _suspects(options, distinct)
    if len(candidates) == 0:
        return None
    sample = candidates[:WARNING_SAMPLE_SIZE]
    other = _checker(options, not options.numbers_have_country_code)
    flips = [
        i
        for i in sample.tolist()
        if other.check(distinct.values[i]).phone not in (None, distinct.phone[i])
    ]
    affected, exact = _estimate(distinct.counts, candidates, sample, flips)
    if affected == 0 or affected < WARNING_MIN_SHARE * numbered:
        return None
    example = distinct.values[flips[0]]
    count = f"{'' if exact else 'about '}{affected:,} of {numbered:,} numbers"
    return _setting_message(options, count, example, other.check(example).phone)


def _suspects(options: PlanOptions, distinct: _Distinct) -> np.ndarray:
    """Distinct values the other setting might read differently, in file order: invalid ones,
    and (when numbers are said to start with the code) those read as another country. A value
    written with + or 00 reads the same either way, so it never flips."""
    suspect = distinct.reason.isin(_RECHECKABLE).to_numpy(copy=True)
    if options.numbers_have_country_code:
        suspect |= distinct.foreign(options.country)
    return np.flatnonzero(suspect)


def _estimate(
    counts: np.ndarray, candidates: np.ndarray, sample: np.ndarray, flips: list[int]
) -> tuple[int, bool]:
    """(rows that flip, exact?): exact when the sample holds every candidate, else the
    sample's share of rows scaled up to all candidate rows."""
    flipped = int(counts[flips].sum()) if flips else 0
    if len(sample) == len(candidates):
        return flipped, True
    sampled = int(counts[sample].sum())
    return (round(flipped / sampled * int(counts[candidates].sum())) if sampled else 0), False


def _setting_message(
    options: PlanOptions, count: str, example: str | None, reading: str | None
) -> str:
    country = phones.country_label(options.country)
    hint = f" (for example '{example}' would be {reading})" if example and reading else ""
    if not options.numbers_have_country_code:
        return (
            f"{count} are only valid if {HAS_CODE_LABEL} is checked{hint}; check it, or "
            f"choose the right country (now {country})"
        )
    return (
        f"{count} are valid {country} numbers written without their country code, but "
        f"{HAS_CODE_LABEL} is checked{hint}; uncheck it, or choose the right country"
    )


def _foreign_warnings(options: PlanOptions, distinct: _Distinct) -> list[str]:
    foreign = distinct.foreign(options.country)
    count = int(distinct.counts[foreign].sum())
    total = int(distinct.counts[pd.notna(distinct.phone)].sum())
    if count == 0 or count < FOREIGN_MIN_SHARE * total:
        return []
    regions = pd.Series(distinct.counts[foreign], index=distinct.region[foreign].fillna(""))
    top = regions.groupby(level=0).sum().nlargest(3)
    names = ", ".join(f"{_region_name(region)}: {n:,}" for region, n in top.items())
    return [
        f"{count:,} of {total:,} valid numbers are outside {phones.country_label(options.country)}"
        f" ({names}); if that is unexpected, check the country settings"
    ]


def _region_name(region: str) -> str:
    return phones.country_label(region) if region else "international networks"


def _column_warnings(source: _Source, distinct: _Distinct, numbered: int) -> list[str]:
    """The phone column itself looks wrong: mostly blank, or mostly not phone numbers."""
    warnings = []
    missing, rows = int(distinct.counts[-1]), len(source.rows)
    if missing and missing > 0.5 * rows:
        warnings.append(
            f"{missing:,} of {rows:,} rows have no value in column '{source.column}': "
            "is it the phone column?"
        )
    unusable = distinct.rows_with(_RECHECKABLE)
    if unusable and unusable > 0.5 * numbered:
        warnings.append(
            f"{unusable:,} of {numbered:,} values in column '{source.column}' are not valid "
            "phone numbers: is it the phone column, and is the country right?"
        )
    return warnings
