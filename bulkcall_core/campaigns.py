"""Campaigns: storing one from a `Plan`, its lifecycle actions, and its counts per outcome.

`create_campaign` checks everything a user can get wrong (name, time, retries, calling window,
channel, recording, an empty plan) before writing anything, then stores the campaign, one `Call`
per recipient and one `CampaignProblem` per rejected row in bulk: a million calls take seconds,
not minutes (see `bulk_insert`).

The lifecycle actions (cancel, pause, resume, stop) are each one conditional UPDATE, so two
dashboard tabs or a racing dispatcher cannot both win: the loser gets a `CampaignError` saying
what the campaign is now. The dispatcher re-reads `Campaign.status` and reacts to it.

Every function takes the session as a keyword; the caller owns the transaction and commits.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from queue import Full, Queue
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import Connection, Table, case, func, select, update
from sqlmodel import Session

from bulkcall_core.errors import CampaignError, ScheduleError
from bulkcall_core.models import (
    Call,
    CallState,
    Campaign,
    CampaignProblem,
    CampaignStatus,
    Channel,
    Recording,
    utcnow,
)

if TYPE_CHECKING:
    from bulkcall_core.planning import Plan

# The product's promise: a campaign can be set up to 30 days ahead, no further.
MAX_DAYS_AHEAD = 30
# A time picked as "now" that took the user a minute to confirm is still "now", not the past.
PAST_GRACE = timedelta(seconds=60)
# Retries of busy / no-answer / failed calls: more than 5 is harassment, not persistence.
MAX_RETRY_COUNT = 5
# Retrying sooner than a minute reaches the same busy line or the same person not answering.
MIN_RETRY_INTERVAL_SECONDS = 60
# Rows per bulk insert batch: big enough to amortise a round trip, small enough to keep memory
# flat and the progress bar moving (about 20 updates for a million rows).
INSERT_BATCH_SIZE = 50_000

# Batches built ahead on a worker thread while the database stores the current one: Arrow,
# SQLite and libpq release the GIL, so building and storing overlap on two cores (1M calls:
# ~2 s less). One batch ahead keeps both busy and costs one batch of memory.
PREFETCH_BATCHES = 1
# How often a waiting prefetch thread checks that its consumer still wants batches.
PREFETCH_POLL_SECONDS = 0.1

# SQLite page cache while bulk inserting: a million random inserts into the call table's phone
# index thrash the default 2 MiB cache (pages spill to the WAL and are read back); 128 MiB holds
# the indexes of a million calls and made the insert ~25% faster here. Given back afterwards.
SQLITE_BULK_CACHE_KIB = 128 * 1024
# Campaign.name's column width.
NAME_MAX_LENGTH = 200

WINDOW_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
CANCELED_REASON = "campaign canceled"
STOPPED_REASON = "campaign stopped"
DUPLICATE_REASON = "duplicate: same number as row"  # + " 12"

# `progress(fraction)`: from 0.0 to 1.0, for a progress bar (as sources and planning report).
Progress = Callable[[float], None]
T = TypeVar("T")


def dump_json(value: Any) -> str:
    """`value` as compact JSON text, ready for a JSON column written by `bulk_insert`.

    orjson, because a million calls' fields take 5 s with the json module and 1 s with it.
    """
    return orjson.dumps(value).decode()


# --------------------------------------------------------------------------- creating


def create_campaign(
    *,
    session: Session,
    plan: Plan,
    name: str,
    channel_id: int,
    recording_id: int,
    scheduled_at: datetime | None,
    time_zone: str = "UTC",
    created_by: str = "",
    voicemail_full_message: bool = False,
    retry_count: int = 0,
    retry_interval_seconds: int = 600,
    window_start: str | None = None,
    window_end: str | None = None,
    source: str = "",
    allow_duplicates: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Campaign:
    """Store a campaign from `plan`: the campaign, one pending call per recipient, one problem
    per rejected or duplicate row. `scheduled_at` is an aware datetime (None means now); a
    time up to `PAST_GRACE` in the past counts as now. `time_zone` (IANA name) is the creator's, for
    display and messages. `window_start`/`window_end` ("HH:MM", recipient's local time) come
    together or not at all. The caller commits.

    Returns the flushed `Campaign` (id set, status scheduled).
    Raises `CampaignError` (blank name, nothing to call, bad retries or window, unknown channel
    or recording) or `ScheduleError` (naive, past or too far ahead time; unknown time zone)
    before anything is written.
    """
    now = now or utcnow()
    name = _check_name(name)
    scheduled_at = check_schedule(scheduled_at, now=now, time_zone=time_zone)
    _check_plan(plan)
    _check_retries(retry_count, retry_interval_seconds)
    window_start, window_end = check_window(window_start, window_end)
    _check_exists(session, Channel, channel_id, "channel_id", "Channels")
    _check_exists(session, Recording, recording_id, "recording_id", "the audio file upload")

    campaign = Campaign(
        name=name,
        channel_id=channel_id,
        recording_id=recording_id,
        created_by=created_by,
        created_at=now,
        scheduled_at=scheduled_at,
        time_zone=time_zone,
        status=CampaignStatus.SCHEDULED,
        voicemail_full_message=voicemail_full_message,
        allow_duplicates=allow_duplicates,
        retry_count=retry_count,
        retry_interval_seconds=retry_interval_seconds,
        window_start=window_start,
        window_end=window_end,
        source=source,
        rows=plan.rows,
        invalid=plan.invalid,
        duplicates=plan.duplicates,
        to_call=plan.to_call,
    )
    session.add(campaign)
    session.flush()
    _store_calls(session, campaign, plan, now=now, progress=progress)
    _store_problems(session, campaign, plan)
    if progress:
        progress(1.0)
    return campaign


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise CampaignError(
            "Give the campaign a name, to easily identify the campaign later.", field="name"
        )
    if len(name) > NAME_MAX_LENGTH:
        raise CampaignError(
            f"The campaign name is {len(name)} characters long; keep it to {NAME_MAX_LENGTH}.",
            field="name",
        )
    return name


def check_schedule(
    scheduled_at: datetime | None, *, now: datetime | None = None, time_zone: str = "UTC"
) -> datetime:
    """`scheduled_at` as aware UTC, or `now` when it is None or at most `PAST_GRACE` ago.

    Raises `ScheduleError` naming the time (in `time_zone`) when it has no time zone, is in the
    past, or is more than `MAX_DAYS_AHEAD` days ahead, or when `time_zone` is unknown.
    """
    now = now or utcnow()
    zone = _zone(time_zone)
    if scheduled_at is None:
        return now
    if scheduled_at.utcoffset() is None:
        raise ScheduleError(
            f"The time {scheduled_at:%Y-%m-%d %H:%M} has no time zone; give it with one "
            f"(for example {time_zone}).",
            field="scheduled_at",
        )
    if scheduled_at < now - PAST_GRACE:
        raise ScheduleError(
            f"The time {_show(scheduled_at, zone)} is in the past (it is now "
            f"{_show(now, zone)}); pick now or a later time.",
            field="scheduled_at",
        )
    latest = now + timedelta(days=MAX_DAYS_AHEAD)
    if scheduled_at > latest:
        raise ScheduleError(
            f"The time {_show(scheduled_at, zone)} is more than {MAX_DAYS_AHEAD} days ahead; "
            f"pick a time up to {_show(latest, zone)}.",
            field="scheduled_at",
        )
    return max(scheduled_at, now).astimezone(UTC)


def _show(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"Unknown time zone '{time_zone}'; use an IANA name such as Europe/Paris or UTC.",
            field="time_zone",
        ) from exc


def _check_plan(plan: Plan) -> None:
    if plan.to_call > 0:
        return
    if plan.rows == 0:
        raise CampaignError("Nothing to call: the contacts have no data rows.", field="plan")
    invalid = plan.invalid - plan.blocked - plan.do_not_call
    raise CampaignError(
        f"Nothing to call: of {plan.rows:,} rows, {invalid:,} have no valid number, "
        f"{plan.blocked:,} are blocked, {plan.do_not_call:,} are on the do-not-call list and "
        f"{plan.duplicates:,} repeat a number. Check the phone column and the country settings.",
        field="plan",
    )


def _check_retries(retry_count: int, retry_interval_seconds: int) -> None:
    if not 0 <= retry_count <= MAX_RETRY_COUNT:
        raise CampaignError(
            f"Retries must be between 0 and {MAX_RETRY_COUNT}, not {retry_count}.",
            field="retry_count",
        )
    if retry_count and retry_interval_seconds < MIN_RETRY_INTERVAL_SECONDS:
        raise CampaignError(
            f"The retry interval must be at least {MIN_RETRY_INTERVAL_SECONDS} seconds, not "
            f"{retry_interval_seconds}.",
            field="retry_interval_seconds",
        )


def check_window(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """A calling window as ("HH:MM", "HH:MM") with start before end, or (None, None) for none.

    Blank strings count as none. Raises `CampaignError` when only one end is given, a time is
    not HH:MM on a 24-hour clock, or the start is not before the end.
    """
    start, end = (start or "").strip() or None, (end or "").strip() or None
    if start is None and end is None:
        return None, None
    if start is None or end is None:
        raise CampaignError(
            "Give both the start and the end of the calling window, or neither.", field="window"
        )
    for value in (start, end):
        if not WINDOW_PATTERN.match(value):
            raise CampaignError(
                f"Calling window time '{value}' is not HH:MM on a 24-hour clock (e.g. 08:00).",
                field="window",
            )
    if start >= end:
        raise CampaignError(
            f"The calling window {start}-{end} is empty: its start must be before its end "
            "(windows across midnight are not supported).",
            field="window",
        )
    return start, end


def _check_exists(session: Session, model: type, item_id: int, field: str, where: str) -> None:
    if session.get(model, item_id) is None:
        kind = model.__name__.lower()
        raise CampaignError(f"No {kind} {item_id}; pick one from {where}.", field=field)


def _store_calls(
    session: Session, campaign: Campaign, plan: Plan, *, now: datetime, progress: Progress | None
) -> None:
    def batches(rows: Iterator[list[tuple[Any, ...]]]) -> Iterator[list[tuple[Any, ...]]]:
        stored = 0
        for batch in rows:
            yield batch
            stored += len(batch)
            if progress:
                progress(min(stored / plan.to_call, 0.99))

    # Closed explicitly: a failed insert stops the prefetch thread at once, even while the
    # error's traceback keeps this frame alive.
    with closing(prefetched(plan.recipient_rows(INSERT_BATCH_SIZE))) as rows:
        bulk_insert(
            session,
            Call.__table__,
            ("row", "name", "phone", "fields"),
            batches(rows),
            constants={
                "campaign_id": campaign.id,
                "state": CallState.PENDING.value,
                "next_attempt_at": campaign.scheduled_at,
                "attempts": 0,
                "updated_at": now,
            },
        )


def _store_problems(session: Session, campaign: Campaign, plan: Plan) -> None:
    """Rejected rows with their reason, and duplicates naming the row that is called, so
    History can say why any row of the file was not called."""
    rejected = [(p.row, p.value or "", p.reason) for p in plan.problems]
    repeated = [(d.row, d.phone, f"{DUPLICATE_REASON} {d.first_row}") for d in plan.duplicate_rows]
    bulk_insert(
        session,
        CampaignProblem.__table__,
        ("row", "value", "reason"),
        [rejected, repeated],
        constants={"campaign_id": campaign.id},
    )


# --------------------------------------------------------------------------- bulk insert


def prefetched(items: Iterable[T]) -> Generator[T, None, None]:
    """`items` in order, each next one produced on a worker thread (at most
    `PREFETCH_BATCHES` ahead) while the caller uses the current one.

    An exception raised while producing is raised here, in the caller's thread. Closing the
    generator early (or an error in the caller) stops the worker after the item it is
    producing. Callbacks that must run on the caller's thread (progress bars) belong in the
    caller's loop, not in `items`.
    """
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=PREFETCH_BATCHES)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if not _offer(queue, stop, (False, item)):
                    return
        except BaseException as exc:  # handed to the caller's thread and raised there
            _offer(queue, stop, (True, exc))
            return
        _offer(queue, stop, (True, None))

    worker = threading.Thread(target=work, name="bulkcall-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            finished, value = queue.get()
            if finished:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        worker.join()


def _offer(queue: Queue[tuple[bool, Any]], stop: threading.Event, entry: tuple[bool, Any]) -> bool:
    """Put `entry` once there is room; False when the consumer stopped first."""
    while not stop.is_set():
        try:
            queue.put(entry, timeout=PREFETCH_POLL_SECONDS)
            return True
        except Full:
            continue
    return False


def bulk_insert(
    session: Session,
    table: Table,
    columns: Sequence[str],
    batches: Iterable[Sequence[Sequence[Any]]],
    *,
    constants: Mapping[str, Any] | None = None,
) -> int:
    """Insert rows into `table` inside the session's transaction, fast; returns the count.

    `batches` yields lists of rows; each row holds values for `columns` in order, as plain
    str / int / None (JSON columns as text from `dump_json`). `constants` are values shared by
    every row (a campaign id, a timestamp), converted once through the column types so they
    are stored exactly as the ORM stores them. SQLite: the driver's executemany per batch, the
    constants written into the statement (2x faster than `insert()` executemany); PostgreSQL:
    COPY (2x faster than executemany). These are the two databases the product supports.
    """
    connection = session.connection()
    dialect = connection.dialect
    constants = {
        name: _bind(table, name, value, dialect) for name, value in (constants or {}).items()
    }
    preparer = dialect.identifier_preparer
    target = preparer.format_table(table)
    quoted = ", ".join(preparer.quote(name) for name in [*columns, *constants])
    if dialect.name == "postgresql":
        sql = f"COPY {target} ({quoted}) FROM STDIN"
        return _copy(connection, sql, batches, tuple(constants.values()))
    values = ["?"] * len(columns) + [_sqlite_literal(value) for value in constants.values()]
    sql = f"INSERT INTO {target} ({quoted}) VALUES ({', '.join(values)})"
    with _sqlite_cache(connection, SQLITE_BULK_CACHE_KIB):
        return _executemany(connection, sql, batches)


def _copy(
    connection: Connection,
    sql: str,
    batches: Iterable[Sequence[Sequence[Any]]],
    fixed: tuple[Any, ...],
) -> int:
    """PostgreSQL: stream the rows through COPY on the session's own connection; psycopg's
    queued writer sends on its own thread while this one formats the next rows."""
    from psycopg.copy import QueuedLibpqWriter  # PostgreSQL only

    count = 0
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
        for batch in batches:
            for row in batch:
                copy.write_row((*row, *fixed))
            count += len(batch)
    return count


def _executemany(
    connection: Connection, sql: str, batches: Iterable[Sequence[Sequence[Any]]]
) -> int:
    """SQLite: the driver's executemany per batch (no per-value processing)."""
    count = 0
    for batch in batches:
        if batch:
            connection.exec_driver_sql(sql, batch)
            count += len(batch)
    return count


def _sqlite_literal(value: Any) -> str:
    """A driver-ready constant (int, str or None) as SQLite SQL text."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"bulk_insert constants must be int, str or None, not {type(value)}")


@contextmanager
def _sqlite_cache(connection: Connection, kib: int) -> Iterator[None]:
    """A larger SQLite page cache on this connection for a while, then the old size again."""
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{int(kib)}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(previous)}")


def _bind(table: Table, name: str, value: Any, dialect: Any) -> Any:
    """`value` as the driver receives it for column `name` (what the ORM would send)."""
    column_type = table.c[name].type.dialect_impl(dialect)
    processor = column_type.bind_processor(dialect)
    return processor(value) if processor else value


# --------------------------------------------------------------------------- lifecycle

_HINTS = {
    "cancel": {"running": "stop it instead", "paused": "stop it instead"},
    "pause": {"paused": "resume it to go on"},
    "resume": {"running": "it is already calling", "scheduled": "it waits for its time"},
    "stop": {"scheduled": "cancel it instead"},
}


def get_campaign(*, session: Session, campaign_id: int) -> Campaign:
    """The campaign `campaign_id`, freshly read. Raises `CampaignError` when there is none."""
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise CampaignError(f"No campaign {campaign_id}; see History for the campaigns.")
    return campaign


def cancel_campaign(*, session: Session, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Cancel a scheduled campaign: status canceled, every pending call skipped with reason
    "campaign canceled". Returns the campaign; raises `CampaignError` when it is unknown or
    not scheduled (a running one is stopped instead)."""
    now = now or utcnow()
    _transition(
        session,
        campaign_id,
        "cancel",
        {CampaignStatus.SCHEDULED},
        status=CampaignStatus.CANCELED,
        finished_at=now,
    )
    _skip_pending(session, campaign_id, CANCELED_REASON, now)
    return get_campaign(session=session, campaign_id=campaign_id)


def pause_campaign(*, session: Session, campaign_id: int) -> Campaign:
    """Pause a running or scheduled campaign: the dispatcher places no new call until it is
    resumed; calls already placed finish. Raises `CampaignError` otherwise."""
    _transition(
        session,
        campaign_id,
        "pause",
        {CampaignStatus.RUNNING, CampaignStatus.SCHEDULED},
        status=CampaignStatus.PAUSED,
    )
    return get_campaign(session=session, campaign_id=campaign_id)


def resume_campaign(*, session: Session, campaign_id: int) -> Campaign:
    """Resume a paused campaign: back to running when it had started, else back to scheduled
    (a time already passed makes it due at once). The error that made a dispatcher pause it,
    if any, is cleared: resuming is trying again. The caller then hands it to the scheduler
    so that a dispatcher picks it up. Raises `CampaignError` when it is not paused."""
    started = Campaign.started_at.is_not(None)
    _transition(
        session,
        campaign_id,
        "resume",
        {CampaignStatus.PAUSED},
        status=case((started, CampaignStatus.RUNNING.value), else_=CampaignStatus.SCHEDULED.value),
        last_error=None,
    )
    return get_campaign(session=session, campaign_id=campaign_id)


def stop_campaign(*, session: Session, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Stop a running or paused campaign for good: status stopped, every pending call skipped
    with reason "campaign stopped"; calls already dialing or placed still get their final
    status. Raises `CampaignError` otherwise (a scheduled one is canceled instead)."""
    now = now or utcnow()
    _transition(
        session,
        campaign_id,
        "stop",
        {CampaignStatus.RUNNING, CampaignStatus.PAUSED},
        status=CampaignStatus.STOPPED,
        finished_at=now,
    )
    _skip_pending(session, campaign_id, STOPPED_REASON, now)
    return get_campaign(session=session, campaign_id=campaign_id)


def _transition(
    session: Session,
    campaign_id: int,
    action: str,
    allowed: set[CampaignStatus],
    **values: Any,
) -> None:
    """One conditional UPDATE; when it matches nothing, say why."""
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_([s.value for s in allowed]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return
    status = get_campaign(session=session, campaign_id=campaign_id).status
    wanted = " or ".join(sorted(s.value for s in allowed))
    past = {"cancel": "canceled", "stop": "stopped"}.get(action, f"{action}d")
    hint = _HINTS[action].get(status)
    raise CampaignError(
        f"Campaign {campaign_id} is {status}; only a {wanted} campaign can be {past}"
        + (f" ({hint})." if hint else "."),
        field="status",
    )


def _skip_pending(session: Session, campaign_id: int, reason: str, now: datetime) -> None:
    session.execute(
        update(Call)
        .where(Call.campaign_id == campaign_id, Call.state == CallState.PENDING.value)
        .values(state=CallState.SKIPPED.value, skip_reason=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )


# --------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class OutcomeCounts:
    """Where a campaign's calls stand. Outcomes (completed ... canceled) count final calls
    only (state done): a busy call waiting for its retry is still pending."""

    to_call: int = 0  # calls stored for the campaign
    pending: int = 0  # not yet called, or waiting for a retry
    dialing: int = 0  # claimed by a dispatcher, request possibly in flight
    placed: int = 0  # accepted by Twilio, no final status yet
    done: int = 0  # final status known
    skipped: int = 0  # never called (do-not-call, canceled or stopped campaign)
    completed: int = 0  # answered (by a person, a voicemail, or unknown)
    human: int = 0  # completed and answered by a person
    voicemail: int = 0  # completed and answered by a machine (AnsweredBy machine_*)
    busy: int = 0
    no_answer: int = 0
    failed: int = 0
    canceled: int = 0
    attempts: int = 0  # calls placed (or possibly placed), retries included

    @property
    def in_progress(self) -> int:
        return self.dialing + self.placed

    @property
    def finished(self) -> int:
        """Calls that will not change any more: done or skipped."""
        return self.done + self.skipped

    @property
    def progress(self) -> float:
        """Share of the campaign's calls that are finished, 0.0 to 1.0."""
        return self.finished / self.to_call if self.to_call else 1.0


_OUTCOME_FIELDS = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "canceled",
}


def outcome_counts(*, session: Session, campaign_id: int) -> OutcomeCounts:
    """Counts per state and final outcome of campaign `campaign_id`, in one GROUP BY query.

    Raises `CampaignError` when there is no such campaign.
    """
    get_campaign(session=session, campaign_id=campaign_id)
    answered = case(
        (Call.answered_by == "human", "human"),
        (Call.answered_by.like("machine%"), "voicemail"),
        else_="",
    )
    query = (
        select(Call.state, Call.status, answered, func.count(), func.sum(Call.attempts))
        .where(Call.campaign_id == campaign_id)
        .group_by(Call.state, Call.status, answered)
    )
    counts: dict[str, int] = dict.fromkeys(OutcomeCounts.__dataclass_fields__, 0)
    for state, status, answer, count, attempts in session.execute(query):
        counts["to_call"] += count
        counts["attempts"] += attempts or 0
        if state in counts:
            counts[state] += count
        if state != CallState.DONE.value or status not in _OUTCOME_FIELDS:
            continue
        counts[_OUTCOME_FIELDS[status]] += count
        if status == "completed" and answer:
            counts[answer] += count
    return OutcomeCounts(**counts)
