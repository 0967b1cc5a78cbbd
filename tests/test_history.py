"""bulkcall_core.history: the campaigns table, the call list, exports and chart figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from sqlmodel import Session

from bulkcall_core import history
from bulkcall_core.campaigns import pause_campaign
from bulkcall_core.errors import CampaignError
from bulkcall_core.models import Call, CallState, Campaign, CampaignStatus, utcnow
from tests.factories import make_campaign, make_plan

PHONES = ("+14155550101", "+14155550102", "+14155550103", "+14155550104", "+14155550105")


def set_call(session: Session, campaign: Campaign, phone: str, **values: Any) -> None:
    """Give a call the state the engine would have recorded (a test fixture, not the core)."""
    values.setdefault("state", CallState.DONE.value)
    session.execute(
        update(Call).where(Call.campaign_id == campaign.id, Call.phone == phone).values(**values)
    )
    session.commit()


def finish_calls(session: Session, campaign: Campaign, placed_at: datetime) -> None:
    """human, voicemail, busy, failed with a Twilio error, and one still pending."""
    set_call(
        session,
        campaign,
        PHONES[0],
        status="completed",
        answered_by="human",
        placed_at=placed_at,
        duration_seconds=31,
        attempts=1,
    )
    set_call(
        session,
        campaign,
        PHONES[1],
        status="completed",
        answered_by="machine_end_beep",
        placed_at=placed_at + timedelta(minutes=5),
        attempts=1,
    )
    set_call(session, campaign, PHONES[2], status="busy", placed_at=placed_at, attempts=2)
    set_call(
        session,
        campaign,
        PHONES[3],
        status="failed",
        error_code=21215,
        error_message="Geo permission",
        placed_at=placed_at,
        attempts=1,
    )


def test_list_campaigns_newest_first_with_channel_and_counts(session: Session) -> None:
    """Campaigns come newest first, each with its channel's name and counts per outcome."""
    older = make_campaign(session, PHONES, name="Older")
    newer = make_campaign(session, PHONES[:2], name="Newer")
    finish_calls(session, older, utcnow())

    page = history.list_campaigns(session=session)

    assert page.total == 2
    assert [s.campaign.id for s in page.items] == [newer.id, older.id]
    counts = page.items[1].counts
    assert (counts.to_call, counts.done, counts.human, counts.voicemail) == (5, 4, 1, 1)
    assert (counts.busy, counts.failed, counts.pending) == (1, 1, 1)
    assert page.items[1].channel_name.startswith("Channel ")


def test_list_campaigns_pages_and_filters_by_status(session: Session) -> None:
    """A page holds `limit` campaigns from `offset`; a status filter narrows the total."""
    campaigns = [make_campaign(session, PHONES[:1], name=f"C{i}") for i in range(3)]
    pause_campaign(session=session, campaign_id=campaigns[0].id)
    session.commit()

    second = history.list_campaigns(session=session, offset=1, limit=1)
    paused = history.list_campaigns(session=session, statuses=["paused"])

    assert (second.total, [s.campaign.name for s in second.items]) == (3, ["C1"])
    assert (paused.total, [s.campaign.id for s in paused.items]) == (1, [campaigns[0].id])


def test_live_refresh_only_while_running_or_due(session: Session) -> None:
    """History refreshes itself while a campaign runs or is about to; not otherwise."""
    campaign = make_campaign(session, PHONES[:1], scheduled_at=utcnow() + timedelta(hours=1))
    assert not history.needs_live_refresh(session=session)
    assert history.needs_live_refresh(session=session, now=utcnow() + timedelta(minutes=59))
    campaign.status = CampaignStatus.RUNNING
    session.add(campaign)
    session.commit()
    assert history.needs_live_refresh(session=session)


def test_list_calls_in_file_order_with_outcomes_and_errors(session: Session) -> None:
    """Each call shows its outcome; a Twilio error reads as "code: message"."""
    campaign = make_campaign(session, PHONES)
    finish_calls(session, campaign, utcnow())

    page = history.list_calls(session=session, campaign_id=campaign.id)

    assert page.total == 5
    assert [c.phone for c in page.items] == list(PHONES)
    assert [c.outcome for c in page.items] == [
        "human",
        "voicemail",
        "busy",
        "failed",
        "pending",
    ]
    assert page.items[3].error == "21215: Geo permission"
    assert page.items[0].duration_seconds == 31


def test_list_calls_filters_by_outcome(session: Session) -> None:
    """Only the calls with the chosen outcomes come back, and the total counts them."""
    campaign = make_campaign(session, PHONES)
    finish_calls(session, campaign, utcnow())

    page = history.list_calls(
        session=session, campaign_id=campaign.id, outcomes=["busy", "voicemail"]
    )

    assert (page.total, [c.phone for c in page.items]) == (2, [PHONES[1], PHONES[2]])


def test_a_call_waiting_for_its_retry_says_how_the_last_attempt_ended(session: Session) -> None:
    """Not a bare "pending": the outcome is "retrying" and the error column says why."""
    campaign = make_campaign(session, PHONES[:2])
    set_call(session, campaign, PHONES[0], state=CallState.PENDING.value, attempts=1,
             previous_status="no-answer")  # fmt: skip
    page = history.list_calls(session=session, campaign_id=campaign.id)
    first, second = page.items
    assert (first.outcome, first.error) == ("retrying", "attempt 1 was no-answer; calling again")
    assert (second.outcome, second.error) == ("pending", None)
    retrying = history.list_calls(session=session, campaign_id=campaign.id, outcomes=["retrying"])
    assert [c.phone for c in retrying.items] == [PHONES[0]]
    out = io.BytesIO()
    history.write_csv(session=session, campaign_id=campaign.id, out=out)
    assert "attempt 1 was no-answer; calling again" in out.getvalue().decode("utf-8-sig")


def test_list_calls_refuses_unknown_outcome(session: Session) -> None:
    """A filter on an outcome that does not exist is an error naming the valid ones."""
    campaign = make_campaign(session, PHONES[:1])
    with pytest.raises(CampaignError, match="Unknown outcome answered-ish; use one of human"):
        history.list_calls(session=session, campaign_id=campaign.id, outcomes=["answered-ish"])


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("alice", ["+14155550101"]),
        ("ALI", ["+14155550101"]),
        ("(415) 555-0103", ["+14155550103"]),
        ("5550105", ["+14155550105"]),
        ("50_", []),  # LIKE wildcards are literal
    ],
)
def test_list_calls_searches_name_and_number(
    session: Session, search: str, expected: list[str]
) -> None:
    """Search matches names case-insensitively and numbers whatever their punctuation."""
    names = ["Alice", "Bob", "Carol", "Dan", "Eve"]
    campaign = make_campaign(session, plan=make_plan(PHONES, names=names))

    page = history.list_calls(session=session, campaign_id=campaign.id, search=search)

    assert [c.phone for c in page.items] == expected


def test_list_calls_pages_server_side(session: Session) -> None:
    """A page of 2 from offset 2 brings exactly those two calls, and the full total."""
    campaign = make_campaign(session, PHONES)

    page = history.list_calls(session=session, campaign_id=campaign.id, offset=2, limit=2)

    assert (page.total, [c.phone for c in page.items]) == (5, list(PHONES[2:4]))


def test_list_calls_caps_the_page_size(session: Session) -> None:
    """Asking for more than MAX_PAGE_SIZE calls gets MAX_PAGE_SIZE at most."""
    phones = [f"+1415555{n:04d}" for n in range(history.MAX_PAGE_SIZE + 5)]
    campaign = make_campaign(session, phones)

    page = history.list_calls(session=session, campaign_id=campaign.id, limit=10**9)

    assert (page.total, len(page.items)) == (len(phones), history.MAX_PAGE_SIZE)


def test_list_calls_unknown_campaign(session: Session) -> None:
    """An unknown campaign is an error, not an empty list."""
    with pytest.raises(CampaignError, match="No campaign 999"):
        history.list_calls(session=session, campaign_id=999)


def test_list_problems_gives_rejected_rows_with_reasons(session: Session) -> None:
    """Rejected rows come back in file order with the value and the reason."""
    plan = make_plan([PHONES[0], "12", PHONES[0]])
    campaign = make_campaign(session, plan=plan)

    page = history.list_problems(session=session, campaign_id=campaign.id)

    assert page.total == 2
    assert [(p.row, p.value) for p in page.items] == [(3, "12"), (4, PHONES[0])]
    assert all(p.reason for p in page.items)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("+14155550100", "+14155550100"),
        ("-12.5", "-12.5"),
        ("Alice = Bob", "Alice = Bob"),
        (42, 42),
        (None, None),
    ],
)
def test_neutralise_cell(value: Any, expected: Any) -> None:
    """Formula starts get an apostrophe; plain signed numbers (E.164 phones) stay readable."""
    assert history.neutralise_cell(value) == expected


def _dangerous_campaign(session: Session) -> Campaign:
    plan = make_plan([PHONES[0], PHONES[1], "=1+1"], names=["=cmd|'/C calc'!A0", "Bob", "x"])
    campaign = make_campaign(session, plan=plan)
    finish_calls(session, campaign, datetime(2026, 1, 5, 15, 0, tzinfo=UTC))
    return campaign


def test_csv_export_neutralises_formulas_and_keeps_phones(session: Session) -> None:
    """The CSV holds every call and rejected row; formulas are inert, phones stay E.164."""
    campaign = _dangerous_campaign(session)
    out = io.BytesIO()

    count = history.write_csv(session=session, campaign_id=campaign.id, out=out)

    data = out.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert count == len(rows) == 3
    assert rows[0]["name"] == "'=cmd|'/C calc'!A0"
    assert rows[0]["phone"] == "+14155550101"
    assert rows[0]["outcome"] == "human"
    assert rows[0]["placed_at_utc"] == "2026-01-05T15:00:00+00:00"
    assert rows[0]["note"] == "row 2"
    assert (rows[2]["outcome"], rows[2]["phone"]) == ("rejected", "'=1+1")
    assert rows[2]["error"]


def test_xlsx_export_stores_text_not_formulas(session: Session) -> None:
    """The workbook's cells are text: no formula, the phone readable as +1..."""
    campaign = _dangerous_campaign(session)
    out = io.BytesIO()

    count = history.write_xlsx(session=session, campaign_id=campaign.id, out=out)

    sheet = load_workbook(io.BytesIO(out.getvalue()), read_only=True)["Calls"]
    rows = list(sheet.iter_rows(values_only=True))
    assert count == len(rows) - 1 == 3
    header = list(rows[0])
    assert rows[1][header.index("name")] == "'=cmd|'/C calc'!A0"
    assert rows[1][header.index("phone")] == "+14155550101"
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)


def test_export_of_unknown_campaign_fails(session: Session) -> None:
    """Exporting a campaign that does not exist is an error."""
    with pytest.raises(CampaignError):
        history.write_csv(session=session, campaign_id=404, out=io.BytesIO())


def test_outcome_breakdown(session: Session) -> None:
    """Calls per outcome, in display order, only outcomes that occur."""
    campaign = make_campaign(session, PHONES)
    finish_calls(session, campaign, utcnow())

    frame = history.outcome_breakdown(session=session, campaign_id=campaign.id)

    assert frame.to_dict("records") == [
        {"outcome": "human", "calls": 1},
        {"outcome": "voicemail", "calls": 1},
        {"outcome": "busy", "calls": 1},
        {"outcome": "failed", "calls": 1},
        {"outcome": "pending", "calls": 1},
    ]


def test_calls_over_time_buckets_by_placed_time(session: Session) -> None:
    """Calls are counted per time bucket and outcome; unplaced calls are left out."""
    campaign = make_campaign(session, PHONES)
    start = datetime(2026, 1, 5, 15, 0, 3, tzinfo=UTC)
    finish_calls(session, campaign, start)

    frame = history.calls_over_time(session=session, campaign_id=campaign.id)

    assert frame["calls"].sum() == 4
    # 5 minutes of calls: 10-second buckets.
    first = frame[frame["time"] == datetime(2026, 1, 5, 15, 0, 0, tzinfo=UTC)]
    assert set(first["outcome"]) == {"human", "busy", "failed"}
    assert frame["time"].max() == datetime(2026, 1, 5, 15, 5, 0, tzinfo=UTC)


def test_calls_over_time_empty_before_any_call(session: Session) -> None:
    """A campaign with no call placed yet has no points, not an error."""
    campaign = make_campaign(session, PHONES[:1])
    assert history.calls_over_time(session=session, campaign_id=campaign.id).empty


def test_answer_rate_by_recipient_local_hour(session: Session) -> None:
    """A call placed at 15:00 UTC to San Francisco counts at 07:00 its local time (PST) and
    one to London at 15:00; the rate is answered over reached calls."""
    phones = ["+14155550101", "+14155550102", "+442079460000"]
    campaign = make_campaign(session, phones)
    at = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    set_call(session, campaign, phones[0], status="completed", placed_at=at)
    set_call(session, campaign, phones[1], status="no-answer", placed_at=at)
    set_call(session, campaign, phones[2], status="completed", placed_at=at)

    result = history.answer_rate_by_local_hour(session=session, campaign_ids=[campaign.id])

    by_hour = result.frame.set_index("hour")
    assert (by_hour.loc[7, "calls"], by_hour.loc[7, "answer_rate"]) == (2, 0.5)
    assert (by_hour.loc[15, "calls"], by_hour.loc[15, "answer_rate"]) == (1, 1.0)
    assert by_hour["calls"].sum() == 3
    assert result.unknown_zone == 0


def test_compare_campaigns(session: Session) -> None:
    """One row per campaign with its answer rate; unknown ids are skipped."""
    first = make_campaign(session, PHONES, name="First")
    second = make_campaign(session, PHONES[:1], name="Second")
    finish_calls(session, first, utcnow())

    frame = history.compare_campaigns(session=session, campaign_ids=[first.id, second.id, 999])

    assert list(frame["campaign"]) == [f"First (#{first.id})", f"Second (#{second.id})"]
    assert frame.loc[0, "answer_rate"] == 0.5
    assert frame.loc[1, "answer_rate"] is None or frame["answer_rate"].isna()[1]


def test_bucket_width_follows_the_span() -> None:
    """Short campaigns get fine buckets, long ones coarse buckets."""
    assert history.bucket_seconds_for(timedelta(minutes=5)) == 10
    assert history.bucket_seconds_for(timedelta(hours=2)) == 60
    assert history.bucket_seconds_for(timedelta(days=3)) == 3600
