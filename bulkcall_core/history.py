"""What the History page and the exports read: campaigns with their counts, one campaign's
calls page by page, its rejected rows, downloads, and the figures behind the charts.

Everything is paged or aggregated in the database: a campaign may hold a million calls, and
neither the page nor the browser ever receives more than one page of them (the exports stream
row by row into a file). Counts per outcome come from `campaigns.outcome_counts`, so History,
the command line and the dispatcher agree on what "done" or "voicemail" means.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import IO, Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, Integer, and_, case, cast, func, or_, select
from sqlmodel import Session

from bulkcall_core import phones
from bulkcall_core.campaigns import OutcomeCounts, get_campaign, outcome_counts
from bulkcall_core.errors import CampaignError
from bulkcall_core.models import (
    Call,
    CallState,
    Campaign,
    CampaignProblem,
    CampaignStatus,
    Channel,
    utcnow,
)

# Campaigns per page of the campaigns table: a screenful, and one count query each.
CAMPAIGNS_PAGE_SIZE = 20
# Calls per page of the call list: enough to scan, small enough to send to a browser at once.
CALLS_PAGE_SIZE = 100
# The largest page a caller may ask for; more would defeat paging on a million-call campaign.
MAX_PAGE_SIZE = 1_000
# A scheduled campaign this close to its time makes History refresh live, so the switch to
# "running" shows without a manual reload.
LIVE_REFRESH_HORIZON = timedelta(minutes=2)
# Rows fetched per round trip while exporting: bounded memory on a million-call campaign.
EXPORT_BATCH_SIZE = 5_000
# Excel's hard limit is 1,048,576 rows per sheet, the header included.
EXCEL_MAX_DATA_ROWS = 1_048_575
# Phone prefix ("+" and 7 digits) that decides a number's time zone: country code plus area
# code (and the exchange in North America), which is as far as phonenumbers' zone data goes.
TIME_ZONE_PREFIX_LENGTH = 8

# One outcome per call, as History shows and filters them, in display order.
OUTCOME_HUMAN = "human"
OUTCOME_VOICEMAIL = "voicemail"
OUTCOME_ANSWERED = "answered (unknown)"  # completed, but nobody could tell person or machine
OUTCOME_BUSY = "busy"
OUTCOME_NO_ANSWER = "no-answer"
OUTCOME_FAILED = "failed"
OUTCOME_CANCELED = "canceled"
OUTCOME_SKIPPED = "skipped"
OUTCOME_CALLING = "calling"  # dialing or placed, no final status yet
OUTCOME_RETRYING = "retrying"  # an attempt was busy / no-answer / failed; the next one waits
OUTCOME_PENDING = "pending"  # not called yet
OUTCOMES = (
    OUTCOME_HUMAN,
    OUTCOME_VOICEMAIL,
    OUTCOME_ANSWERED,
    OUTCOME_BUSY,
    OUTCOME_NO_ANSWER,
    OUTCOME_FAILED,
    OUTCOME_CANCELED,
    OUTCOME_SKIPPED,
    OUTCOME_CALLING,
    OUTCOME_RETRYING,
    OUTCOME_PENDING,
)
ANSWERED_OUTCOMES = (OUTCOME_HUMAN, OUTCOME_VOICEMAIL, OUTCOME_ANSWERED)
# Outcomes of calls that rang somebody's line: the denominator of an answer rate.
REACHED_STATUSES = ("completed", "busy", "no-answer", "failed")
LIVE_STATUSES = (CampaignStatus.RUNNING.value,)
# Campaigns whose calls no longer change: their counts can be kept.
FINAL_STATUSES = (
    CampaignStatus.COMPLETED.value,
    CampaignStatus.CANCELED.value,
    CampaignStatus.STOPPED.value,
)


def _outcome_expression() -> ColumnElement[str]:
    """SQL giving each call its History outcome (one of OUTCOMES)."""
    completed = and_(Call.state == CallState.DONE.value, Call.status == "completed")
    return case(
        (Call.state == CallState.SKIPPED.value, OUTCOME_SKIPPED),
        (
            and_(Call.state == CallState.PENDING.value, Call.previous_status.is_not(None)),
            OUTCOME_RETRYING,
        ),
        (Call.state == CallState.PENDING.value, OUTCOME_PENDING),
        (Call.state != CallState.DONE.value, OUTCOME_CALLING),
        (and_(completed, Call.answered_by == "human"), OUTCOME_HUMAN),
        (and_(completed, Call.answered_by.like("machine%")), OUTCOME_VOICEMAIL),
        (completed, OUTCOME_ANSWERED),
        (Call.status == "busy", OUTCOME_BUSY),
        (Call.status == "no-answer", OUTCOME_NO_ANSWER),
        (Call.status == "canceled", OUTCOME_CANCELED),
        else_=OUTCOME_FAILED,
    )


# --------------------------------------------------------------------------- campaigns


@dataclass(frozen=True)
class CampaignSummary:
    """One line of the campaigns table: the campaign, its channel's name and its counts
    (None when they were not asked for: a caller that caches them counts itself)."""

    campaign: Campaign
    channel_name: str
    counts: OutcomeCounts | None


@dataclass(frozen=True)
class CampaignPage:
    """A page of campaigns, newest first, and how many there are in all."""

    items: list[CampaignSummary]
    total: int


def list_campaigns(
    *,
    session: Session,
    offset: int = 0,
    limit: int = CAMPAIGNS_PAGE_SIZE,
    statuses: Sequence[str] = (),
    with_counts: bool = True,
) -> CampaignPage:
    """Campaigns newest first (by creation), `limit` from `offset`, optionally only those with
    one of `statuses`, each with its counts per outcome unless `with_counts` is False (one
    GROUP BY over each campaign's calls: about a second per million calls on SQLite).
    Raises nothing for an empty page."""
    limit = _page_limit(limit)
    where = [Campaign.status.in_(list(statuses))] if statuses else []
    total = session.scalar(select(func.count()).select_from(Campaign).where(*where)) or 0
    query = (
        select(Campaign, Channel.name)
        .join(Channel, Channel.id == Campaign.channel_id, isouter=True)
        .where(*where)
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        .offset(max(offset, 0))
        .limit(limit)
    )
    items = [
        CampaignSummary(
            campaign=campaign,
            channel_name=channel_name or f"channel {campaign.channel_id} (removed)",
            counts=outcome_counts(session=session, campaign_id=campaign.id)
            if with_counts
            else None,
        )
        for campaign, channel_name in session.execute(query)
    ]
    return CampaignPage(items=items, total=total)


def needs_live_refresh(*, session: Session, now: datetime | None = None) -> bool:
    """True while any campaign is running or a scheduled one is due within
    `LIVE_REFRESH_HORIZON`: History then refreshes itself; otherwise nothing changes on its own."""
    now = now or utcnow()
    due_soon = and_(
        Campaign.status == CampaignStatus.SCHEDULED.value,
        Campaign.scheduled_at <= now + LIVE_REFRESH_HORIZON,
    )
    query = select(Campaign.id).where(or_(Campaign.status.in_(LIVE_STATUSES), due_soon)).limit(1)
    return session.scalar(query) is not None


# --------------------------------------------------------------------------- one campaign


@dataclass(frozen=True)
class CallRow:
    """One call as the call list and the exports show it."""

    row: int
    name: str | None
    phone: str
    outcome: str
    status: str | None
    answered_by: str | None
    duration_seconds: int | None
    attempts: int
    placed_at: datetime | None
    completed_at: datetime | None
    error: str | None
    sid: str | None


@dataclass(frozen=True)
class CallPage:
    """A page of a campaign's calls matching a filter, and how many match in all."""

    items: list[CallRow]
    total: int


@dataclass(frozen=True)
class ProblemRow:
    """A file row that was not called, and why."""

    row: int
    value: str
    reason: str


@dataclass(frozen=True)
class ProblemPage:
    items: list[ProblemRow]
    total: int


_CALL_COLUMNS = (
    Call.row,
    Call.name,
    Call.phone,
    _outcome_expression().label("outcome"),
    Call.status,
    Call.answered_by,
    Call.duration_seconds,
    Call.attempts,
    Call.placed_at,
    Call.completed_at,
    Call.error_code,
    Call.error_message,
    Call.skip_reason,
    Call.previous_status,
    Call.sid,
)


def list_calls(
    *,
    session: Session,
    campaign_id: int,
    outcomes: Sequence[str] = (),
    search: str = "",
    offset: int = 0,
    limit: int = CALLS_PAGE_SIZE,
) -> CallPage:
    """The calls of `campaign_id` in file order (the order they were stored in, so the
    primary key orders them without a sort), `limit` from `offset`: only those whose
    outcome is in `outcomes` (any when empty) and whose name or number contains `search`
    (digits are matched against the number whatever its punctuation; case is ignored).

    Raises `CampaignError` for an unknown campaign or outcome.
    """
    get_campaign(session=session, campaign_id=campaign_id)
    where = _call_filter(campaign_id, outcomes, search)
    total = session.scalar(select(func.count()).select_from(Call).where(*where)) or 0
    query = (
        select(*_CALL_COLUMNS)
        .where(*where)
        .order_by(Call.id)
        .offset(max(offset, 0))
        .limit(_page_limit(limit))
    )
    return CallPage(items=[_call_row(r) for r in session.execute(query)], total=total)


def _call_filter(campaign_id: int, outcomes: Sequence[str], search: str) -> list[Any]:
    where: list[Any] = [Call.campaign_id == campaign_id]
    unknown = sorted(set(outcomes) - set(OUTCOMES))
    if unknown:
        raise CampaignError(
            f"Unknown outcome {', '.join(unknown)}; use one of {', '.join(OUTCOMES)}.",
            field="outcomes",
        )
    if outcomes:
        where.append(_outcome_expression().in_(list(outcomes)))
    search = search.strip()
    if search:
        matches = [func.lower(Call.name).contains(search.lower(), autoescape=True)]
        digits = re.sub(r"\D", "", search)
        if digits and len(digits) >= len(re.sub(r"[\s()+.\-]", "", search)):
            matches.append(Call.phone.contains(digits, autoescape=True))
        where.append(or_(*matches))
    return where


def _call_row(record: Any) -> CallRow:
    return CallRow(
        row=record.row,
        name=record.name,
        phone=record.phone,
        outcome=record.outcome,
        status=record.status,
        answered_by=record.answered_by,
        duration_seconds=record.duration_seconds,
        attempts=record.attempts,
        placed_at=record.placed_at,
        completed_at=record.completed_at,
        error=_error_text(record.error_code, record.error_message, record.skip_reason)
        or _retry_text(record),
        sid=record.sid,
    )


def _retry_text(record: Any) -> str | None:
    if record.outcome != OUTCOME_RETRYING:
        return None
    return f"attempt {record.attempts} was {record.previous_status}; calling again"


def _error_text(code: int | None, message: str | None, skip_reason: str | None) -> str | None:
    if code is not None:
        return f"{code}: {message}" if message else str(code)
    return message or skip_reason


def list_problems(
    *, session: Session, campaign_id: int, offset: int = 0, limit: int = CALLS_PAGE_SIZE
) -> ProblemPage:
    """The rejected rows of `campaign_id` (invalid, blocked, duplicate, do-not-call) in file
    order, `limit` from `offset`. Raises `CampaignError` for an unknown campaign."""
    get_campaign(session=session, campaign_id=campaign_id)
    where = CampaignProblem.campaign_id == campaign_id
    total = session.scalar(select(func.count()).select_from(CampaignProblem).where(where)) or 0
    query = (
        select(CampaignProblem.row, CampaignProblem.value, CampaignProblem.reason)
        .where(where)
        .order_by(CampaignProblem.row, CampaignProblem.id)
        .offset(max(offset, 0))
        .limit(_page_limit(limit))
    )
    items = [ProblemRow(row=r.row, value=r.value, reason=r.reason) for r in session.execute(query)]
    return ProblemPage(items=items, total=total)


def _page_limit(limit: int) -> int:
    return min(max(limit, 1), MAX_PAGE_SIZE)


# --------------------------------------------------------------------------- exports

# Excel, LibreOffice and Google Sheets run a cell that starts with one of these as a formula.
_FORMULA_STARTS = frozenset("=+-@\t\r")
# A signed number ("+14155550100", "-3.5") starts like a formula but can only ever evaluate to
# itself; prefixing it would make every E.164 phone unreadable.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")
# Characters an .xlsx file cannot hold at all (openpyxl refuses them).
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

EXPORT_COLUMNS = (
    "row",
    "name",
    "phone",
    "outcome",
    "status",
    "answered_by",
    "duration_seconds",
    "attempts",
    "placed_at_utc",
    "completed_at_utc",
    "error",
    "sid",
)
OTHER_FIELDS_COLUMN = "other fields"


def neutralise_cell(value: Any) -> Any:
    """A cell value safe to open in a spreadsheet: text that a spreadsheet would run as a
    formula (starting with = + - @ tab or CR) gets a leading apostrophe; plain signed numbers
    such as E.164 phones stay as they are; anything else is returned unchanged."""
    if isinstance(value, str) and value and value[0] in _FORMULA_STARTS:
        if not _PLAIN_NUMBER.fullmatch(value):
            return "'" + value
    return value


def export_rows(*, session: Session, campaign_id: int) -> tuple[list[str], Iterator[list[Any]]]:
    """The header and the rows of a campaign export: every call in file order (with the other
    columns of its file row), then every rejected row with outcome "rejected". Values are
    neutralised with `neutralise_cell`; times are UTC ISO 8601. Rows are read in batches of
    `EXPORT_BATCH_SIZE`. Raises `CampaignError` for an unknown campaign."""
    get_campaign(session=session, campaign_id=campaign_id)
    field_names = _field_names(session, campaign_id)
    header = [*EXPORT_COLUMNS, *field_names, OTHER_FIELDS_COLUMN]
    rows = _export_iterator(session, campaign_id, field_names)
    return [str(neutralise_cell(name)) for name in header], rows


def _field_names(session: Session, campaign_id: int) -> list[str]:
    """The other columns of the campaign's file, from its first call (a file's rows share
    them; keys that appear only later go to the "other fields" column)."""
    first = session.scalar(
        select(Call.fields).where(Call.campaign_id == campaign_id).order_by(Call.id).limit(1)
    )
    return [str(key) for key in (first or {})]


def _export_iterator(
    session: Session, campaign_id: int, field_names: list[str]
) -> Iterator[list[Any]]:
    # Plain tuples through a Core connection: ORM rows and a dataclass per call cost more
    # than everything else together on a million calls.
    connection = session.connection().execution_options(yield_per=EXPORT_BATCH_SIZE)
    query = (
        select(*_CALL_COLUMNS, Call.fields).where(Call.campaign_id == campaign_id).order_by(Call.id)
    )
    known = set(field_names)
    safe = neutralise_cell
    for record in connection.execute(query):
        (row, name, phone, outcome, status, answered_by, duration, attempts, placed_at,
         completed_at, error_code, error_message, skip_reason, _previous, sid,
         fields) = record  # fmt: skip
        fields = fields or {}
        extra = "; ".join(f"{k}: {v}" for k, v in fields.items() if k not in known)
        yield [
            row,
            safe(name),
            safe(phone),
            outcome,
            safe(status),
            safe(answered_by),
            duration,
            attempts,
            _iso(placed_at),
            _iso(completed_at),
            safe(_error_text(error_code, error_message, skip_reason) or _retry_text(record)),
            safe(sid),
            *(safe(fields.get(name)) for name in field_names),
            safe(extra) or None,
        ]
    problems = (
        select(CampaignProblem.row, CampaignProblem.value, CampaignProblem.reason)
        .where(CampaignProblem.campaign_id == campaign_id)
        .order_by(CampaignProblem.row, CampaignProblem.id)
        .execution_options(yield_per=EXPORT_BATCH_SIZE)
    )
    blanks = [None] * (len(EXPORT_COLUMNS) - 4 + len(field_names) + 1)
    for row, value, reason in session.execute(problems):
        values = [row, None, value, "rejected", *blanks]
        values[EXPORT_COLUMNS.index("error")] = reason
        yield [neutralise_cell(v) for v in values]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def write_csv(*, session: Session, campaign_id: int, out: IO[bytes]) -> int:
    """Write the campaign export (see `export_rows`) to `out` as UTF-8 CSV with a byte-order
    mark (so that Excel reads accents right); returns the number of data rows written."""
    header, rows = export_rows(session=session, campaign_id=campaign_id)
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    text.flush()
    text.detach()
    return count


def write_xlsx(*, session: Session, campaign_id: int, out: IO[bytes]) -> int:
    """Write the campaign export (see `export_rows`) to `out` as an .xlsx workbook, streamed
    (constant memory); past Excel's 1,048,575 data rows a sheet continues on "Calls (2)".
    Every text cell is stored as text, never as a formula. Returns the data rows written."""
    from openpyxl import Workbook

    header, rows = export_rows(session=session, campaign_id=campaign_id)
    workbook = Workbook(write_only=True)
    count = 0
    sheet = None
    for row in rows:
        if count % EXCEL_MAX_DATA_ROWS == 0:
            number = count // EXCEL_MAX_DATA_ROWS + 1
            sheet = workbook.create_sheet("Calls" if number == 1 else f"Calls ({number})")
            sheet.append(header)
        sheet.append([_xlsx_value(value) for value in row])  # type: ignore[union-attr]
        count += 1
    if sheet is None:
        workbook.create_sheet("Calls").append(header)
    workbook.save(out)
    return count


def _xlsx_value(value: Any) -> Any:
    return _XLSX_ILLEGAL.sub("", value) if isinstance(value, str) else value


# --------------------------------------------------------------------------- analytics


def outcome_breakdown(*, session: Session, campaign_id: int) -> pd.DataFrame:
    """Calls per outcome of `campaign_id`: columns `outcome` (OUTCOMES order, only those that
    occur) and `calls`. Raises `CampaignError` for an unknown campaign."""
    get_campaign(session=session, campaign_id=campaign_id)
    outcome = _outcome_expression()
    query = select(outcome, func.count()).where(Call.campaign_id == campaign_id).group_by(outcome)
    counts = dict(session.execute(query).all())
    data = [(name, counts[name]) for name in OUTCOMES if counts.get(name)]
    return pd.DataFrame(data, columns=["outcome", "calls"])


def bucket_seconds_for(span: timedelta) -> int:
    """A bucket width for a calls-over-time chart of `span`: about 30 to 150 bars."""
    for seconds in (10, 60, 300, 900, 3600, 6 * 3600):
        if span <= timedelta(seconds=seconds * 150):
            return seconds
    return 86_400


def calls_over_time(*, session: Session, campaign_id: int) -> pd.DataFrame:
    """Calls placed per time bucket and outcome: columns `time` (aware UTC start of the
    bucket), `outcome` and `calls`; the bucket width follows the campaign's span
    (`bucket_seconds_for`). Calls never placed are left out. Raises `CampaignError` for an
    unknown campaign."""
    get_campaign(session=session, campaign_id=campaign_id)
    placed = and_(Call.campaign_id == campaign_id, Call.placed_at.is_not(None))
    first, last = session.execute(
        select(func.min(Call.placed_at), func.max(Call.placed_at)).where(placed)
    ).one()
    if first is None:
        return pd.DataFrame(columns=["time", "outcome", "calls"])
    width = bucket_seconds_for(_aware(last) - _aware(first))
    epoch = _epoch_seconds(session, Call.placed_at)
    bucket = epoch // width
    outcome = _outcome_expression()
    query = select(bucket, outcome, func.count()).where(placed).group_by(bucket, outcome)
    data = [
        (datetime.fromtimestamp(int(b) * width, UTC), o, n) for b, o, n in session.execute(query)
    ]
    frame = pd.DataFrame(data, columns=["time", "outcome", "calls"])
    return frame.sort_values(["time", "outcome"], ignore_index=True)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _epoch_seconds(session: Session, column: Any) -> ColumnElement[int]:
    """Seconds since 1970 of a UTC datetime column, in the session's SQL dialect."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.extract("epoch", column), BigInteger)


@dataclass(frozen=True)
class HourlyAnswerRate:
    """Answer rate by hour of the recipient's local day.

    `frame` has columns `hour` (0-23), `calls` (calls that rang: completed, busy, no-answer,
    failed), `answered` and `answer_rate` (0.0-1.0); `unknown_zone` counts calls left out
    because their number's time zone is unknown.
    """

    frame: pd.DataFrame
    unknown_zone: int


def answer_rate_by_local_hour(*, session: Session, campaign_ids: Iterable[int]) -> HourlyAnswerRate:
    """Answer rate by the recipient's local hour over the calls of `campaign_ids`.

    Aggregated in SQL by number prefix (`TIME_ZONE_PREFIX_LENGTH`) and UTC hour, so a million
    calls come back as a few thousand groups; each prefix's zone comes from phonenumbers.
    """
    ids = list(campaign_ids)
    prefix = func.substr(Call.phone, 1, TIME_ZONE_PREFIX_LENGTH)
    hour = _epoch_seconds(session, Call.placed_at) // 3600
    answered = func.sum(case((Call.status == "completed", 1), else_=0))
    query = (
        select(prefix, func.min(Call.phone), hour, func.count(), answered)
        .where(
            Call.campaign_id.in_(ids),
            Call.state == CallState.DONE.value,
            Call.status.in_(REACHED_STATUSES),
            Call.placed_at.is_not(None),
        )
        .group_by(prefix, hour)
    )
    totals = {h: [0, 0] for h in range(24)}
    unknown = 0
    for _, phone, utc_hour, calls, answers in session.execute(query):
        zone = _zone_of_prefix(phone[:TIME_ZONE_PREFIX_LENGTH], phone)
        if zone is None:
            unknown += calls
            continue
        local = datetime.fromtimestamp(int(utc_hour) * 3600, UTC).astimezone(zone).hour
        totals[local][0] += calls
        totals[local][1] += answers or 0
    frame = pd.DataFrame(
        [(h, c, a, a / c if c else None) for h, (c, a) in totals.items()],
        columns=["hour", "calls", "answered", "answer_rate"],
    )
    return HourlyAnswerRate(frame=frame, unknown_zone=unknown)


@lru_cache(maxsize=65_536)
def _zone_of_prefix(prefix: str, example: str) -> ZoneInfo | None:
    # Keyed on the prefix: every number sharing it shares the zone (see TIME_ZONE_PREFIX_LENGTH).
    name = phones.time_zone_of(example)
    return ZoneInfo(name) if name else None


def answer_rate(counts: OutcomeCounts) -> float | None:
    """Answered calls over calls that rang (completed, busy, no-answer, failed); None if none."""
    reached = counts.completed + counts.busy + counts.no_answer + counts.failed
    return counts.completed / reached if reached else None


def compare_campaigns(*, session: Session, campaign_ids: Iterable[int]) -> pd.DataFrame:
    """One row per campaign for the comparison chart: `campaign` ("name (#id)"), `to_call`
    and the share of reached calls (`answer_rate`) plus the share of each final outcome among
    finished calls (`human`, `voicemail`, `busy`, `no-answer`, `failed`). Unknown ids are
    skipped."""
    rows = []
    for campaign_id in campaign_ids:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            continue
        counts = outcome_counts(session=session, campaign_id=campaign_id)
        done = counts.done or None
        rows.append(
            {
                "campaign": f"{campaign.name} (#{campaign.id})",
                "to_call": counts.to_call,
                "answer_rate": answer_rate(counts),
                OUTCOME_HUMAN: counts.human / done if done else None,
                OUTCOME_VOICEMAIL: counts.voicemail / done if done else None,
                OUTCOME_BUSY: counts.busy / done if done else None,
                OUTCOME_NO_ANSWER: counts.no_answer / done if done else None,
                OUTCOME_FAILED: counts.failed / done if done else None,
            }
        )
    return pd.DataFrame(rows)
