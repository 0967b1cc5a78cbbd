"""Planning: from a contact file to an exact call list, every other row explained."""

from __future__ import annotations

import gc

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkcall_core import phones
from bulkcall_core.errors import ColumnNotFoundError, PlanError
from bulkcall_core.planning import (
    REASON_DO_NOT_CALL,
    WARNING_SAMPLE_SIZE,
    Duplicate,
    Plan,
    PlanOptions,
    Problem,
    Recipient,
    plan_records,
    plan_table,
)
from bulkcall_core.sources import Table, read_table

US = PlanOptions(phone_column="Phone", name_column="Name")


def csv_table(text: str, **kwargs: object) -> Table:
    """A Table read by the real reader from CSV text."""
    return read_table(text.encode(), filename="contacts.csv", **kwargs)  # type: ignore[arg-type]


def frame_table(phones_column: list[str | None], **others: list[str | None]) -> Table:
    """A Table built by hand: header on row 1, data from row 2."""
    data = pd.DataFrame({"Phone": phones_column, **others}, dtype="string[pyarrow]")
    return Table(
        columns=tuple(data.columns),
        data=data,
        row_numbers=np.arange(2, len(data) + 2, dtype=np.int64),
    )


def plan_phones(values: list[str | None], **options: object) -> Plan:
    return plan_table(frame_table(values), PlanOptions(phone_column="Phone", **options))  # type: ignore[arg-type]


def test_counts_add_up_on_a_messy_file() -> None:
    """rows = valid + invalid; blocked and do-not-call are parts of invalid;
    to_call = valid - duplicates."""
    plan = plan_phones(
        [
            "(415) 555-0100",
            "+1 415-555-0100",  # duplicate of row 2
            None,  # missing
            "1-900-234-5678",  # premium: blocked
            "abc",  # unparseable
            "4155550101",  # do-not-call
            "4155550102",
        ],
        do_not_call=frozenset({"+14155550101"}),
    )
    assert (plan.rows, plan.valid, plan.invalid) == (7, 3, 4)
    assert (plan.blocked, plan.do_not_call, plan.duplicates, plan.to_call) == (1, 1, 1, 2)
    assert [r.phone for r in plan.recipients] == ["+14155550100", "+14155550102"]


def test_one_number_written_several_ways_is_called_once() -> None:
    """'(415) 555-0100', '+1 415-555-0100', '001 415 555 0100' are one number: the first row
    is called and the others are listed as duplicates of it."""
    plan = plan_phones(["(415) 555-0100", "4155550199", "+1 415-555-0100", "001 415 555 0100"])
    assert [(r.row, r.phone) for r in plan.recipients] == [(2, "+14155550100"), (3, "+14155550199")]
    assert plan.duplicate_rows == (
        Duplicate(row=4, phone="+14155550100", first_row=2),
        Duplicate(row=5, phone="+14155550100", first_row=2),
    )
    assert plan.problems == ()


def test_duplicates_allowed_calls_every_valid_row() -> None:
    """With duplicates allowed, every valid row is a recipient and duplicates is 0."""
    plan = plan_phones(["(415) 555-0100", "+1 415-555-0100", "bad"], allow_duplicates=True)
    assert (plan.valid, plan.duplicates, plan.to_call) == (2, 0, 2)
    assert [r.row for r in plan.recipients] == [2, 3]
    assert plan.duplicate_rows == ()


def test_row_numbers_count_blank_rows_and_header() -> None:
    """Row numbers are what a spreadsheet shows: header row 1, blank rows counted."""
    table = csv_table("Name,Phone\n\nAnn,4155550100\n,\nBob,4155550101\n\n\nCid,bad\n")
    plan = plan_table(table, US)
    assert [r.row for r in plan.recipients] == [3, 5]
    assert plan.problems == (Problem(row=8, value="bad", reason=phones.REASON_UNPARSEABLE),)


def test_row_numbers_without_header_start_at_one() -> None:
    """Without a header row, the first row is row 1."""
    table = csv_table("Ann,4155550100\nBob,4155550101\n", has_header=False, headers="Name,Phone")
    plan = plan_table(table, US)
    assert [(r.row, r.name) for r in plan.recipients] == [(1, "Ann"), (2, "Bob")]


def test_recipient_keeps_name_and_other_non_blank_columns() -> None:
    """Name from the name column; fields = the other columns, blank ones left out."""
    table = csv_table(
        "Email,Phone,Name,City,Notes\nann@x.org,4155550100,  Ann Lee ,Paris,\n,4155550101,,,\n"
    )
    plan = plan_table(table, US)
    assert list(plan.recipients) == [
        Recipient(
            row=2,
            phone="+14155550100",
            name="Ann Lee",
            fields={"Email": "ann@x.org", "City": "Paris"},
        ),
        Recipient(row=3, phone="+14155550101", name=None, fields={}),
    ]


def test_without_name_column_every_other_column_is_a_field() -> None:
    """No name column: names are None and the name-like column stays in the fields."""
    table = csv_table("Name,Phone\nAnn,4155550100\n")
    plan = plan_table(table, PlanOptions(phone_column="Phone"))
    assert plan.recipients[0].name is None
    assert plan.recipients[0].fields == {"Name": "Ann"}


def test_blank_phone_with_other_cells_is_a_missing_row() -> None:
    """A row with cells but no phone counts as a row, rejected as missing."""
    plan = plan_table(csv_table("Name,Phone\nAnn,\nBob,4155550100\n"), US)
    assert (plan.rows, plan.invalid) == (2, 1)
    assert plan.problems == (Problem(row=2, value="", reason=phones.REASON_MISSING),)


def test_do_not_call_numbers_are_skipped_with_their_reason() -> None:
    """A number on the do-not-call list, however written, is a problem with its reason."""
    plan = plan_phones(
        ["+1 (415) 555-0100", "4155550100", "4155550101"],
        do_not_call=frozenset({"+14155550100"}),
    )
    assert [p.reason for p in plan.problems] == [REASON_DO_NOT_CALL, REASON_DO_NOT_CALL]
    assert (plan.do_not_call, plan.duplicates, plan.to_call) == (2, 0, 1)


def test_allowed_countries_block_other_countries() -> None:
    """With a channel limited to US, UK and French numbers are blocked, with the reason."""
    plan = plan_phones(
        ["+44 7400 123456", "+33 6 12 34 56 78", "4155550100"],
        allowed_countries=frozenset({"US"}),
    )
    assert (plan.blocked, plan.invalid, plan.to_call) == (2, 2, 1)
    assert {p.reason for p in plan.problems} == {"outside the channel's allowed countries (US)"}


def test_premium_numbers_blocked_unless_allowed() -> None:
    """Premium-rate numbers are blocked by default and callable with block_premium=False."""
    values = ["+1 900 234 5678", "+44 909 8765432"]
    assert plan_phones(values).blocked == 2
    assert plan_phones(values, block_premium=False).to_call == 2


def test_problems_keep_the_raw_value_and_file_order() -> None:
    """Problems are in file order with the value exactly as the file had it."""
    plan = plan_phones(["1.41556E+10", "4155550100", "12", "x"])
    assert [(p.row, p.value) for p in plan.problems] == [(2, "1.41556E+10"), (4, "12"), (5, "x")]


def test_unknown_phone_column_names_existing_columns() -> None:
    """A missing phone column is a ColumnNotFoundError listing the file's columns."""
    with pytest.raises(ColumnNotFoundError, match="Name, Phone") as caught:
        plan_table(csv_table("Name,Phone\nAnn,1\n"), PlanOptions(phone_column="Cell"))
    assert caught.value.field == "phone_column"


def test_unknown_name_column_is_an_error_for_that_field() -> None:
    """A missing name column is reported against the name field."""
    options = PlanOptions(phone_column="Phone", name_column="Full name")
    with pytest.raises(ColumnNotFoundError) as caught:
        plan_table(csv_table("Name,Phone\nAnn,1\n"), options)
    assert caught.value.field == "name_column"


def test_column_names_are_matched_loosely() -> None:
    """'phone' finds 'Phone' (the reader's case/space-insensitive match)."""
    plan = plan_table(csv_table("Name,Phone\nAnn,4155550100\n"), PlanOptions(phone_column="phone"))
    assert plan.to_call == 1


def test_unknown_country_is_a_plan_error() -> None:
    """A bad country code is refused before any number is read."""
    with pytest.raises(PlanError, match="'ZZ'"):
        plan_phones(["4155550100"], country="ZZ")


def test_recipients_behave_as_a_sequence() -> None:
    """len, indexing (negative too), slicing and iteration all give Recipients in order."""
    plan = plan_phones([f"415555{n:04d}" for n in range(120, 130)])
    recipients = plan.recipients
    assert len(recipients) == 10
    assert recipients[0].phone == "+14155550120"
    assert recipients[-1].phone == "+14155550129"
    assert [r.row for r in recipients[2:5]] == [4, 5, 6]
    assert [r.row for r in recipients[::-3]] == [11, 8, 5, 2]
    assert list(recipients)[3] == recipients[3]
    with pytest.raises(IndexError):
        recipients[10]


def test_recipient_batches_cover_every_recipient_once() -> None:
    """Batches of dicts, at most `size` each, hold every recipient in order."""
    plan = plan_phones([f"415555{n:04d}" for n in range(100, 125)])
    batches = list(plan.recipient_batches(size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    flat = [item for batch in batches for item in batch]
    assert flat[0] == {"row": 2, "phone": "+14155550100", "name": None, "fields": {}}
    assert [item["phone"] for item in flat] == [r.phone for r in plan.recipients]


def _rows_from_dicts(plan: Plan, size: int) -> list[list[tuple[object, ...]]]:
    """What recipient_rows must give, built from recipient_batches and orjson."""
    return [
        [(r["row"], r["name"], r["phone"], orjson.dumps(r["fields"]).decode()) for r in batch]
        for batch in plan.recipient_batches(size)
    ]


def test_recipient_rows_match_the_dicts_on_messy_cells() -> None:
    """Tuples (row, name, phone, fields JSON) equal the dict batches with their fields dumped
    by orjson: quotes, backslashes, tabs, newlines, control characters, non-ASCII, blank and
    whitespace-only cells, a name column to strip, and a row with no other cells."""
    text = (
        "Name,Phone,Notes,City,Code\n"
        ' Ann ,4155550100,"said ""hi""",São Paulo,a\\b\n'
        '  ,4155550101,"two\nlines\there",   ,\x01x\n'
        "Bob,4155550102,,,\n"
        "Cid,4155550103,</script> \u2028 é,Zürich,\x7f\n"
    )
    table = csv_table(text)
    assert isinstance(table.data["Notes"].array, pd.arrays.ArrowStringArray)  # the Arrow path
    plan = plan_table(table, US)
    got = list(plan.recipient_rows(size=3))
    assert got == _rows_from_dicts(plan, 3)
    assert [len(batch) for batch in got] == [3, 1]
    assert got[0][0] == (
        2,
        "Ann",
        "+14155550100",
        '{"Notes":"said \\"hi\\"","City":"São Paulo","Code":"a\\\\b"}',
    )
    assert got[0][1][1] is None and "\\n" in got[0][1][3] and "\\u0001" in got[0][1][3]
    assert got[0][2][3] == "{}"


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.tuples(st.none() | st.text(), st.none() | st.text()), max_size=12))
def test_recipient_rows_match_the_dicts_for_any_text(
    cells: list[tuple[str | None, str | None]],
) -> None:
    """Any text in Arrow string columns (column names with quotes too) gives the same
    fields JSON as orjson over the dicts."""
    table = frame_table(
        [f"415555{n:04d}" for n in range(len(cells))],
        **{'Note "a"': [a for a, _ in cells], "B\\": [b for _, b in cells]},
    )
    plan = plan_table(table, PlanOptions(phone_column="Phone"))
    assert list(plan.recipient_rows(size=5)) == _rows_from_dicts(plan, 5)


def test_recipient_rows_match_the_dicts_for_hand_made_tables() -> None:
    """Tables whose columns are not Arrow strings (object cells, numbers) and contact-list
    records take the dict path: the same tuples as before."""
    data = pd.DataFrame({"Phone": ["4155550100", "4155550101"], "Age": [31, None]})
    data["Note"] = pd.Series([" x ", "  "], dtype=object)
    table = Table(columns=tuple(data.columns), data=data, row_numbers=np.array([2, 3]))
    plan = plan_table(table, PlanOptions(phone_column="Phone"))
    assert list(plan.recipient_rows()) == _rows_from_dicts(plan, 50_000)
    records = [
        (1, "+14155550100", " Ann ", {"City": "SF", "Empty": " "}),
        (2, "+14155550101", None, {}),
    ]
    listed = plan_records(records, PlanOptions(phone_column=""))
    assert list(listed.recipient_rows()) == [
        [(1, "Ann", "+14155550100", '{"City":"SF"}'), (2, None, "+14155550101", "{}")]
    ]


def test_recipient_rows_of_a_plain_recipient_sequence() -> None:
    """A Plan built with a plain list of Recipients gives the same tuples."""
    recipients = [Recipient(row=5, phone="+14155550100", name=None, fields={"a": "b"})]
    plan = Plan(1, 1, 0, 0, 0, 0, 1, recipients, (), ())
    assert list(plan.recipient_rows()) == [[(5, None, "+14155550100", '{"a":"b"}')]]


def test_recipient_rows_refuse_an_empty_batch_size() -> None:
    """A batch size below 1 is a programming error, said as such."""
    plan = plan_phones(["4155550100"])
    with pytest.raises(ValueError, match="at least 1"):
        list(plan.recipient_rows(size=0))


def test_to_json_has_the_command_line_shape() -> None:
    """The JSON object has the documented keys and recipient/problem shapes."""
    plan = plan_table(csv_table("Name,Phone\nAnn,4155550100\nBob,bad\n"), US)
    data = plan.to_json()
    assert {"rows", "valid", "invalid", "duplicates", "to_call", "recipients", "problems"} <= set(
        data
    )
    assert data["recipients"] == [{"row": 2, "name": "Ann", "phone": "+14155550100"}]
    assert data["problems"] == [{"row": 3, "value": "bad", "reason": phones.REASON_UNPARSEABLE}]
    assert data["warnings"] == []


def test_progress_reports_rise_to_one() -> None:
    """The progress callback sees fractions in 0..1, never decreasing, ending at 1."""
    seen: list[float] = []
    plan_table(
        frame_table([f"415555{n:04d}" for n in range(50_000)]), US_PHONE, progress=seen.append
    )
    assert seen[-1] == 1.0
    assert all(0 <= a <= b <= 1 for a, b in zip(seen, seen[1:], strict=False))
    assert len(seen) > 2


US_PHONE = PlanOptions(phone_column="Phone")


# --- warnings ---------------------------------------------------------------------------------


def test_warns_when_numbers_only_work_with_the_country_code_box() -> None:
    """Unchecked, but the numbers start with their codes: the warning counts them and says
    which box to check."""
    plan = plan_phones(["447400123456", "33612345678", "4930123456", "4155550100"])
    assert len(plan.warnings) == 1
    warning = plan.warnings[0]
    assert warning.startswith("3 of 4 numbers are only valid if")
    assert "start with the country code' is checked" in warning
    assert "+447400123456" in warning


def test_warns_when_the_box_is_checked_for_national_numbers() -> None:
    """Checked, but the numbers are US national numbers: the warning says to uncheck it."""
    values = ["(415) 555-0100", "212-555-0100", "617 555 0100", "(312) 555-0100"]
    plan = plan_phones(values, numbers_have_country_code=True)
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("4 of 4 numbers are valid United States (+1) numbers")
    assert "uncheck it" in plan.warnings[0]


def test_checked_box_reading_national_numbers_as_foreign_is_warned() -> None:
    """US '434 761 3803' read with the code is a valid Austrian number, surely wrong: warned."""
    plan = plan_phones(["4347613803", "4357982961"], numbers_have_country_code=True)
    assert [r.phone[:3] for r in plan.recipients] == ["+43", "+43"]
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("2 of 2 numbers are valid United States (+1) numbers")


def test_numbers_written_with_a_plus_never_suggest_unchecking() -> None:
    """'+44 ...' reads the same with the box checked or not: no setting warning."""
    plan = plan_phones(["+44 7400 123456", "+33 6 12 34 56 78"], numbers_have_country_code=True)
    assert not any("uncheck it" in warning for warning in plan.warnings)


def test_no_setting_warning_for_a_right_setting() -> None:
    """A clean file with the right setting has no warnings."""
    assert plan_phones(["4155550100", "+44 7400 123456", "(212) 555-0100"]).warnings == ()
    checked = plan_phones(["14155550100", "12125550100"], numbers_have_country_code=True)
    assert checked.warnings == ()


def test_a_few_odd_rows_do_not_warn_about_the_setting() -> None:
    """One row in twenty with a country code is a problem row, not a setting warning."""
    plan = plan_phones(["447400123456"] + [f"415555{n:04d}" for n in range(100, 119)])
    assert plan.invalid == 1
    assert not any("is checked" in warning for warning in plan.warnings)


def test_large_files_estimate_the_setting_warning_from_a_sample() -> None:
    """Beyond the sample size, the count is an estimate and says 'about'."""
    values = [f"4474{n:08d}" for n in range(WARNING_SAMPLE_SIZE * 2)]
    plan = plan_phones(values)
    assert plan.warnings[0].startswith(f"about {len(values):,} of {len(values):,} numbers")


def test_warns_when_the_whole_column_is_scientific_notation() -> None:
    """A column mangled by Excel says so once, for every row."""
    plan = plan_phones(["1.41556E+10", "4.15556E+09", "1,41556E+10"])
    assert plan.warnings[0].startswith("Every number in the phone column is in Excel's")
    assert plan.to_call == 0


def test_warns_when_many_numbers_are_from_other_countries() -> None:
    """Most numbers outside the selected country: a warning naming the top countries."""
    plan = plan_phones(["+44 7400 123456", "+44 7400 123457", "+33 6 12 34 56 78", "4155550100"])
    assert plan.warnings == (
        "3 of 4 valid numbers are outside United States (+1) (United Kingdom (+44): 2, "
        "France (+33): 1); if that is unexpected, check the country settings",
    )


def test_no_foreign_warning_when_numbers_carry_their_codes() -> None:
    """Box checked: each number says its country, so other countries are not a warning."""
    plan = plan_phones(["447400123456", "33612345678"], numbers_have_country_code=True)
    assert (plan.to_call, plan.warnings) == (2, ())


def test_warns_when_the_column_does_not_hold_phone_numbers() -> None:
    """An email column picked as the phone column is flagged."""
    plan = plan_phones(["ann@x.org", "bob@y.org", "4155550100"])
    assert any("is it the phone column" in warning for warning in plan.warnings)


def test_warns_when_the_column_is_empty() -> None:
    """A phone column without any value is flagged."""
    plan = plan_table(frame_table([None, None], Name=["a", "b"]), US_PHONE)
    assert plan.warnings == ("Column 'Phone' has no phone numbers: is it the phone column?",)


# --- contact records --------------------------------------------------------------------------


def test_plan_records_applies_the_same_rules() -> None:
    """Contact-list records get duplicates, do-not-call and allowed countries like a file."""
    records = [
        (1, "+14155550100", "Ann", {"City": "SF", "Empty": ""}),
        (2, "+14155550100", "Ann again", {}),
        (3, "+14155550101", "Bob", {}),
        (4, "+447400123456", "Cid", {}),
        (5, None, "Dee", {}),
    ]
    options = PlanOptions(
        phone_column="",
        do_not_call=frozenset({"+14155550101"}),
        allowed_countries=frozenset({"US"}),
    )
    plan = plan_records(iter(records), options)
    assert list(plan.recipients) == [
        Recipient(row=1, phone="+14155550100", name="Ann", fields={"City": "SF"})
    ]
    assert (plan.rows, plan.duplicates, plan.do_not_call, plan.blocked) == (5, 1, 1, 1)
    assert [p.reason for p in plan.problems][2] == phones.REASON_MISSING


def test_plan_records_of_nothing_is_an_empty_plan() -> None:
    """An empty list plans to nothing, without errors."""
    plan = plan_records([], PlanOptions(phone_column=""))
    assert (plan.rows, plan.to_call, len(plan.recipients), plan.problems) == (0, 0, 0, ())
    assert plan.warnings == ()


# --- properties -------------------------------------------------------------------------------

PHONE_VALUES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "(415) 555-0100",
            "+1 415-555-0100",
            "4155550101",
            "+44 7400 123456",
            "1-900-234-5678",
            "1.41556E+10",
            "abc",
            "12",
            "  ",
            "+33 6 12 34 56 78",
        ]
    ),
    st.from_regex(r"\+?[0-9 ()\-]{0,16}", fullmatch=True),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(PHONE_VALUES, max_size=40),
    allow_duplicates=st.booleans(),
    has_code=st.booleans(),
    dnc=st.sets(st.sampled_from(["+14155550100", "+447400123456"])),
)
def test_plan_invariants(
    values: list[str | None], allow_duplicates: bool, has_code: bool, dnc: set[str]
) -> None:
    """For any file: counts add up, recipients are in file order, unique unless duplicates
    are allowed, and every row is either a recipient, a duplicate or a problem."""
    plan = plan_phones(
        values,
        allow_duplicates=allow_duplicates,
        numbers_have_country_code=has_code,
        do_not_call=frozenset(dnc),
    )
    recipients = list(plan.recipients)
    assert plan.rows == len(values) == plan.valid + plan.invalid
    assert plan.to_call == plan.valid - plan.duplicates == len(recipients)
    assert plan.blocked + plan.do_not_call <= plan.invalid == len(plan.problems)
    rows = [r.row for r in recipients]
    assert rows == sorted(rows)
    if not allow_duplicates:
        assert len({r.phone for r in recipients}) == len(recipients)
    accounted = rows + [d.row for d in plan.duplicate_rows] + [p.row for p in plan.problems]
    assert sorted(accounted) == list(range(2, len(values) + 2))
    assert all(r.phone.startswith("+") and r.phone not in dnc for r in recipients)


def test_planning_turns_the_cycle_collector_back_on() -> None:
    """The cycle collector, paused while planning, is on again afterwards, also when the
    plan fails; a caller that had it off finds it still off."""
    assert gc.isenabled()
    plan_phones(["4155550100"])
    assert gc.isenabled()
    with pytest.raises(PlanError):
        plan_phones(["4155550100"], country="XX")
    assert gc.isenabled()
    gc.disable()
    try:
        plan_phones(["4155550100"])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_planning_pauses_the_cycle_collector_while_it_checks() -> None:
    """While numbers are checked (seen from the progress callback), the collector is off."""
    states: list[bool] = []
    table = frame_table(["4155550100", "4155550101"])
    options = PlanOptions(phone_column="Phone")
    plan_table(table, options, progress=lambda _: states.append(gc.isenabled()))
    assert states and not any(states)
