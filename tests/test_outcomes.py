"""Outcomes: statuses move forward only, retries are counted, campaigns complete, polls fill in."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from bulkcall_core import channels, crypto, outcomes, telephony
from bulkcall_core.models import (
    Call,
    CallState,
    Campaign,
    CampaignStatus,
    Channel,
    Recording,
    utcnow,
)
from bulkcall_core.settings import Settings
from tests.fake_twilio import FakeTwilio, Outcome


def make_running_campaign(
    session: Session, *, channel: Channel | None = None, calls: int = 2, **overrides: Any
) -> tuple[Campaign, list[Call]]:
    """A running campaign whose calls were all placed a while ago (state placed, status queued)."""
    if channel is None:
        channel = Channel(
            name=f"ch-{secrets.token_hex(3)}",
            account_sid="AC" + "1" * 32,
            from_number="+14155550100",
            auth_token_encrypted="x",
        )
        session.add(channel)
    recording = Recording(
        token=secrets.token_urlsafe(8), filename="m.mp3", extension="mp3",
        content_type="audio/mpeg", size_bytes=1, duration_seconds=1.0, sha256="0",
    )  # fmt: skip
    session.add(recording)
    session.flush()
    values: dict[str, Any] = {
        "name": "c",
        "channel_id": channel.id,
        "recording_id": recording.id,
        "scheduled_at": utcnow(),
        "status": CampaignStatus.RUNNING,
        "to_call": calls,
    }
    campaign = Campaign(**{**values, **overrides})
    session.add(campaign)
    session.flush()
    placed = utcnow() - timedelta(minutes=10)
    rows = [
        Call(
            campaign_id=campaign.id,
            row=index + 2,
            phone=f"+1415555{index:04d}",
            state=CallState.PLACED,
            sid="CA" + secrets.token_hex(16),
            status="queued",
            attempts=1,
            placed_at=placed,
        )  # fmt: skip
        for index in range(calls)
    ]
    session.add_all(rows)
    session.commit()
    return campaign, rows


def test_a_completed_call_is_done_with_its_details(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(
        session=session, sid=call.sid, status="completed", answered_by="human",
        duration="17", price="-0.01300", price_unit="USD",
    )  # fmt: skip
    session.commit()
    session.refresh(call)
    assert (call.state, call.status, call.answered_by) == ("done", "completed", "human")
    assert (call.duration_seconds, call.price, call.price_unit) == (17, -0.013, "USD")
    assert call.completed_at is not None


def test_a_late_ringing_never_overwrites_completed(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(session=session, sid=call.sid, status="completed", duration=5)
    outcomes.apply_call_status(session=session, sid=call.sid, status="ringing")
    outcomes.apply_call_status(session=session, sid=call.sid, status="in-progress")
    session.commit()
    session.refresh(call)
    assert (call.status, call.state, call.duration_seconds) == ("completed", "done", 5)


def test_a_final_status_sticks_against_another_final_one(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(session=session, sid=call.sid, status="busy")
    outcomes.apply_call_status(session=session, sid=call.sid, status="completed")
    session.commit()
    session.refresh(call)
    assert call.status == "busy"


def test_statuses_move_forward_through_the_call(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(session=session, sid=call.sid, status="ringing")
    assert (call.status, call.state) == ("ringing", "placed")
    outcomes.apply_call_status(session=session, sid=call.sid, status="in-progress")
    assert (call.status, call.state) == ("in-progress", "placed")


def test_a_later_report_of_the_same_status_fills_in_the_price(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(session=session, sid=call.sid, status="completed", duration=9)
    outcomes.apply_call_status(
        session=session, sid=call.sid, status="completed", price="-0.02", price_unit="USD"
    )
    session.commit()
    session.refresh(call)
    assert (call.duration_seconds, call.price, call.price_unit) == (9, -0.02, "USD")


def test_an_unknown_sid_is_ignored_quietly(session: Session) -> None:
    make_running_campaign(session)
    assert outcomes.apply_call_status(session=session, sid="CAnope", status="completed") is None


def test_a_failed_call_keeps_twilios_error(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(
        session=session, sid=call.sid, status="failed", error_code="13227",
        error_message="No International Permission",
    )  # fmt: skip
    assert (call.state, call.error_code, call.error_message) == (
        "done",
        13227,
        "No International Permission",
    )


def test_busy_is_retried_after_the_interval_while_attempts_remain(session: Session) -> None:
    _, (call, _) = make_running_campaign(session, retry_count=2, retry_interval_seconds=300)
    now = utcnow()
    outcomes.apply_call_status(session=session, sid=call.sid, status="busy", now=now)
    assert call.state == CallState.PENDING
    assert call.next_attempt_at == now + timedelta(seconds=300)
    assert call.completed_at is None and call.claim_token is None
    assert call.status is None  # the next attempt's statuses apply from scratch
    assert call.previous_status == "busy"  # History says why it is called again


def test_retry_count_two_allows_three_calls_in_all(session: Session) -> None:
    _, (call, _) = make_running_campaign(session, retry_count=2)
    states = []
    for attempt in (1, 2, 3):
        call.attempts, call.state, call.sid = attempt, CallState.PLACED, f"CA{attempt:032d}"
        call.status = "queued"
        session.commit()
        outcomes.apply_call_status(session=session, sid=call.sid, status="no-answer")
        states.append(call.state)
    assert states == ["pending", "pending", "done"]


def test_the_next_attempt_of_a_retried_call_is_recorded(session: Session) -> None:
    _, (call, _) = make_running_campaign(session, retry_count=1)
    outcomes.apply_call_status(session=session, sid=call.sid, status="no-answer")
    # The dispatcher places the retry: new SID, placed, status from Twilio if none is set.
    call.state, call.sid, call.attempts = CallState.PLACED, "CA" + "7" * 32, 2
    call.status = call.status or "queued"
    session.commit()
    outcomes.apply_call_status(session=session, sid=call.sid, status="completed", duration=8)
    assert (call.state, call.status, call.duration_seconds) == ("done", "completed", 8)


def test_late_callbacks_of_the_previous_attempt_change_a_redialing_call_nothing(
    session: Session,
) -> None:
    _, (call, _) = make_running_campaign(session, retry_count=1)
    old_sid = call.sid
    outcomes.apply_call_status(session=session, sid=old_sid, status="busy")
    call.state = CallState.DIALING  # claimed again; the new SID is not known yet
    session.commit()
    outcomes.apply_call_status(session=session, sid=old_sid, status="busy")
    outcomes.apply_answered_by(session=session, sid=old_sid, answered_by="human")
    assert (call.state, call.status, call.answered_by) == ("dialing", None, None)


def redialing(session: Session, call: Call, claim: str) -> Call:
    """`call` claimed again under `claim`: dialing, its new SID not known yet."""
    call.state, call.claim_token, call.attempts = CallState.DIALING, claim, call.attempts + 1
    call.status = None
    session.commit()
    return call


def test_a_callback_before_the_sid_is_known_records_it_and_settles_the_call(
    session: Session,
) -> None:
    campaign, (call,) = make_running_campaign(session, calls=1)
    redialing(session, call, "worker:1").sid = None
    session.commit()
    new_sid = "CA" + "5" * 32
    outcomes.apply_call_status(
        session=session, sid=new_sid, status="failed", call_id=call.id, claim="worker:1"
    )
    session.commit()
    assert (call.sid, call.state, call.status) == (new_sid, CallState.DONE, "failed")
    assert call.placed_at is not None
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.COMPLETED


def test_an_early_callback_replaces_the_previous_attempts_sid(session: Session) -> None:
    _, (call, _) = make_running_campaign(session, retry_count=1)
    redialing(session, call, "worker:2")
    new_sid = "CA" + "6" * 32
    outcomes.apply_call_status(
        session=session, sid=new_sid, status="ringing", call_id=call.id, claim="worker:2"
    )
    outcomes.apply_answered_by(
        session=session, sid=new_sid, answered_by="human", call_id=call.id, claim="worker:2"
    )
    assert (call.sid, call.state, call.status, call.answered_by) == (
        new_sid, CallState.PLACED, "ringing", "human",
    )  # fmt: skip


@pytest.mark.parametrize("old_sid", [True, False], ids=["old-sid", "unknown-sid"])
def test_a_callback_of_another_claim_changes_a_dialing_call_nothing(
    session: Session, old_sid: bool
) -> None:
    """A late callback of the previous attempt (its SID, or one given back unanswered) names
    an old claim: the call dialing under a new claim keeps waiting for its own."""
    _, (call, _) = make_running_campaign(session, retry_count=1)
    previous = call.sid
    redialing(session, call, "worker:new")
    sid = previous if old_sid else "CA" + "8" * 32
    outcomes.apply_call_status(
        session=session, sid=sid, status="completed", call_id=call.id, claim="worker:old"
    )
    session.commit()
    assert (call.sid, call.state, call.status) == (previous, CallState.DIALING, None)


def test_a_callback_naming_its_call_after_the_sid_is_recorded_applies_as_usual(
    session: Session,
) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(
        session=session, sid=call.sid, status="completed", call_id=call.id, claim="stale:1"
    )
    assert (call.state, call.status) == (CallState.DONE, "completed")


def test_apply_call_info_records_what_the_api_reported(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    info = telephony.CallInfo(
        sid=call.sid or "", to=call.phone, from_="+14155550100", status="completed",
        duration=9, price=-0.013, price_unit="USD",
    )  # fmt: skip
    outcomes.apply_call_info(session=session, info=info)
    assert (call.state, call.duration_seconds, call.price) == (CallState.DONE, 9, -0.013)


def test_without_retries_busy_is_final(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_call_status(session=session, sid=call.sid, status="busy")
    assert call.state == CallState.DONE


def test_completed_and_canceled_are_never_retried(session: Session) -> None:
    _, (first, second) = make_running_campaign(session, retry_count=3)
    outcomes.apply_call_status(session=session, sid=first.sid, status="completed")
    outcomes.apply_call_status(session=session, sid=second.sid, status="canceled")
    assert (first.state, second.state) == ("done", "done")


def test_a_stopped_campaign_gives_no_retry(session: Session) -> None:
    _, (call, _) = make_running_campaign(session, retry_count=3, status=CampaignStatus.STOPPED)
    outcomes.apply_call_status(session=session, sid=call.sid, status="failed")
    assert call.state == CallState.DONE


def test_a_duplicate_final_callback_after_a_retry_reset_changes_nothing(session: Session) -> None:
    _, (call, _) = make_running_campaign(session, retry_count=1)
    outcomes.apply_call_status(session=session, sid=call.sid, status="busy")
    due = call.next_attempt_at
    outcomes.apply_call_status(session=session, sid=call.sid, status="busy")
    assert (call.state, call.next_attempt_at) == ("pending", due)


def test_the_campaign_completes_with_its_last_final_status(session: Session) -> None:
    campaign, (first, second) = make_running_campaign(session)
    outcomes.apply_call_status(session=session, sid=first.sid, status="completed")
    session.commit()
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.RUNNING
    outcomes.apply_call_status(session=session, sid=second.sid, status="no-answer")
    session.commit()
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.COMPLETED and campaign.finished_at is not None


def test_a_pending_retry_keeps_the_campaign_running(session: Session) -> None:
    campaign, (first, second) = make_running_campaign(session, retry_count=1)
    outcomes.apply_call_status(session=session, sid=first.sid, status="completed")
    outcomes.apply_call_status(session=session, sid=second.sid, status="busy")
    session.commit()
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.RUNNING


@pytest.mark.parametrize("status", [CampaignStatus.PAUSED, CampaignStatus.STOPPED])
def test_only_a_running_campaign_is_completed(session: Session, status: str) -> None:
    campaign, calls = make_running_campaign(session, status=status)
    for call in calls:
        call.state = CallState.DONE
    session.commit()
    assert not outcomes.finish_campaign_if_done(session=session, campaign_id=campaign.id)
    session.refresh(campaign)
    assert campaign.status == status


def test_finish_reports_false_while_a_call_is_dialing(session: Session) -> None:
    campaign, (first, second) = make_running_campaign(session)
    first.state, second.state = CallState.DONE, CallState.DIALING
    session.commit()
    assert not outcomes.finish_campaign_if_done(session=session, campaign_id=campaign.id)


def test_answered_by_from_async_amd_is_recorded(session: Session) -> None:
    _, (call, _) = make_running_campaign(session)
    outcomes.apply_answered_by(session=session, sid=call.sid, answered_by="machine_end_beep")
    session.commit()
    session.refresh(call)
    assert call.answered_by == "machine_end_beep"
    assert outcomes.apply_answered_by(session=session, sid="CAnope", answered_by="human") is None


# -- poll_open_calls against the fake Twilio -------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(speed=0.02) as running:
        yield running


def twilio_campaign(
    session: Session,
    settings: Settings,
    fake: FakeTwilio,
    phones: list[str],
    callers: dict[str, str] | None = None,
) -> tuple[Campaign, list[Call]]:
    """A running campaign on a fake account whose calls were really placed, without callbacks
    (as if every callback was lost), and recorded as placed ten minutes ago. `callers` maps a
    phone to the number it is called from instead of the channel's (+14155550100)."""
    callers = callers or {}
    account = fake.add_account(numbers=("+14155550100", "+14155550111"))
    channel = Channel(
        name=f"ch-{secrets.token_hex(3)}", account_sid=account.sid, from_number="+14155550100",
        auth_token_encrypted=crypto.encrypt_secret(settings, account.token),
    )  # fmt: skip
    session.add(channel)
    session.flush()
    campaign, calls = make_running_campaign(session, channel=channel, calls=len(phones))
    client = channels.channel_client(channel, settings)
    twiml = telephony.play_twiml("https://example.com/m.mp3")
    for call, phone in zip(calls, phones, strict=True):
        caller = callers.get(phone, "+14155550100")
        info = telephony.place_call(
            client, to=phone, from_=caller, twiml=twiml, status_callback=None
        )
        call.phone, call.sid = phone, info.sid
    session.commit()
    assert fake.wait_idle(timeout=20)
    return campaign, calls


def call_requests(fake: FakeTwilio) -> tuple[int, int]:
    """(list requests, single-call fetches) the fake received."""
    gets = [r.path for r in fake.requests if r.method == "GET" and "/Calls" in r.path]
    lists = sum(path.endswith("/Calls.json") for path in gets)
    return lists, len(gets) - lists


def test_polling_settles_calls_whose_callbacks_were_lost(session, settings_factory, fake) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(twilio_api_base_url=fake.base_url)
    fake.outcome_for["+14155550102"] = Outcome(status="busy")
    campaign, calls = twilio_campaign(session, settings, fake, ["+14155550101", "+14155550102"])
    settled = outcomes.poll_open_calls(session=session, settings=settings)
    session.commit()
    assert settled == 2
    for call in calls:
        session.refresh(call)
    assert [(c.status, c.state) for c in calls] == [("completed", "done"), ("busy", "done")]
    assert calls[0].duration_seconds == 12 and calls[0].price is not None
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.COMPLETED
    assert call_requests(fake) == (1, 0)  # one listing beats two fetches


def test_polling_many_calls_lists_the_channel_once(session, settings_factory, fake) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(twilio_api_base_url=fake.base_url)
    phones = [f"+1415555{2000 + index}" for index in range(30)]
    _, calls = twilio_campaign(session, settings, fake, phones)
    settled = outcomes.poll_open_calls(session=session, settings=settings)
    session.commit()
    assert settled == len(phones)
    assert call_requests(fake) == (1, 0)
    assert {c.status for c in calls} == {"completed"}


def test_polling_leaves_recent_calls_alone(session, settings_factory, fake) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(twilio_api_base_url=fake.base_url)
    _, calls = twilio_campaign(session, settings, fake, ["+14155550101"])
    calls[0].placed_at = utcnow()
    session.commit()
    assert outcomes.poll_open_calls(session=session, settings=settings) == 0
    assert call_requests(fake) == (0, 0)
    session.refresh(calls[0])
    assert calls[0].state == CallState.PLACED


def test_polling_a_channel_twilio_refuses_is_skipped_not_raised(
    session, settings_factory, fake
) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(twilio_api_base_url=fake.base_url)
    _, calls = twilio_campaign(session, settings, fake, ["+14155550101"])
    fake.account(fake.calls[0].account_sid).token = "rotated"  # our stored token is now wrong
    assert outcomes.poll_open_calls(session=session, settings=settings) == 0
    session.refresh(calls[0])
    assert calls[0].state == CallState.PLACED


def test_a_call_missing_from_the_listing_is_fetched_by_itself(
    session, settings_factory, fake
) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(twilio_api_base_url=fake.base_url)
    phones = ["+14155550101", "+14155550102", "+14155550103"]
    _, calls = twilio_campaign(session, settings, fake, phones, {phones[2]: "+14155550111"})
    assert outcomes.poll_open_calls(session=session, settings=settings) == 3
    assert call_requests(fake) == (1, 1)


def test_a_busy_channel_fetches_its_few_open_calls_instead_of_listing(
    session, settings_factory, fake
) -> None:  # type: ignore[no-untyped-def]
    """Listing 2,500 calls (3 pages) to find 2 would cost more than 2 fetches."""
    settings = settings_factory(twilio_api_base_url=fake.base_url)
    campaign, calls = twilio_campaign(session, settings, fake, ["+14155550101", "+14155550102"])
    placed = utcnow() - timedelta(minutes=30)
    session.add_all(
        Call(campaign_id=campaign.id, row=10 + index, phone="+14155550199", state="done",
             status="completed", placed_at=placed)
        for index in range(2500)
    )  # fmt: skip
    session.commit()
    assert outcomes.poll_open_calls(session=session, settings=settings) == 2
    assert call_requests(fake) == (0, 2)
