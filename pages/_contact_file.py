"""The contact-file widget shared by Bulk calling and Contacts: upload, column mapping, live
preview (click a column to map it), and the validation summary of the whole file.

The parsed Table and the Plan are kept in session_state, keyed on the file's hash and the
options, so that a rerun (any click anywhere on the page) never re-reads a large file; the
browser only ever receives the preview rows and at most PROBLEM_ROWS_SHOWN problem rows.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import io
import logging
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import streamlit as st
from python_calamine import CalamineWorkbook

from bulkcall_core import phones, planning, sources
from bulkcall_core.errors import BulkCallError
from pages._common import show_error

# Rows of the file shown in the preview table: enough to recognise the columns.
PREVIEW_ROWS = 50
# Per-file upload limit shown and enforced by the uploaders (issue: files up to 100 MB). The
# global server.maxUploadSize is one more, because Streamlit counts the request's framing too.
MAX_UPLOAD_MB = 100
# Problem rows sent to the browser; the rest are in the download.
PROBLEM_ROWS_SHOWN = 200
# Plans kept per widget, so that flipping an option back is instant; a plan of a large file
# holds every recipient, so only the current one is kept beyond LARGE_PLAN_ROWS.
PLANS_KEPT = 2
LARGE_PLAN_ROWS = 200_000
METRICS_PER_ROW = 4
# Work on a small file is always awaited in the script run (a fraction of a second, and its
# summary shows at once); a larger file gets this long before it carries on in a worker thread
# while the page stays usable.
SMALL_FILE_BYTES = 1_000_000
SMALL_TABLE_ROWS = 20_000
INLINE_WAIT_SECONDS = 2.0
# How often the progress bar of background work is redrawn.
POLL_SECONDS = 0.5
# Threads for reading and checking files, shared by every session: the machine's 2 cores.
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="contact-file")

T = TypeVar("T")
LOG = logging.getLogger(__name__)
UNEXPECTED = (
    "This file could not be checked because of an error in bulkcall itself, not in your file. "
    "It has been logged; tell whoever runs the dashboard. Other files and fields still work."
)
CLICK_PHONE = "Phone number"
CLICK_NAME = "Recipient name"
COUNTRY_CODE_HELP = (
    "Checked: numbers without + or 00 already start with their country code "
    "(447911123456 is called as +44 7911 123456, whatever country is selected above). "
    "Unchecked: such numbers are national numbers of the selected country. "
    "Getting this wrong makes numbers invalid or, worse, calls the wrong people: "
    "check the summary below before you continue."
)
DUPLICATES_HELP = (
    "Keep this unchecked (recommended): each number is called once however it is written, "
    "(415) 555-0100 and +1 415-555-0100 being one number. Checked: every row is called, and "
    "calls do not wait for earlier ones to finish, so one person may get several calls at once."
)


@dataclass(frozen=True)
class StoredFile:
    """An uploaded file kept across reruns and page switches."""

    digest: str
    name: str
    data: bytes


@dataclass(frozen=True)
class FileOutcome:
    """What the widget hands back to its page."""

    file: StoredFile | None
    plan: planning.Plan | None  # None until the file reads and a phone column is mapped
    problems: tuple[str, ...]  # blocking problems, already shown beside their fields


def file_digest(data: bytes) -> str:
    """A short, stable key for a file's content."""
    return hashlib.sha256(data).hexdigest()[:32]


def parse_headers(text: str) -> tuple[str, ...] | None:
    """'Name, Phone ,Email' -> ('Name', 'Phone', 'Email'); blank -> None."""
    names = tuple(part.strip() for part in text.split(","))
    return names if any(names) else None


def selected_column(selection: Any) -> str | None:
    """The one column of a `st.dataframe` single-column selection state, or None."""
    if not selection:
        return None
    columns = (selection.get("selection") or {}).get("columns") or []
    return str(columns[0]) if columns else None


def selection_state(column: str | None) -> dict[str, Any]:
    """A dataframe selection state that highlights `column` (or nothing)."""
    return {"selection": {"rows": [], "columns": [column] if column else [], "cells": []}}


def summary_metrics(plan: planning.Plan) -> list[tuple[str, int, str]]:
    """(label, value, help) for the validation metric row, in the order shown."""
    return [
        ("Rows", plan.rows, "Data rows in the file, blank rows not counted"),
        ("Valid", plan.valid, "Rows whose number can be called"),
        (
            "Invalid",
            plan.invalid,
            "Rows that cannot be called: missing or invalid numbers, and the blocked and "
            "do-not-call ones counted apart beside",
        ),
        ("Duplicates", plan.duplicates, "Repeats of a number already called once: skipped"),
        (
            "Blocked",
            plan.blocked,
            "Part of Invalid: premium-rate, shared-cost, or outside the channel's countries",
        ),
        ("Do not call", plan.do_not_call, "Part of Invalid: on the do-not-call list"),
        ("To call", plan.to_call, "Calls that will be placed"),
    ]


def problems_frame(plan: planning.Plan, limit: int | None = None) -> pd.DataFrame:
    """The rows not called (rejected rows and repeated numbers) as a table of row, value and
    reason in row order; the first `limit` of them (None: all)."""
    problems = plan.problems if limit is None else plan.problems[:limit]
    repeats = plan.duplicate_rows if limit is None else plan.duplicate_rows[:limit]
    rows = [(p.row, p.value, p.reason) for p in problems]
    rows += [(d.row, d.phone, f"duplicate of row {d.first_row}") for d in repeats]
    rows.sort(key=lambda row: row[0])
    return pd.DataFrame(rows[:limit], columns=["Row", "Value", "Reason"])


def preview_frame(preview: sources.Preview) -> pd.DataFrame:
    """The preview rows indexed by their spreadsheet row number."""
    frame = preview.data.copy()
    frame.index = pd.Index(list(preview.row_numbers), name="Row")
    return frame


@st.cache_data(max_entries=1, show_spinner=False)
def country_labels() -> dict[str, str]:
    """ISO code -> "United Kingdom (+44)", in display order (computed once per process)."""
    return dict(phones.country_options())


# --------------------------------------------------------------------------------------------
# session_state helpers


def stored_file(prefix: str) -> StoredFile | None:
    return st.session_state.get(f"{prefix}_stored_file")


def forget_file(prefix: str) -> None:
    """Drop the stored file and everything computed from it (running work is cancelled)."""
    for name in ("table", "plan"):
        job = st.session_state.pop(f"{prefix}_job_{name}", None)
        if job is not None:
            job.cancelled = True
    for suffix in ("stored_file", "cache_preview", "cache_plans", "columns_seen"):
        st.session_state.pop(f"{prefix}_{suffix}", None)


def remember_upload(prefix: str) -> bool:
    """Uploader callback body: keep the bytes of `{prefix}_file` hash-keyed in session_state,
    so that a rerun or a page switch loses nothing. Clearing the uploader forgets the file.

    Returns True when a new file replaced what was kept.
    """
    upload = st.session_state.get(f"{prefix}_file")
    if upload is None:
        forget_file(prefix)
        return False
    data = upload.getvalue()
    previous = stored_file(prefix)
    digest = file_digest(data)
    if previous is not None and previous.digest == digest:
        return False
    forget_file(prefix)
    st.session_state[f"{prefix}_stored_file"] = StoredFile(digest, upload.name, data)
    return True


def _new_contact_file(prefix: str) -> None:
    if remember_upload(prefix):
        st.session_state[f"{prefix}_suggest"] = True
        st.session_state.pop(f"{prefix}_sheet", None)


def cached(prefix: str, name: str, key: Hashable, make: Callable[[], Any]) -> Any:
    """One value per (prefix, name) kept in session_state, recomputed only when `key` changes:
    a rerun (any click) must not redo slow work such as reading or planning a large file."""
    slot = f"{prefix}_cache_{name}"
    held = st.session_state.get(slot)
    if held is not None and held[0] == key:
        return held[1]
    value = make()
    st.session_state[slot] = (key, value)
    return value


# --------------------------------------------------------------------------------------------
# The widget


def contact_file(
    prefix: str,
    *,
    default_country: str,
    duplicates_option: bool = True,
    allowed_countries: frozenset[str] | None = None,
    do_not_call: frozenset[str] = frozenset(),
    block_premium: bool = True,
    show_errors_for_missing: bool = False,
) -> FileOutcome:
    """Draw the whole contact-file section and return the file and its plan.

    `prefix` keys every widget and cache (`bulk`, `contacts_import`...). Errors are shown beside
    their fields; `show_errors_for_missing` also flags what is still missing (no file, no phone
    column), which a page turns on once the user tried to continue.
    """
    st.file_uploader(
        "Contact file (CSV or Excel)",
        type=sorted(sources.SUPPORTED_EXTENSIONS),
        key=f"{prefix}_file",
        max_upload_size=MAX_UPLOAD_MB,
        on_change=_new_contact_file,
        args=(prefix,),
        help="Exported from another system as is: any columns, in any order. "
        "CSV (any common encoding and separator), .xlsx, .xlsm, .xls or .ods.",
    )
    file = stored_file(prefix)
    if file is None:
        if show_errors_for_missing:
            st.error("Upload a contact file.", icon=":material/error:")
        return FileOutcome(None, None, ("Upload a contact file.",))
    if st.session_state.get(f"{prefix}_file") is None:
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.caption(f"Using **{file.name}**, uploaded earlier.")
        right.button("Remove", key=f"{prefix}_forget", on_click=forget_file, args=(prefix,))

    _seed_defaults(prefix, default_country)
    st.checkbox(
        "The file's first record doesn't have column headers",
        key=f"{prefix}_no_header",
        persist_state="session",
    )
    headers = None
    if st.session_state.get(f"{prefix}_no_header"):
        st.text_input(
            "Column headers, comma-separated, in file order",
            key=f"{prefix}_headers",
            placeholder="Name, Phone, Email",
            persist_state="session",
            help="One name per column of the file, in the file's order.",
        )
        headers = parse_headers(st.session_state.get(f"{prefix}_headers", ""))
    preview = _read_preview(prefix, file, headers)
    if preview is None:
        return FileOutcome(file, None, ("The file cannot be read.",))

    _apply_suggestions(prefix, preview)
    slots = _mapping_fields(prefix, preview, duplicates_option)
    _preview_table(prefix, preview)
    phone = _clean(st.session_state.get(f"{prefix}_phone_col"))
    if phone is None:
        message = "Pick the phone number column (type its header or click it in the preview)."
        if show_errors_for_missing:
            slots["phone_column"].error(message, icon=":material/error:")
        else:
            slots["phone_column"].info(message, icon=":material/touch_app:")
        return FileOutcome(file, None, (message,))
    plan = _plan(
        prefix, file, preview, headers, allowed_countries, do_not_call, block_premium, slots
    )
    if plan is None:
        return FileOutcome(file, None, ("The file cannot be checked.",))
    if plan is BUSY:
        return FileOutcome(file, None, ("The file is still being checked.",))
    show_summary(plan, key=f"{prefix}_problems_download")
    if plan.to_call:
        return FileOutcome(file, plan, ())
    message = (
        "No number in this file can be called: check the phone column, the country and the "
        "country-code box above."
    )
    st.error(message, icon=":material/error:")
    return FileOutcome(file, plan, (message,))


def _seed_defaults(prefix: str, default_country: str) -> None:
    """Set widget defaults in session_state before the widgets are drawn.

    The country follows the channel's region until the user picks another one.
    """
    country_key = f"{prefix}_country"
    seeded = st.session_state.get(f"{prefix}_country_seed")
    if country_key not in st.session_state or st.session_state[country_key] == seeded:
        st.session_state[country_key] = default_country
    st.session_state[f"{prefix}_country_seed"] = default_country
    st.session_state.setdefault(f"{prefix}_click_target", CLICK_PHONE)


def _read_preview(
    prefix: str, file: StoredFile, headers: tuple[str, ...] | None
) -> sources.Preview | None:
    sheet = st.session_state.get(f"{prefix}_sheet")
    has_header = not st.session_state.get(f"{prefix}_no_header")
    key = (file.digest, sheet, has_header, headers)
    preview = guarded(
        lambda: cached(
            prefix,
            "preview",
            key,
            lambda: sources.read_preview(
                file.data,
                filename=file.name,
                sheet=sheet,
                has_header=has_header,
                headers=list(headers) if headers else None,
                max_rows=PREVIEW_ROWS,
            ),
        ),
        f"previewing {file.name}",
    )
    if preview is not None:
        for note in preview.notes:
            st.info(note, icon=":material/info:")
    sheets = preview.sheet_names if preview is not None else _workbook_sheets(file)
    if len(sheets) > 1:
        current = preview.sheet if preview is not None else sheet
        st.selectbox(
            "Sheet",
            sheets,
            index=sheets.index(current) if current in sheets else 0,
            key=f"{prefix}_sheet",
            persist_state="session",
            help="This workbook has several sheets; the first one is read unless you pick another.",
        )
    return preview


def _workbook_sheets(file: StoredFile) -> tuple[str, ...]:
    """The sheet names of a workbook whose chosen sheet could not be read (a cover sheet with
    a title only...), so that the user can still pick the sheet with the contacts; () for
    anything else. Workaround: sources has no public call for this yet."""
    try:
        return tuple(CalamineWorkbook.from_filelike(io.BytesIO(file.data)).sheet_names)
    except Exception:  # not a workbook, or unreadable: the preview's error already says so
        return ()


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _apply_suggestions(prefix: str, preview: sources.Preview) -> None:
    """On a new file, or when the columns change (new headers, another sheet), preselect the
    likely phone and name columns. A header the user typed is kept otherwise, so that a wrong
    one gets its "not found" message instead of silently changing."""
    columns = tuple(preview.columns)
    seen_key = f"{prefix}_columns_seen"
    changed = st.session_state.get(seen_key) not in (None, columns)
    st.session_state[seen_key] = columns
    if not (st.session_state.pop(f"{prefix}_suggest", False) or changed):
        return
    phone, name = sources.suggest_columns(preview)
    st.session_state[f"{prefix}_phone_col"] = phone
    st.session_state[f"{prefix}_name_col"] = name


def _mapping_fields(
    prefix: str, preview: sources.Preview, duplicates_option: bool
) -> dict[str, Any]:
    """Draw the column and number settings; returns an empty slot under each column field,
    keyed by the core's field name, for its error."""
    columns = list(preview.columns)
    left, right = st.columns(2)
    with left:
        _column_field(
            prefix,
            "phone",
            columns,
            "Phone number column header",
            placeholder="Pick or type the header of the phone numbers",
            help="You can also click the column in the preview below.",
        )
        phone_slot = st.empty()
        labels = country_labels()
        st.selectbox(
            "To country code",
            list(labels),
            format_func=lambda code: labels.get(code, code),
            key=f"{prefix}_country",
            persist_state="session",
            help="The country of numbers written without a country code. Its default is the "
            "country of the channel's own number: if the value shown by default is correct, "
            "no need to change it.",
        )
    with right:
        _column_field(
            prefix,
            "name",
            columns,
            "Recipient name column header (optional)",
            placeholder="None",
            help="Used to show each recipient's name in History.",
        )
        name_slot = st.empty()
        st.checkbox(
            "Phone numbers in the uploaded file start with the country code",
            key=f"{prefix}_has_cc",
            persist_state="session",
            help=COUNTRY_CODE_HELP,
        )
    slots = {"phone_column": phone_slot, "name_column": name_slot}
    if duplicates_option:
        st.checkbox(
            "Duplicates allowed",
            key=f"{prefix}_allow_dupes",
            persist_state="session",
            help=DUPLICATES_HELP,
        )
        if st.session_state.get(f"{prefix}_allow_dupes"):
            st.caption(
                ":orange[Every row will be called, repeated numbers included; calls don't "
                "wait for earlier ones, so one person may ring several times at once. "
                "Keep it unchecked unless that is what you want.]"
            )
    return slots


def _column_field(
    prefix: str, which: str, columns: list[str], label: str, *, placeholder: str, help: str
) -> None:
    """A column picker (`which` is "phone" or "name") that also accepts a typed header, so a
    wrong one gets the core's "not found, the file has: ..." message."""
    st.selectbox(
        label,
        columns,
        index=None,
        key=f"{prefix}_{which}_col",
        persist_state="session",
        placeholder=placeholder,
        accept_new_options=True,
        on_change=_sync_selection_from_fields,
        args=(prefix,),
        help=help,
    )


def _click_target_key(prefix: str) -> str:
    return f"{prefix}_phone_col" if _target_is_phone(prefix) else f"{prefix}_name_col"


def _target_is_phone(prefix: str) -> bool:
    return st.session_state.get(f"{prefix}_click_target", CLICK_PHONE) == CLICK_PHONE


def _sync_fields_from_selection(prefix: str) -> None:
    """Preview callback: the clicked column goes into the field the radio points at."""
    column = selected_column(st.session_state.get(f"{prefix}_preview"))
    if column is None:
        return
    target = _click_target_key(prefix)
    other = f"{prefix}_name_col" if _target_is_phone(prefix) else f"{prefix}_phone_col"
    st.session_state[target] = column
    if st.session_state.get(other) == column:
        st.session_state[other] = None


def _sync_selection_from_fields(prefix: str) -> None:
    """Field or radio callback: highlight the mapped column in the preview."""
    column = _clean(st.session_state.get(_click_target_key(prefix)))
    st.session_state[f"{prefix}_preview"] = selection_state(column)


def _delimiter_name(delimiter: str | None) -> str:
    names = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}
    return names.get(delimiter or ",", repr(delimiter))


def _preview_table(prefix: str, preview: sources.Preview) -> None:
    count = len(preview.data)
    shown = (
        f"first {count} rows"
        if preview.truncated
        else "the only row"
        if count == 1
        else f"all {count} rows"
    )
    read_as = (
        f" · read as {preview.encoding}, separated by {_delimiter_name(preview.delimiter)}"
        if preview.encoding
        else f" · sheet '{preview.sheet}'"
        if preview.sheet
        else ""
    )
    st.markdown(f"**Preview** · {shown}{read_as}")
    st.radio(
        "Clicking a column sets",
        [CLICK_PHONE, CLICK_NAME],
        key=f"{prefix}_click_target",
        persist_state="session",
        horizontal=True,
        on_change=_sync_selection_from_fields,
        args=(prefix,),
    )
    df_key = f"{prefix}_preview"
    wanted = selection_state(_clean(st.session_state.get(_click_target_key(prefix))))
    if selected_column(st.session_state.get(df_key)) != selected_column(wanted):
        st.session_state[df_key] = wanted
    phone = _clean(st.session_state.get(f"{prefix}_phone_col"))
    name = _clean(st.session_state.get(f"{prefix}_name_col"))
    config: dict[str, Any] = {"Row": st.column_config.NumberColumn("Row", format="%d")}
    if phone in preview.columns:
        config[phone] = st.column_config.TextColumn(f"{phone} · phone", help="Phone number column")
    if name in preview.columns:
        config[name] = st.column_config.TextColumn(f"{name} · name", help="Recipient name column")
    st.dataframe(
        preview_frame(preview),
        key=df_key,
        on_select=functools.partial(_sync_fields_from_selection, prefix),
        selection_mode="single-column",
        column_config=config,
        height=min(38 + 35 * len(preview.data), 300),
    )


def _plan(
    prefix: str,
    file: StoredFile,
    preview: sources.Preview,
    headers: tuple[str, ...] | None,
    allowed_countries: frozenset[str] | None,
    do_not_call: frozenset[str],
    block_premium: bool,
    slots: dict[str, Any],
) -> planning.Plan | Busy | None:
    """The plan of the whole file; BUSY while it is being read or checked (a progress bar is
    shown); None after an error (shown beside its field)."""
    sheet = preview.sheet
    has_header = not st.session_state.get(f"{prefix}_no_header")
    read_key = (file.digest, sheet, has_header, headers)
    options = planning.PlanOptions(
        phone_column=_clean(st.session_state.get(f"{prefix}_phone_col")) or "",
        name_column=_clean(st.session_state.get(f"{prefix}_name_col")),
        country=st.session_state.get(f"{prefix}_country") or "US",
        numbers_have_country_code=bool(st.session_state.get(f"{prefix}_has_cc")),
        allow_duplicates=bool(st.session_state.get(f"{prefix}_allow_dupes")),
        allowed_countries=allowed_countries,
        do_not_call=do_not_call,
        block_premium=block_premium,
    )

    def read(report: Callable[[float], None]) -> sources.Table:
        return sources.read_table(
            file.data,
            filename=file.name,
            sheet=sheet,
            has_header=has_header,
            headers=list(headers) if headers else None,
            progress=report,
        )

    def make() -> planning.Plan | Busy:
        small = len(file.data) <= SMALL_FILE_BYTES
        label = f"Reading {file.name}…"
        table = in_background(prefix, "table", read_key, label, read, wait_all=small)
        if table is BUSY:
            return BUSY
        sources.require_column(table, options.phone_column, field="phone_column")
        if options.name_column:
            sources.require_column(table, options.name_column, field="name_column")
        return _planned(prefix, (read_key, options), table, options)

    return guarded(make, f"checking {file.name}", slots)


def _planned(
    prefix: str, key: Hashable, table: sources.Table, options: planning.PlanOptions
) -> planning.Plan | Busy:
    """The plan for `key`, from the last PLANS_KEPT ones or from a background job."""
    plans: dict[Hashable, planning.Plan] = st.session_state.setdefault(f"{prefix}_cache_plans", {})
    if key in plans:
        return plans[key]
    plan = in_background(
        prefix,
        "plan",
        key,
        "Checking every number…",
        lambda report: planning.plan_table(table, options, progress=report),
        wait_all=len(table) <= SMALL_TABLE_ROWS,
    )
    if plan is BUSY:
        return BUSY
    if any(held.rows > LARGE_PLAN_ROWS for held in plans.values()) or plan.rows > LARGE_PLAN_ROWS:
        plans.clear()  # a large plan holds every recipient: keep only the current one
    while len(plans) >= PLANS_KEPT:
        plans.pop(next(iter(plans)))
    plans[key] = plan
    return plan


def guarded(work: Callable[[], T], what: str, slots: dict[str, Any] | None = None) -> T | None:
    """`work()`, or None after showing why not: a core error's message, or for a bug (not
    the user's fault) a plain apology while the traceback goes to the log."""
    try:
        return work()
    except BulkCallError as exc:
        show_error(exc, (slots or {}).get(exc.field or ""))
    except Exception:
        LOG.exception("Unexpected error while %s", what)
        st.error(UNEXPECTED, icon=":material/bug_report:")
    return None


# --------------------------------------------------------------------------------------------
# Background work: reading and checking a large file outlive the script run that started them


class Busy(enum.Enum):
    BUSY = "busy"


BUSY = Busy.BUSY


class _Cancelled(Exception):
    """Raised inside a job whose result nobody wants any more (the options changed)."""


@dataclass(eq=False)
class Job:
    """One piece of work on a worker thread, with the progress it reports."""

    key: Hashable
    label: str
    future: Future[Any] | None = None
    fraction: float = 0.0
    cancelled: bool = False

    def report(self, fraction: float) -> None:
        # Called by the core on the worker thread: no Streamlit call here.
        if self.cancelled:
            raise _Cancelled
        self.fraction = min(max(fraction, 0.0), 1.0)


def in_background(
    prefix: str,
    name: str,
    key: Hashable,
    label: str,
    work: Callable[[Callable[[float], None]], T],
    *,
    wait_all: bool = False,
) -> T | Busy:
    """`work(report)`'s result for `key`, or BUSY while it runs on a worker thread (a progress
    bar that refreshes itself is shown). A click elsewhere reruns the page without restarting
    the work; a new `key` cancels the old job. `wait_all` (small inputs) waits for the result.
    Errors of `work` are raised here."""
    slot = f"{prefix}_job_{name}"
    job: Job | None = st.session_state.get(slot)
    if job is None or job.key != key:
        if job is not None:
            job.cancelled = True
        job = Job(key, label)
        job.future = _WORKERS.submit(work, job.report)
        st.session_state[slot] = job
    assert job.future is not None
    try:
        return job.future.result(timeout=None if wait_all else INLINE_WAIT_SECONDS)
    except TimeoutError:
        _job_progress(slot)
        return BUSY


@st.fragment(run_every=POLL_SECONDS)
def _job_progress(slot: str) -> None:
    job: Job | None = st.session_state.get(slot)
    if job is None or job.future is None:
        return
    if job.future.done():
        st.rerun()  # the whole page, now with the result
    st.progress(job.fraction, text=f"{job.label} {job.fraction:.0%}")


def show_summary(plan: planning.Plan, *, key: str) -> None:
    """The validation summary: counts, warnings, and the rejected rows with reasons."""
    st.markdown("**Validation**")
    metrics = summary_metrics(plan)
    # Two rows of four: seven side by side cut a million ("1,000…") on a laptop screen.
    for start in range(0, len(metrics), METRICS_PER_ROW):
        columns = st.columns(METRICS_PER_ROW)
        for column, (label, value, help_text) in zip(
            columns, metrics[start : start + METRICS_PER_ROW], strict=False
        ):
            column.metric(label, f"{value:,}", help=help_text, border=True)
    for warning in plan.warnings:
        st.warning(warning, icon=":material/warning:")
    count = len(plan.problems) + len(plan.duplicate_rows)
    if not count:
        return
    shown = min(count, PROBLEM_ROWS_SHOWN)
    with st.expander(f"Rows that will not be called ({count:,})", expanded=bool(plan.invalid)):
        st.dataframe(
            problems_frame(plan, PROBLEM_ROWS_SHOWN),
            hide_index=True,
            column_config={
                "Row": st.column_config.NumberColumn("Row", format="%d", width="small"),
                "Value": st.column_config.TextColumn("Value", width="medium"),
                "Reason": st.column_config.TextColumn("Reason", width="large"),
            },
        )
        if shown < count:
            st.caption(f"Showing the first {shown:,}; download the list for all of them.")
        st.download_button(
            "Download all rejected rows (CSV)",
            data=lambda: problems_frame(plan).to_csv(index=False).encode("utf-8"),
            file_name="rejected_rows.csv",
            mime="text/csv",
            key=key,
            on_click="ignore",
        )
