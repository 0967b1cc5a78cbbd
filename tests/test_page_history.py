"""The History page (AppTest): the campaigns table, actions with confirmation, the call list
with filters and paging, rejected rows, the recording check and the charts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from bulkcall_core.models import Call, CallState, Campaign, CampaignStatus, utcnow
from tests.e2e.app_env import app_env  # noqa: F401 (fixture)
from tests.factories import make_campaign, make_plan

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PHONES = ("+14155550101", "+14155550102", "+14155550103")

pytestmark = pytest.mark.usefixtures("app_env")


def open_history(**state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    [button] = [b for b in at.button if b.label == label]
    button.click().run()
    assert not at.exception, at.exception
    return at


def set_running(session: Session, campaign: Campaign) -> None:
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(status=CampaignStatus.RUNNING, started_at=utcnow())
    )
    session.commit()


def status_of(session: Session, campaign: Campaign) -> str:
    return session.get(Campaign, campaign.id, populate_existing=True).status


def test_no_campaign_yet_says_where_to_start(session: Session) -> None:
    """With no campaign, History points to Bulk calling instead of an empty table."""
    at = open_history()
    assert "start one on Bulk calling" in at.info[-1].value


def test_campaigns_table_shows_each_campaign_with_counts(session: Session) -> None:
    """The table lists name, channel, creator, status, counts and progress."""
    campaign = make_campaign(session, PHONES, name="Spring promo", created_by="ann@example.com")
    session.execute(
        update(Call)
        .where(Call.campaign_id == campaign.id, Call.phone == PHONES[0])
        .values(state=CallState.DONE, status="completed", answered_by="human")
    )
    session.commit()

    at = open_history()

    table = at.dataframe[0].value
    row = table.iloc[0]
    assert (row["Name"], row["Created by"], row["Status"]) == (
        f"Spring promo (#{campaign.id})",
        "ann@example.com",
        "scheduled",
    )
    assert (row["To call"], row["Done"], row["Human"]) == (3, 1, 1)
    assert row["Progress"] == pytest.approx(1 / 3)
    expected = campaign.scheduled_at.strftime("%Y-%m-%d %H:%M")
    assert row["Scheduled"] == expected


def test_times_are_shown_in_the_viewer_time_zone(session: Session) -> None:
    """A browser in Los Angeles sees Pacific times, labelled as such."""
    campaign = make_campaign(session, PHONES[:1])
    at = AppTest.from_file(APP, default_timeout=60)
    at.context = {"timezone": "America/Los_Angeles"}
    at.run().switch_page("pages/history.py").run()
    row = at.dataframe[0].value.iloc[0]
    local = campaign.scheduled_at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert row["Scheduled"] == local.strftime("%Y-%m-%d %H:%M")
    assert "America/Los_Angeles" in at.caption[0].value


def test_bulk_calling_hand_over_selects_the_campaign(session: Session) -> None:
    """`history_campaign_id` set before switching here selects that campaign."""
    older = make_campaign(session, PHONES[:1], name="Older")
    make_campaign(session, PHONES[:1], name="Newer")

    at = open_history(history_campaign_id=older.id)

    assert at.selectbox[0].value == older.id
    assert at.subheader[0].value == "Older"


def test_cancel_asks_first_then_cancels(session: Session) -> None:
    """Cancel opens a confirmation; nothing changes until it is confirmed."""
    campaign = make_campaign(session, PHONES)
    at = click(open_history(), "Cancel…")
    assert status_of(session, campaign) == "scheduled"

    click(at, "Yes, cancel it")

    assert status_of(session, campaign) == "canceled"
    assert "canceled" in at.success[0].value


def test_cancel_can_be_called_off(session: Session) -> None:
    """ "No, keep it" closes the confirmation and leaves the campaign scheduled."""
    campaign = make_campaign(session, PHONES)
    at = click(click(open_history(), "Cancel…"), "No, keep it")
    assert status_of(session, campaign) == "scheduled"
    assert not [b for b in at.button if b.label == "Yes, cancel it"]


def test_pause_and_resume_a_running_campaign(session: Session) -> None:
    """Pause holds a running campaign; Resume runs it again and says why it cannot be
    dispatched while PUBLIC_BASE_URL is unset."""
    campaign = make_campaign(session, PHONES)
    set_running(session, campaign)

    at = click(open_history(), "Pause")
    assert status_of(session, campaign) == "paused"
    assert "paused" in at.success[0].value

    click(at, "Resume")
    assert status_of(session, campaign) == "running"
    assert "PUBLIC_BASE_URL" in at.success[0].value


def test_stop_a_running_campaign_skips_pending_calls(session: Session) -> None:
    """Stop, once confirmed, stops the campaign and leaves its pending calls uncalled."""
    campaign = make_campaign(session, PHONES)
    set_running(session, campaign)

    click(click(open_history(), "Stop…"), "Yes, stop it")

    assert status_of(session, campaign) == "stopped"
    states = session.exec(
        Call.__table__.select().where(Call.campaign_id == campaign.id)  # type: ignore[arg-type]
    ).all()
    assert {row.state for row in states} == {"skipped"}


def test_a_refused_action_shows_why(session: Session) -> None:
    """When the campaign started meanwhile, Cancel is refused with the core's reason."""
    campaign = make_campaign(session, PHONES)
    at = click(open_history(), "Cancel…")
    set_running(session, campaign)  # a dispatcher picked it up while the dialog was open

    click(at, "Yes, cancel it")

    assert status_of(session, campaign) == "running"
    assert "only a scheduled campaign can be canceled (stop it instead)" in at.error[0].value


def test_call_list_filters_by_outcome_and_searches(session: Session) -> None:
    """The outcome filter and the search narrow the call list."""
    plan = make_plan(PHONES, names=["Alice", "Bob", "Carol"])
    campaign = make_campaign(session, plan=plan)
    session.execute(
        update(Call)
        .where(Call.campaign_id == campaign.id, Call.phone == PHONES[1])
        .values(state=CallState.DONE, status="busy")
    )
    session.commit()
    at = open_history()
    calls = at.dataframe[1].value
    assert list(calls["Name"]) == ["Alice", "Bob", "Carol"]

    at.multiselect(key="history_outcomes").set_value(["busy"]).run()
    assert list(at.dataframe[1].value["Name"]) == ["Bob"]

    at.multiselect(key="history_outcomes").set_value([]).run()
    at.text_input(key="history_search").input("carol").run()
    assert list(at.dataframe[1].value["Number"]) == [PHONES[2]]

    at.text_input(key="history_search").input("nobody").run()
    assert at.info[-1].value == "No call matches."


def test_call_list_pages_in_the_database(session: Session) -> None:
    """250 calls come 100 at a time; Next shows the following hundred."""
    phones = [f"+1415555{n:04d}" for n in range(250)]
    make_campaign(session, phones)
    at = open_history()
    assert len(at.dataframe[1].value) == 100
    assert "Showing 1–100 of 250 calls" in [c.value for c in at.caption]

    [next_calls] = [b for b in at.button if b.key == "history_calls_offset_next"]
    next_calls.click().run()

    assert at.dataframe[1].value.iloc[0]["Number"] == phones[100]
    assert "Showing 101–200 of 250 calls" in [c.value for c in at.caption]


def test_rejected_rows_tab_lists_reasons(session: Session) -> None:
    """The Rejected rows tab lists each row that was not called, with its reason."""
    make_campaign(session, plan=make_plan([PHONES[0], "12345"]))
    at = open_history(history_tab="Rejected rows")
    rejected = at.dataframe[1].value
    assert list(rejected["Row"]) == [3]
    assert rejected.iloc[0]["Value"] == "12345"
    assert rejected.iloc[0]["Reason"]


def test_charts_tab_draws_without_calls_and_with_them(session: Session) -> None:
    """The charts tab explains empty charts and draws them once the campaign has calls (its
    figures are recomputed when it finishes)."""
    campaign = make_campaign(session, PHONES)
    at = open_history(history_tab="Charts")
    assert "No call placed yet." in [c.value for c in at.caption]

    session.execute(
        update(Call)
        .where(Call.campaign_id == campaign.id)
        .values(state=CallState.DONE, status="completed", placed_at=utcnow() - timedelta(minutes=3))
    )
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(status=CampaignStatus.COMPLETED, finished_at=utcnow())
    )
    session.commit()
    at.run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 3


def test_recording_check_says_what_to_set_without_public_url(session: Session) -> None:
    """Checking the recording's address without PUBLIC_BASE_URL says to set it."""
    make_campaign(session, PHONES[:1])
    at = click(open_history(), "Check the recording's address")
    assert "Set PUBLIC_BASE_URL" in at.error[0].value
