"""bulkcall_core.campaigns: storing a campaign from a plan, its lifecycle, its counts.

Every test runs on SQLite and on PostgreSQL (the `session` fixture).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from bulkcall_core.campaigns import (
    CANCELED_REASON,
    MAX_DAYS_AHEAD,
    STOPPED_REASON,
    cancel_campaign,
    create_campaign,
    get_campaign,
    outcome_counts,
    pause_campaign,
    prefetched,
    resume_campaign,
    stop_campaign,
)
from bulkcall_core.errors import CampaignError, ScheduleError
from bulkcall_core.models import Call, CallState, Campaign, CampaignProblem, CampaignStatus
from bulkcall_core.planning import Plan
from tests.factories import make_campaign, make_channel, make_plan, make_recording

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def ids(session: Session) -> dict[str, int]:
    """A channel and a recording to create campaigns with."""
    return {
        "channel_id": make_channel(session).id,
        "recording_id": make_recording(session).id,
    }


def create(session: Session, ids: dict[str, int], **overrides: object) -> Campaign:
    values: dict[str, object] = {
        "plan": make_plan(["+14155550101", "(415) 555-0102"]),
        "name": "Spring sale",
        "scheduled_at": NOW + timedelta(hours=1),
        "now": NOW,
        **ids,
    }
    values.update(overrides)
    return create_campaign(session=session, **values)  # type: ignore[arg-type]


def calls_of(session: Session, campaign_id: int) -> list[Call]:
    query = select(Call).where(Call.campaign_id == campaign_id).order_by(Call.id)
    return list(session.scalars(query))


def campaign_count(session: Session) -> int:
    return session.scalar(select(func.count(Campaign.id))) or 0


def store_and_read_back(
    session: Session, ids: dict[str, int], plan: Plan
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """(row, phone, name, fields) of the calls stored from `plan` and committed, read back
    from the database; and the same from the plan's recipient dicts."""
    campaign = create(session, ids, plan=plan)
    session.commit()
    session.expunge_all()
    stored = [(c.row, c.phone, c.name, c.fields) for c in calls_of(session, campaign.id)]
    expected = [
        (r["row"], r["phone"], r["name"], r["fields"])
        for batch in plan.recipient_batches()
        for r in batch
    ]
    return stored, expected


# --------------------------------------------------------------------------- creating


def test_create_stores_campaign_with_plan_counts(session: Session, ids: dict[str, int]) -> None:
    """The campaign row carries the plan's counts and the settings given."""
    plan = make_plan(["+14155550101", "4155550101", "12", "+14155550103"])
    campaign = create(session, ids, plan=plan, created_by="ann@example.com", retry_count=2)
    session.commit()
    stored = get_campaign(session=session, campaign_id=campaign.id)
    assert (stored.rows, stored.invalid, stored.duplicates, stored.to_call) == (4, 1, 1, 2)
    assert stored.status == CampaignStatus.SCHEDULED
    assert stored.created_by == "ann@example.com" and stored.retry_count == 2
    assert stored.scheduled_at == NOW + timedelta(hours=1)


def test_create_stores_one_pending_call_per_recipient(
    session: Session, ids: dict[str, int]
) -> None:
    """Each recipient becomes a pending call due at the campaign's time, in file order."""
    campaign = create(session, ids)
    session.commit()
    calls = calls_of(session, campaign.id)
    assert [(c.row, c.phone, c.name) for c in calls] == [
        (2, "+14155550101", "Person 0"),
        (3, "+14155550102", "Person 1"),
    ]
    assert {c.state for c in calls} == {CallState.PENDING}
    assert {c.attempts for c in calls} == {0}
    assert {c.next_attempt_at for c in calls} == {NOW + timedelta(hours=1)}


def test_stored_times_compare_like_orm_written_times(session: Session, ids: dict[str, int]) -> None:
    """Bulk-written next_attempt_at is found by the dispatcher's `<=` query at and after the
    campaign's time, not before (same storage format as the ORM's)."""
    campaign = create(session, ids)
    session.commit()

    def due(at: datetime) -> int:
        query = select(func.count(Call.id)).where(
            Call.campaign_id == campaign.id, Call.next_attempt_at <= at
        )
        return session.scalar(query) or 0

    assert due(campaign.scheduled_at) == 2
    assert due(campaign.scheduled_at - timedelta(microseconds=1)) == 0


def test_create_stores_every_problem_with_its_reason(session: Session, ids: dict[str, int]) -> None:
    """Rejected rows, do-not-call numbers and duplicates are kept as campaign problems."""
    plan = make_plan(
        ["+14155550101", "12", "415 555 0101", "+14155550109"],
        do_not_call=frozenset({"+14155550109"}),
    )
    campaign = create(session, ids, plan=plan)
    session.commit()
    query = select(CampaignProblem).where(CampaignProblem.campaign_id == campaign.id)
    problems = sorted((p.row, p.value, p.reason) for p in session.scalars(query))
    assert problems == [
        (3, "12", "too short"),
        (4, "+14155550101", "duplicate: same number as row 2"),
        (5, "+14155550109", "on the do-not-call list"),
    ]


NASTY_FIELDS = {
    "note": 'tab\there, "quotes", new\nline, back\\slash, \\N, é ü 中文 😀',
    "empty": "",
    "city": "Saint-Étienne",
}


def test_bulk_insert_keeps_rows_names_and_fields_exactly(
    session: Session, ids: dict[str, int]
) -> None:
    """20,000 recipients come back exactly as the plan gave them (row, phone, name, fields),
    including tabs, newlines, backslashes, COPY's null marker and non-ASCII text."""
    from bulkcall_core.planning import PlanOptions, plan_records

    count = 20_000
    records = [
        (
            row,
            f"+1212{200 + row // 10_000}{row % 10_000:04d}",
            None if row % 7 == 0 else f"Zoë {row}\t'x'",
            {**NASTY_FIELDS, "row": str(row)},
        )
        for row in range(2, count + 2)
    ]
    plan = plan_records(records, PlanOptions(phone_column="phone"))
    stored, expected = store_and_read_back(session, ids, plan)
    assert len(stored) == count and stored == expected
    assert stored[5][3]["note"] == NASTY_FIELDS["note"] and stored[5][2] is None


def test_calls_from_a_read_file_keep_fields_exactly(session: Session, ids: dict[str, int]) -> None:
    """A plan over a file read by sources (Arrow columns, fields JSON built per column)
    stores every call's row, name, phone and fields as the plan's dicts say: quotes,
    backslashes, tabs, newlines, non-ASCII, blank and whitespace-only cells."""
    from bulkcall_core.planning import PlanOptions, plan_table
    from bulkcall_core.sources import read_table

    lines = ["Name,Phone,Note,City"]
    for row in range(2, 2002):
        note = '"a ""quoted"" \\ back\tslash\nnew line"' if row % 3 else "   "
        lines.append(f"Zoë {row},+1212{200 + row // 10_000}{row % 10_000:04d},{note},São {row}")
    table = read_table("\n".join(lines).encode(), filename="c.csv")
    plan = plan_table(table, PlanOptions(phone_column="Phone", name_column="Name"))
    stored, expected = store_and_read_back(session, ids, plan)
    assert len(stored) == 2000 and stored == expected
    assert stored[0][3] == {"Note": 'a "quoted" \\ back\tslash\nnew line', "City": "São 2"}
    assert stored[1][3] == {"City": "São 3"}


def test_prefetched_gives_every_item_in_order() -> None:
    """Items come out in order, all of them, also when the producer is slower or faster."""
    assert list(prefetched(iter(range(1000)))) == list(range(1000))
    assert list(prefetched([])) == []


def test_prefetched_raises_the_producers_error_in_the_caller() -> None:
    """An error while producing reaches the caller after the items made before it."""

    def producer() -> Iterator[int]:
        yield 1
        raise ValueError("bad batch")

    seen = []
    with pytest.raises(ValueError, match="bad batch"):
        for item in prefetched(producer()):
            seen.append(item)
    assert seen == [1]


def test_prefetched_closed_early_stops_its_worker() -> None:
    """A caller that stops (here after 3 of endless items) leaves no worker thread behind."""
    items = prefetched(itertools.count())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert not [t for t in threading.enumerate() if t.name == "bulkcall-prefetch"]


def test_failed_insert_stops_the_prefetch_thread(session: Session, ids: dict[str, int]) -> None:
    """When storing the calls fails (here a recipient without a phone, refused by the
    database), the prefetch worker is gone before the error reaches the caller."""
    import psycopg
    from sqlalchemy.exc import IntegrityError

    from bulkcall_core.campaigns import INSERT_BATCH_SIZE
    from bulkcall_core.planning import Recipient

    count = 2 * INSERT_BATCH_SIZE + 1
    recipients = [Recipient(row=2, phone=None, name=None, fields={})] * count  # type: ignore[arg-type]
    plan = Plan(count, count, 0, 0, 0, 0, count, recipients, (), ())
    with pytest.raises((IntegrityError, psycopg.IntegrityError)):  # SQLite, COPY
        create(session, ids, plan=plan)
    assert not [t for t in threading.enumerate() if t.name == "bulkcall-prefetch"]


def test_progress_runs_on_the_callers_thread(session: Session, ids: dict[str, int]) -> None:
    """Progress callbacks (Streamlit widgets need their own thread) never run on the
    prefetch worker."""
    threads = set()
    create(session, ids, progress=lambda _: threads.add(threading.current_thread().name))
    assert threads == {threading.current_thread().name}


def test_progress_reports_rising_fractions_up_to_one(session: Session, ids: dict[str, int]) -> None:
    """progress(fraction) is called with non-decreasing fractions ending at 1.0."""
    seen: list[float] = []
    create(session, ids, progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_scheduled_at_none_means_now(session: Session, ids: dict[str, int]) -> None:
    campaign = create(session, ids, scheduled_at=None)
    assert campaign.scheduled_at == NOW


def test_time_within_grace_counts_as_now(session: Session, ids: dict[str, int]) -> None:
    """A time 30 s ago (the user took a moment to confirm) is stored as now."""
    campaign = create(session, ids, scheduled_at=NOW - timedelta(seconds=30))
    assert campaign.scheduled_at == NOW


def test_time_in_another_zone_is_stored_in_utc(session: Session, ids: dict[str, int]) -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 12, 5, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
    campaign = create(session, ids, scheduled_at=local, time_zone="Europe/Paris")
    session.commit()
    stored = get_campaign(session=session, campaign_id=campaign.id)
    assert stored.scheduled_at == datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    assert stored.scheduled_at.utcoffset() == timedelta(0)


def test_past_time_is_refused_naming_it(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(ScheduleError, match=r"2026-12-04 11:00 UTC is in the past"):
        create(session, ids, scheduled_at=NOW - timedelta(hours=1))
    assert campaign_count(session) == 0


def test_past_time_is_shown_in_the_users_zone(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(ScheduleError, match=r"2026-12-04 03:00 PST is in the past"):
        create(
            session,
            ids,
            scheduled_at=NOW - timedelta(hours=1),
            time_zone="America/Los_Angeles",
        )


def test_time_beyond_30_days_is_refused(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(ScheduleError, match=r"more than 30 days ahead; pick a time up to"):
        create(session, ids, scheduled_at=NOW + timedelta(days=31))
    assert campaign_count(session) == 0


def test_time_exactly_30_days_ahead_is_accepted(session: Session, ids: dict[str, int]) -> None:
    at = NOW + timedelta(days=MAX_DAYS_AHEAD)
    assert create(session, ids, scheduled_at=at).scheduled_at == at


def test_naive_time_is_refused(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(ScheduleError, match="has no time zone"):
        create(session, ids, scheduled_at=datetime(2026, 12, 5, 9, 0))


def test_unknown_time_zone_is_refused(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(ScheduleError, match="Unknown time zone 'Mars/Olympus'"):
        create(session, ids, time_zone="Mars/Olympus")


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_name_is_refused(session: Session, ids: dict[str, int], name: str) -> None:
    with pytest.raises(CampaignError, match="to easily identify the campaign later") as error:
        create(session, ids, name=name)
    assert error.value.field == "name"


def test_name_is_trimmed(session: Session, ids: dict[str, int]) -> None:
    assert create(session, ids, name="  Spring sale  ").name == "Spring sale"


def test_plan_with_nothing_to_call_is_refused(session: Session, ids: dict[str, int]) -> None:
    """Only invalid and do-not-call rows: nothing is stored and the message gives the counts."""
    plan = make_plan(["12", "+14155550109"], do_not_call=frozenset({"+14155550109"}))
    message = r"Nothing to call: of 2 rows, 1 have no valid number, 0 are blocked, 1 are on the"
    with pytest.raises(CampaignError, match=message):
        create(session, ids, plan=plan)
    assert campaign_count(session) == 0


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("8:00", "21:00", "'8:00' is not HH:MM"),
        ("08:00", "24:00", "'24:00' is not HH:MM"),
        ("08:60", "21:00", "'08:60' is not HH:MM"),
        ("21:00", "08:00", "21:00-08:00 is empty"),
        ("09:00", "09:00", "09:00-09:00 is empty"),
        ("08:00", None, "both the start and the end"),
        (None, "21:00", "both the start and the end"),
    ],
)
def test_bad_calling_window_is_refused(
    session: Session, ids: dict[str, int], start: str | None, end: str | None, message: str
) -> None:
    with pytest.raises(CampaignError, match=message) as error:
        create(session, ids, window_start=start, window_end=end)
    assert error.value.field == "window"


def test_calling_window_is_stored(session: Session, ids: dict[str, int]) -> None:
    campaign = create(session, ids, window_start=" 08:00", window_end="21:00 ")
    assert (campaign.window_start, campaign.window_end) == ("08:00", "21:00")


def test_blank_calling_window_means_none(session: Session, ids: dict[str, int]) -> None:
    campaign = create(session, ids, window_start="", window_end=" ")
    assert (campaign.window_start, campaign.window_end) == (None, None)


@pytest.mark.parametrize(
    ("count", "interval", "field"),
    [(6, 600, "retry_count"), (-1, 600, "retry_count"), (1, 59, "retry_interval_seconds")],
)
def test_bad_retries_are_refused(
    session: Session, ids: dict[str, int], count: int, interval: int, field: str
) -> None:
    with pytest.raises(CampaignError) as error:
        create(session, ids, retry_count=count, retry_interval_seconds=interval)
    assert error.value.field == field


def test_plan_without_rows_is_refused(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(CampaignError, match="Nothing to call: the contacts have no data rows"):
        create(session, ids, plan=make_plan([]))


def test_unknown_channel_is_refused(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(CampaignError, match="No channel 9999; pick one from Channels"):
        create(session, ids, channel_id=9999)
    assert campaign_count(session) == 0


def test_unknown_recording_is_refused(session: Session, ids: dict[str, int]) -> None:
    with pytest.raises(CampaignError, match="No recording 9999"):
        create(session, ids, recording_id=9999)


# --------------------------------------------------------------------------- lifecycle

ACTIONS = {
    "cancel": cancel_campaign,
    "pause": pause_campaign,
    "resume": resume_campaign,
    "stop": stop_campaign,
}
ALLOWED = {
    ("cancel", "scheduled"): "canceled",
    ("pause", "scheduled"): "paused",
    ("pause", "running"): "paused",
    ("resume", "paused"): "running",  # a campaign that had started
    ("stop", "running"): "stopped",
    ("stop", "paused"): "stopped",
}
REFUSED = [
    (action, status)
    for action in ACTIONS
    for status in CampaignStatus
    if (action, status.value) not in ALLOWED
]


def campaign_in(session: Session, status: str, *, started: bool = True) -> Campaign:
    campaign = make_campaign(session, phones=["+14155550101", "+14155550102", "+14155550103"])
    values = {"status": status, "started_at": NOW if started else None}
    session.execute(update(Campaign).where(Campaign.id == campaign.id).values(**values))
    session.commit()
    return get_campaign(session=session, campaign_id=campaign.id)


@pytest.mark.parametrize(("action", "status"), sorted(ALLOWED))
def test_allowed_transition(session: Session, action: str, status: str) -> None:
    campaign = campaign_in(session, status)
    result = ACTIONS[action](session=session, campaign_id=campaign.id)
    session.commit()
    assert result.status == ALLOWED[(action, status)]
    assert get_campaign(session=session, campaign_id=campaign.id).status == result.status


@pytest.mark.parametrize(("action", "status"), REFUSED)
def test_refused_transition_names_the_status(session: Session, action: str, status: str) -> None:
    campaign = campaign_in(session, status)
    with pytest.raises(CampaignError, match=f"Campaign {campaign.id} is {status}; only a"):
        ACTIONS[action](session=session, campaign_id=campaign.id)
    session.rollback()
    assert get_campaign(session=session, campaign_id=campaign.id).status == status


def test_refused_cancel_of_running_campaign_says_stop_instead(session: Session) -> None:
    campaign = campaign_in(session, "running")
    with pytest.raises(CampaignError, match=r"can be canceled \(stop it instead\)"):
        cancel_campaign(session=session, campaign_id=campaign.id)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_action_on_unknown_campaign_is_refused(session: Session, action: str) -> None:
    with pytest.raises(CampaignError, match="No campaign 4242"):
        ACTIONS[action](session=session, campaign_id=4242)


def test_resume_of_campaign_that_never_started_goes_back_to_scheduled(session: Session) -> None:
    campaign = campaign_in(session, "paused", started=False)
    assert resume_campaign(session=session, campaign_id=campaign.id).status == "scheduled"


def test_resume_clears_the_error_that_paused_the_campaign(session: Session) -> None:
    campaign = campaign_in(session, "paused")
    session.execute(
        update(Campaign).where(Campaign.id == campaign.id).values(last_error="Twilio: 20003")
    )
    session.commit()
    assert resume_campaign(session=session, campaign_id=campaign.id).last_error is None


def test_pause_keeps_the_error_of_a_campaign(session: Session) -> None:
    """Only resuming clears last_error; other actions leave it for History to show."""
    campaign = campaign_in(session, "running")
    session.execute(update(Campaign).where(Campaign.id == campaign.id).values(last_error="boom"))
    session.commit()
    assert pause_campaign(session=session, campaign_id=campaign.id).last_error == "boom"


def test_cancel_skips_every_pending_call(session: Session) -> None:
    campaign = campaign_in(session, "scheduled")
    cancel_campaign(session=session, campaign_id=campaign.id)
    session.commit()
    calls = calls_of(session, campaign.id)
    assert {(c.state, c.skip_reason) for c in calls} == {("skipped", CANCELED_REASON)}
    assert get_campaign(session=session, campaign_id=campaign.id).finished_at is not None


def test_stop_skips_pending_calls_and_leaves_calls_in_flight(session: Session) -> None:
    """Pending calls are skipped; a dialing and a placed call keep going to their outcome."""
    campaign = campaign_in(session, "running")
    first, second, _third = calls_of(session, campaign.id)
    session.execute(update(Call).where(Call.id == first.id).values(state="dialing"))
    session.execute(update(Call).where(Call.id == second.id).values(state="placed", sid="CA1"))
    session.commit()
    stop_campaign(session=session, campaign_id=campaign.id)
    session.commit()
    session.expunge_all()
    states = [(c.state, c.skip_reason) for c in calls_of(session, campaign.id)]
    assert states == [("dialing", None), ("placed", None), ("skipped", STOPPED_REASON)]


def test_pause_leaves_calls_untouched(session: Session) -> None:
    campaign = campaign_in(session, "running")
    pause_campaign(session=session, campaign_id=campaign.id)
    session.commit()
    assert {c.state for c in calls_of(session, campaign.id)} == {"pending"}


def test_second_tab_acting_on_a_stale_view_is_refused(session: Session) -> None:
    """Two sessions (two browser tabs) cancel the same campaign: exactly one wins."""
    campaign = campaign_in(session, "scheduled")
    with Session(session.get_bind(), expire_on_commit=False) as other:
        stale = other.get(Campaign, campaign.id)
        assert stale is not None and stale.status == "scheduled"
        cancel_campaign(session=session, campaign_id=campaign.id)
        session.commit()
        with pytest.raises(CampaignError, match="is canceled; only a scheduled campaign"):
            cancel_campaign(session=other, campaign_id=campaign.id)


def test_get_unknown_campaign_is_refused(session: Session) -> None:
    with pytest.raises(CampaignError, match="No campaign 12"):
        get_campaign(session=session, campaign_id=12)


# --------------------------------------------------------------------------- counting


def test_outcome_counts_per_state_and_final_outcome(session: Session) -> None:
    phones = [f"+1415555{n:04d}" for n in range(101, 113)]
    campaign = make_campaign(session, phones=phones)
    calls = calls_of(session, campaign.id)
    outcomes = [
        ("done", "completed", "human", 1),
        ("done", "completed", "machine_end_beep", 1),
        ("done", "completed", "machine_start", 2),
        ("done", "completed", "fax", 1),
        ("done", "busy", None, 3),
        ("done", "no-answer", None, 1),
        ("done", "failed", None, 1),
        ("done", "canceled", None, 1),
        ("pending", "busy", None, 1),  # waiting for its retry: not a final busy
        ("dialing", None, None, 1),
        ("placed", "ringing", None, 1),
        ("skipped", None, None, 0),
    ]
    for call, (state, status, answered_by, attempts) in zip(calls, outcomes, strict=True):
        values = {"state": state, "status": status, "answered_by": answered_by}
        session.execute(update(Call).where(Call.id == call.id).values(attempts=attempts, **values))
    session.commit()
    counts = outcome_counts(session=session, campaign_id=campaign.id)
    assert (counts.to_call, counts.pending, counts.dialing, counts.placed) == (12, 1, 1, 1)
    assert (counts.done, counts.skipped, counts.in_progress, counts.finished) == (8, 1, 2, 9)
    assert (counts.completed, counts.human, counts.voicemail) == (4, 1, 2)
    assert (counts.busy, counts.no_answer, counts.failed, counts.canceled) == (1, 1, 1, 1)
    assert counts.attempts == 14
    assert counts.progress == pytest.approx(9 / 12)


def test_outcome_counts_of_new_campaign_are_all_pending(session: Session) -> None:
    campaign = make_campaign(session)
    counts = outcome_counts(session=session, campaign_id=campaign.id)
    assert (counts.to_call, counts.pending, counts.done, counts.attempts) == (2, 2, 0, 0)


def test_outcome_counts_of_unknown_campaign_is_refused(session: Session) -> None:
    with pytest.raises(CampaignError, match="No campaign 77"):
        outcome_counts(session=session, campaign_id=77)


def test_bulk_insert_gives_the_sqlite_page_cache_back(
    session: Session, ids: dict[str, int]
) -> None:
    """The larger page cache used while storing calls is only borrowed (SQLite only)."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("a SQLite pragma")
    connection = session.connection()
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    create(session, ids)
    assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == before


def test_bulk_insert_constants_are_stored_as_given(session: Session) -> None:
    """Shared values (quotes included) and datetimes come back exactly, like ORM-written ones."""
    from bulkcall_core.campaigns import bulk_insert
    from bulkcall_core.models import DoNotCall

    batches = [[("+14155550101",), ("+14155550102",)], [], [("+14155550103",)]]
    constants = {"note": "O'Brien's; DROP TABLE x; --", "created_at": NOW}
    count = bulk_insert(session, DoNotCall.__table__, ("phone",), batches, constants=constants)
    session.commit()
    stored = session.execute(select(DoNotCall.phone, DoNotCall.note, DoNotCall.created_at)).all()
    assert count == 3
    assert sorted(stored) == [(f"+1415555010{n}", constants["note"], NOW) for n in (1, 2, 3)]
