"""The dispatcher, run in this process against the fake Twilio over HTTP, a real Redis and
SQLite + PostgreSQL: every call once, Twilio's errors, ambiguous failures, control, DNC,
calling windows, the test call.

Multi-process behaviour (SIGKILL, three workers, Redis restarts) is in
test_worker_exactly_once.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from redis import Redis
from sqlalchemy import Engine, select, update
from sqlmodel import Session

from bulkcall_core import campaigns, channels, crypto, dispatch, scheduling, telephony, webhooks
from bulkcall_core.database import new_session
from bulkcall_core.errors import CampaignError
from bulkcall_core.models import (
    Call,
    CallState,
    Campaign,
    CampaignStatus,
    Channel,
    DoNotCall,
    utcnow,
)
from bulkcall_core.queueing import get_queue
from bulkcall_core.settings import Settings
from tests.factories import make_campaign, make_channel, make_recording
from tests.fake_twilio import FakeTwilio, Outcome
from tests.ports import free_port
from tests.test_pacing import LogCollector, max_in_window

FROM = "+14155550100"
OTHER_FROM = "+14155550101"  # a second number (channel) of the same account
PUBLIC = "https://calls.example.com"


def numbers(count: int, start: int = 0) -> list[str]:
    """`count` distinct valid US numbers."""
    return [f"+1212555{index:04d}" for index in range(start, start + count)]


@dataclass
class World:
    """Everything a dispatch test needs: fake Twilio, settings, database, Redis, a channel."""

    fake: FakeTwilio
    settings: Settings
    engine: Engine
    redis: Redis
    channel_id: int
    recording_id: int
    account_sid: str = ""  # the channel's Twilio account: the pacing key

    def campaign(self, phones: list[str], **overrides: object) -> int:
        with new_session(self.engine) as session:
            values: dict[str, object] = {
                "channel_id": self.channel_id,
                "recording_id": self.recording_id,
                "scheduled_at": None,
            }
            values.update(overrides)
            campaign = make_campaign(session, phones, **values)
            session.commit()
            return int(campaign.id)  # type: ignore[arg-type]

    def dispatch(self, campaign_id: int, stop: threading.Event | None = None) -> str:
        return dispatch.dispatch_campaign(
            campaign_id,
            engine=self.engine,
            redis=self.redis,
            settings=self.settings,
            stop_event=stop,
        )

    def run_to_end(self, campaign_id: int, rounds: int = 10) -> None:
        """Dispatch until nothing is left to claim (retries and lookups included)."""
        for _ in range(rounds):
            self.dispatch(campaign_id)
            if not self.calls(campaign_id, state=CallState.PENDING) and not self.calls(
                campaign_id, state=CallState.DIALING
            ):
                return
            time.sleep(0.5)

    def calls(self, campaign_id: int, state: CallState | None = None) -> list[Call]:
        with new_session(self.engine) as session:
            query = select(Call).where(Call.campaign_id == campaign_id).order_by(Call.id)
            if state is not None:
                query = query.where(Call.state == state.value)
            return list(session.execute(query).scalars())

    def get(self, campaign_id: int) -> Campaign:
        with new_session(self.engine) as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            return campaign


def build_world(
    fake: FakeTwilio,
    settings: Settings,
    engine: Engine,
    redis_url: str,
    *,
    cps: float = 50,
) -> World:
    """A channel on a fresh fake account, and a recording, in `engine`'s database."""
    account = fake.add_account(numbers=(FROM,))
    with new_session(engine) as session:
        channel = make_channel(
            session,
            account_sid=account.sid,
            from_number=FROM,
            auth_token_encrypted=crypto.encrypt_secret(settings, account.token),
            calls_per_second=cps,
        )
        recording = make_recording(session)
        channel_id, recording_id = int(channel.id), int(recording.id)  # type: ignore[arg-type]
    redis = Redis.from_url(redis_url)
    return World(fake, settings, engine, redis, channel_id, recording_id, account.sid)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def engine_settings(settings_factory, database_url: str, redis_url: str, fake: FakeTwilio):  # type: ignore[no-untyped-def]
    """Settings on this test's database, Redis and fake Twilio; short timeouts."""
    return settings_factory(
        database_url=database_url,
        redis_url=redis_url,
        twilio_api_base_url=fake.base_url,
        public_base_url=PUBLIC,
        twilio_timeout_seconds=1.0,
        claim_timeout_seconds=3.0,
    )


@pytest.fixture
def world(fake: FakeTwilio, engine_settings: Settings, engine: Engine, redis_url: str) -> World:
    return build_world(fake, engine_settings, engine, redis_url)


def assert_called_once_each(fake: FakeTwilio, phones: list[str]) -> None:
    counts = {phone: len(fake.calls_to(phone)) for phone in phones}
    assert counts == dict.fromkeys(phones, 1)


# ---------------------------------------------------------------------- the happy path


def test_every_pending_call_is_placed_once_and_recorded(world: World) -> None:
    phones = numbers(12)
    campaign_id = world.campaign(phones)
    assert world.dispatch(campaign_id) == "idle"
    assert_called_once_each(world.fake, phones)
    calls = world.calls(campaign_id)
    assert {call.state for call in calls} == {CallState.PLACED}
    assert {call.sid for call in calls} == {fake_call.sid for fake_call in world.fake.calls}
    assert all(call.attempts == 1 and call.placed_at for call in calls)
    assert world.fake.violations == []


def test_the_campaign_becomes_running_and_its_lease_is_released(world: World) -> None:
    campaign_id = world.campaign(numbers(2))
    world.dispatch(campaign_id)
    campaign = world.get(campaign_id)
    assert campaign.status == CampaignStatus.RUNNING
    assert campaign.started_at is not None
    assert campaign.lease_owner is None


def test_a_campaign_not_yet_due_is_not_dispatched(world: World) -> None:
    campaign_id = world.campaign(numbers(2), scheduled_at=utcnow() + timedelta(hours=1))
    assert world.dispatch(campaign_id) == "not-runnable"
    assert world.fake.calls == []
    assert world.get(campaign_id).status == CampaignStatus.SCHEDULED


def test_a_second_dispatcher_leaves_a_held_campaign_alone(world: World) -> None:
    campaign_id = world.campaign(numbers(2))
    with new_session(world.engine) as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(lease_owner="other", lease_until=utcnow() + timedelta(seconds=30))
        )
        session.commit()
    assert world.dispatch(campaign_id) == "not-runnable"
    assert world.fake.calls == []


def test_the_call_plays_the_recording_and_reports_every_status(world: World) -> None:
    """The callback URL names the call and its claim, so early callbacks find it."""
    campaign_id = world.campaign(numbers(1))
    world.dispatch(campaign_id)
    [call] = world.fake.calls
    [row] = world.calls(campaign_id)
    assert "<Play>" in call.param("Twiml") and PUBLIC in call.param("Twiml")
    assert call.param("StatusCallback") == webhooks.callback_url_for_call(
        f"{PUBLIC}/twilio/status", call_id=int(row.id or 0), claim=row.claim_token or ""
    )
    assert call.param("From") == FROM


def test_without_full_voicemail_machine_detection_is_asynchronous(world: World) -> None:
    """A person hears the message at once; AnsweredBy still arrives, asynchronously."""
    campaign_id = world.campaign(numbers(1))
    world.dispatch(campaign_id)
    [call] = world.fake.calls
    [row] = world.calls(campaign_id)
    assert call.param("MachineDetection") == "Enable"
    assert call.param("AsyncAmd") == "true"
    assert call.param("AsyncAmdStatusCallback") == webhooks.callback_url_for_call(
        f"{PUBLIC}/twilio/amd", call_id=int(row.id or 0), claim=row.claim_token or ""
    )


def test_full_voicemail_message_waits_for_the_beep(world: World) -> None:
    world.dispatch(world.campaign(numbers(1), voicemail_full_message=True))
    [call] = world.fake.calls
    assert call.param("MachineDetection") == "DetectMessageEnd"
    assert not call.param("AsyncAmd")


# ---------------------------------------------------------------------- Twilio's errors


FAULTS = {
    "500 and 503 are retried": lambda fake: (
        fake.fail_next(2, status=500),
        fake.fail_next(1, status=503),
    ),
    "429 / 20429 is retried": lambda fake: fake.fail_next(3, status=429, code=20429),
    "a hang that made no call is called again": lambda fake: fake.hang_next(
        1, create=False, seconds=3
    ),
    "a dropped connection after creating is adopted": lambda fake: fake.drop_next(1, create=True),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_twilio_faults_end_with_each_number_called_once(world: World, fault) -> None:  # type: ignore[no-untyped-def]
    """Not processed (retried with backoff) or ambiguous (looked up before any retry): in the
    end each number is called exactly once and the failed tries are not counted."""
    phones = numbers(4)
    fault(world.fake)
    campaign_id = world.campaign(phones)
    world.run_to_end(campaign_id)
    assert_called_once_each(world.fake, phones)
    assert all(call.attempts == 1 for call in world.calls(campaign_id))


def test_twilio_rate_limiting_below_the_channels_rate_is_survived(
    fake: FakeTwilio, engine_settings: Settings, engine: Engine, redis_url: str
) -> None:
    """The account allows 3 CPS but the channel says 10: Twilio answers 429, the calls are
    retried with backoff, and each number is still called once."""
    world = build_world(fake, engine_settings, engine, redis_url, cps=10)
    fake.max_cps = 3
    phones = numbers(12)
    campaign_id = world.campaign(phones)
    world.run_to_end(campaign_id, rounds=30)
    assert any(request.status == 429 for request in fake.requests)
    assert_called_once_each(fake, phones)


def test_two_channels_of_one_account_share_its_rate(
    fake: FakeTwilio, engine_settings: Settings, engine: Engine, redis_url: str, caplog
) -> None:  # type: ignore[no-untyped-def]
    """Twilio limits the account, not the number: campaigns on two channels of one account
    (5 and 10 CPS: both get the smaller, and the log says so) never leave more than 5 calls
    in a 1-second window together (the limiter's record, on Redis' clock), nor reach the fake
    faster once 0.25 s of arrival jitter is allowed."""
    account = fake.add_account(numbers=(FROM, OTHER_FROM))
    token = crypto.encrypt_secret(engine_settings, account.token)
    redis = Redis.from_url(redis_url)
    worlds = []
    with new_session(engine) as session:
        recording_id = int(make_recording(session).id)  # type: ignore[arg-type]
        for number, cps in ((FROM, 5), (OTHER_FROM, 10)):
            channel = make_channel(
                session, account_sid=account.sid, from_number=number,
                auth_token_encrypted=token, calls_per_second=cps,
            )  # fmt: skip
            channel_id = int(channel.id)  # type: ignore[arg-type]
            worlds.append(
                World(fake, engine_settings, engine, redis, channel_id, recording_id, account.sid)
            )
    batches = [numbers(10), numbers(10, 100)]
    campaign_ids = [world.campaign(batch) for world, batch in zip(worlds, batches, strict=True)]
    with caplog.at_level("WARNING"), LogCollector(redis, account.sid) as departures:
        pairs = zip(worlds, campaign_ids, strict=True)
        threads = [_dispatch_in_thread(world, campaign_id) for world, campaign_id in pairs]
        for thread in threads:
            thread.join(timeout=60)
    phones = batches[0] + batches[1]
    assert_called_once_each(fake, phones)
    assert len(departures.times()) == len(phones)
    assert max_in_window(departures.times(), 1.0) <= 5
    arrivals = sorted(fake.create_times)
    assert max_in_window(arrivals, 1.0 - 0.25) <= 5
    assert "share the smallest, 5" in caplog.text


def test_a_refused_call_fails_with_twilios_code_and_message(world: World) -> None:
    phones = numbers(3)
    world.fake.fail_numbers[phones[1]] = (400, 21215, "Geo permission not enabled")
    campaign_id = world.campaign(phones)
    world.dispatch(campaign_id)
    refused = world.calls(campaign_id)[1]
    assert refused.state == CallState.DONE
    assert refused.status == "failed"
    assert refused.error_code == 21215
    assert "Geo permission" in (refused.error_message or "")
    assert [call.state for call in world.calls(campaign_id)].count(CallState.PLACED) == 2


def test_refused_credentials_pause_the_campaign_with_the_reason(world: World) -> None:
    world.fake.fail_next(1, status=401, code=20003, message="Authenticate")
    campaign_id = world.campaign(numbers(3))
    world.dispatch(campaign_id)
    campaign = world.get(campaign_id)
    assert campaign.status == CampaignStatus.PAUSED
    assert "credentials" in (campaign.last_error or "")
    assert not world.calls(campaign_id, state=CallState.DIALING)


# ---------------------------------------------------------------------- ambiguous failures


def test_a_hung_create_that_made_the_call_is_adopted_not_repeated(world: World) -> None:
    """Twilio made the call but never answered: found in the list, adopted, not called again."""
    phones = numbers(2)
    world.fake.hang_next(1, create=True, seconds=3)
    campaign_id = world.campaign(phones)
    world.run_to_end(campaign_id)
    assert_called_once_each(world.fake, phones)
    by_phone = {call.phone: call for call in world.calls(campaign_id)}
    for phone in phones:
        assert by_phone[phone].state in (CallState.PLACED, CallState.DONE)
        assert by_phone[phone].sid == world.fake.calls_to(phone)[0].sid


def test_abandoned_claims_are_looked_up_before_anything_else(world: World) -> None:
    """A dead worker left two calls dialing: one reached Twilio and has ended since (adopted
    and settled with its final status), one did not (called once now)."""
    reached, lost = numbers(2)
    campaign_id = world.campaign([reached, lost])
    with new_session(world.engine) as session:
        channel_client = _client(world, session)
    telephony.place_call(
        channel_client, to=reached, from_=FROM, twiml="<Response/>", status_callback=None
    )
    old = utcnow() - timedelta(seconds=10)
    with new_session(world.engine) as session:
        session.execute(
            update(Call)
            .where(Call.campaign_id == campaign_id)
            .values(state=CallState.DIALING, claim_token="dead:1", claimed_at=old, attempts=1)
        )
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(status=CampaignStatus.RUNNING, started_at=old)
        )
        session.commit()
    assert world.fake.wait_idle()  # the reached call ended while nobody knew its SID
    world.run_to_end(campaign_id)
    assert_called_once_each(world.fake, [reached, lost])
    found, called = world.calls(campaign_id)
    assert (found.state, found.status) == (CallState.DONE, "completed")
    assert called.state == CallState.PLACED


# ---------------------------------------------------------------------- callbacks first


def serve_hooks(  # type: ignore[no-untyped-def]
    settings_factory, *, database_url: str, redis_url: str, fake: FakeTwilio, **extra: object
) -> tuple[Settings, webhooks.BackgroundServer]:
    """Settings whose PUBLIC_BASE_URL is a real web hooks server, started on a free port."""
    port = free_port()
    settings = settings_factory(
        database_url=database_url,
        redis_url=redis_url,
        twilio_api_base_url=fake.base_url,
        public_base_url=f"http://127.0.0.1:{port}",
        webhook_port=port,
        **extra,
    )
    return settings, webhooks.serve_in_background(settings, port=port)


@pytest.fixture
def live_world(  # type: ignore[no-untyped-def]
    fake: FakeTwilio, settings_factory, database_url: str, redis_url: str, engine: Engine
) -> Iterator[World]:
    """A world whose callbacks reach a real web hooks server, and a fake whose callbacks all
    arrive before its answer to the create (Twilio's worst race)."""
    settings, server = serve_hooks(
        settings_factory,
        database_url=database_url,
        redis_url=redis_url,
        fake=fake,
        twilio_timeout_seconds=5.0,
        claim_timeout_seconds=10.0,
    )
    fake.callback_before_response = True
    try:
        yield build_world(fake, settings, engine, redis_url)
    finally:
        server.stop()


def test_callbacks_that_overtake_the_create_answer_settle_their_calls(live_world: World) -> None:
    """Each call's callbacks (a failed call's only one included) arrive before Twilio's
    answer to its create: they record the SID and status; the dispatcher's later write
    changes nothing, so each call is done with its final status, no poll needed."""
    fake = live_world.fake
    phones = numbers(6)
    fake.outcome_for[phones[0]] = Outcome(status="failed")
    fake.outcome_for[phones[1]] = Outcome(status="busy")
    campaign_id = live_world.campaign(phones)
    live_world.dispatch(campaign_id)
    calls = live_world.calls(campaign_id)
    assert [(call.state, call.status) for call in calls] == [
        (CallState.DONE, "failed"),
        (CallState.DONE, "busy"),
    ] + [(CallState.DONE, "completed")] * 4
    assert [call.sid for call in calls] == [fake.calls_to(phone)[0].sid for phone in phones]
    assert live_world.get(campaign_id).status == CampaignStatus.COMPLETED
    assert {callback.status_code for callback in fake.callbacks} == {204}
    assert_called_once_each(fake, phones)


def test_a_retry_overtaken_by_callbacks_ignores_the_first_attempts_late_ones(
    live_world: World,
) -> None:
    """A failed call retried at once, both attempts settled by early callbacks; replaying
    the first attempt's final callback afterwards changes nothing on the second."""
    fake = live_world.fake
    phone = numbers(1)[0]
    fake.outcome_for[phone] = Outcome(status="failed")
    campaign_id = live_world.campaign([phone], retry_count=1)
    with new_session(live_world.engine) as session:  # retry at once (below the UI's minimum)
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(retry_interval_seconds=0)
        )
        session.commit()
    live_world.run_to_end(campaign_id)
    first, second = fake.calls_to(phone)
    (call,) = live_world.calls(campaign_id)
    assert (call.state, call.status, call.sid, call.attempts) == (
        CallState.DONE,
        "failed",
        second.sid,
        2,
    )
    late = [cb for cb in fake.callbacks if cb.call_sid == first.sid and cb.event == "completed"]
    replayed = requests.post(
        late[0].url,
        data=late[0].params,
        headers={"X-Twilio-Signature": late[0].signature},
        timeout=5,
    )
    assert replayed.status_code == 204
    (after,) = live_world.calls(campaign_id)
    assert (after.sid, after.status, after.updated_at) == (second.sid, "failed", call.updated_at)


def _client(world: World, session: Session):  # type: ignore[no-untyped-def]
    """The Twilio client of the world's channel, to make calls behind the dispatcher's back."""
    channel = session.get(Channel, world.channel_id)
    return channels.channel_client(channel, world.settings)


# ---------------------------------------------------------------------- who is called


def test_do_not_call_numbers_are_skipped_and_reported(world: World) -> None:
    """A number added to the do-not-call list after planning is still never called."""
    phones = numbers(3)
    campaign_id = world.campaign(phones)
    with new_session(world.engine) as session:
        session.add(DoNotCall(phone=phones[0]))
        session.commit()
    world.dispatch(campaign_id)
    assert world.fake.calls_to(phones[0]) == []
    skipped = world.calls(campaign_id)[0]
    assert skipped.state == CallState.SKIPPED
    assert skipped.skip_reason == dispatch.DO_NOT_CALL_REASON
    assert skipped.attempts == 0


def test_calls_outside_the_window_wait_for_its_opening(world: World) -> None:
    """With a window that is closed now, nothing is called; each call waits for the opening."""
    now = utcnow().astimezone(ZoneInfo("America/New_York"))
    closed_start = (now + timedelta(hours=2)).strftime("%H:%M")
    closed_end = (now + timedelta(hours=3)).strftime("%H:%M")
    phones = numbers(2)
    campaign_id = world.campaign(phones, window_start=closed_start, window_end=closed_end)
    assert world.dispatch(campaign_id) == "idle"
    assert world.fake.calls == []
    for call in world.calls(campaign_id):
        assert call.state == CallState.PENDING
        assert call.attempts == 0
        assert call.next_attempt_at is not None
        wait = (call.next_attempt_at - utcnow()).total_seconds()
        assert 3600 < wait <= 2 * 3600 + 60


def test_without_public_base_url_nothing_is_called_and_the_reason_is_kept(
    world: World, settings_factory, database_url: str, redis_url: str
) -> None:  # type: ignore[no-untyped-def]
    world.settings = settings_factory(
        database_url=database_url, redis_url=redis_url, twilio_api_base_url=world.fake.base_url
    )
    campaign_id = world.campaign(numbers(2))
    assert world.dispatch(campaign_id) == "misconfigured"
    assert world.fake.calls == []
    campaign = world.get(campaign_id)
    assert campaign.status == CampaignStatus.PAUSED
    assert "PUBLIC_BASE_URL" in (campaign.last_error or "")


# ---------------------------------------------------------------------- control


# ---------------------------------------------------------------------- turns


def test_a_campaign_hands_back_its_turn_when_another_waits(
    fake: FakeTwilio, engine_settings: Settings, engine: Engine, redis_url: str
) -> None:
    """Past its fair share, a dispatcher whose worker another campaign waits for (a job in
    the queue) returns "time-slice" with calls left, lease released, for the next turn."""
    world = build_world(fake, engine_settings, engine, redis_url, cps=4)
    running = world.campaign(numbers(40))
    waiting = world.campaign(numbers(2, 100))
    queue = get_queue(world.settings, connection=world.redis)
    assert scheduling.enqueue_dispatch(queue, waiting)
    outcome = dispatch.dispatch_campaign(
        running, engine=engine, redis=world.redis, settings=world.settings,
        fair_share_seconds=3.0,
    )  # fmt: skip
    assert outcome == "time-slice"
    assert 0 < len(fake.calls) < 40
    assert world.calls(running, state=CallState.PENDING)
    assert world.get(running).lease_owner is None


def test_with_nobody_waiting_a_campaign_keeps_its_worker_past_the_fair_share(
    world: World,
) -> None:
    phones = numbers(8)
    campaign_id = world.campaign(phones)
    outcome = dispatch.dispatch_campaign(
        campaign_id, engine=world.engine, redis=world.redis, settings=world.settings,
        fair_share_seconds=0.0,
    )  # fmt: skip
    assert outcome == "idle"
    assert_called_once_each(world.fake, phones)


def _dispatch_in_thread(world: World, campaign_id: int) -> threading.Thread:
    thread = threading.Thread(target=world.dispatch, args=(campaign_id,), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("action", ["pause", "stop"])
def test_pause_and_stop_place_nothing_after_two_seconds(
    fake: FakeTwilio, engine_settings: Settings, engine: Engine, redis_url: str, action: str
) -> None:
    """While dispatch waits on a 2 CPS limit: no create later than 2 s after the action."""
    world = build_world(fake, engine_settings, engine, redis_url, cps=2)
    phones = numbers(20)
    campaign_id = world.campaign(phones)
    thread = _dispatch_in_thread(world, campaign_id)
    assert fake.wait_for(lambda: len(fake.calls) >= 3, timeout=20)
    with new_session(engine) as session:
        getattr(campaigns, f"{action}_campaign")(session=session, campaign_id=campaign_id)
        session.commit()
    acted = time.time()
    thread.join(30)
    assert not thread.is_alive()
    time.sleep(1.0)
    assert max(fake.create_times) <= acted + 2.0
    assert len(fake.calls) < len(phones)
    states = {call.state for call in world.calls(campaign_id)}
    assert CallState.DIALING not in states
    expected = CallState.PENDING if action == "pause" else CallState.SKIPPED
    assert expected in states


def test_a_resumed_campaign_calls_the_rest_once(
    fake: FakeTwilio, engine_settings: Settings, engine: Engine, redis_url: str
) -> None:
    world = build_world(fake, engine_settings, engine, redis_url, cps=4)
    phones = numbers(10)
    campaign_id = world.campaign(phones)
    thread = _dispatch_in_thread(world, campaign_id)
    assert fake.wait_for(lambda: len(fake.calls) >= 2, timeout=20)
    with new_session(engine) as session:
        campaigns.pause_campaign(session=session, campaign_id=campaign_id)
        session.commit()
    thread.join(30)
    with new_session(engine) as session:
        campaigns.resume_campaign(session=session, campaign_id=campaign_id)
        session.commit()
    world.run_to_end(campaign_id)
    assert_called_once_each(fake, phones)


def test_shutdown_gives_back_unsent_claims(
    fake: FakeTwilio, engine_settings: Settings, engine: Engine, redis_url: str
) -> None:
    """The worker's SIGTERM (the stop event): in-flight calls recorded, the rest pending."""
    world = build_world(fake, engine_settings, engine, redis_url, cps=2)
    campaign_id = world.campaign(numbers(10))
    stop = threading.Event()
    thread = threading.Thread(target=world.dispatch, args=(campaign_id, stop), daemon=True)
    thread.start()
    assert fake.wait_for(lambda: len(fake.calls) >= 2, timeout=20)
    stop.set()
    thread.join(30)
    calls = world.calls(campaign_id)
    placed = [call for call in calls if call.state == CallState.PLACED]
    assert len(placed) == len(fake.calls)
    assert all(call.state in (CallState.PLACED, CallState.PENDING) for call in calls)
    assert world.get(campaign_id).lease_owner is None


# ---------------------------------------------------------------------- the test call


def test_a_test_call_uses_the_campaigns_recording_and_options(world: World) -> None:
    with new_session(world.engine) as session:
        info = dispatch.place_test_call(
            session=session,
            settings=world.settings,
            channel_id=world.channel_id,
            recording_id=world.recording_id,
            to="(212) 555-0199",
            voicemail_full_message=True,
            redis=world.redis,
        )
    [call] = world.fake.calls
    assert info.sid == call.sid
    assert call.to == "+12125550199"
    assert call.param("MachineDetection") == "DetectMessageEnd"


def test_a_test_call_to_a_bad_number_is_refused_clearly(world: World) -> None:
    with new_session(world.engine) as session, pytest.raises(CampaignError, match="12345"):
        dispatch.place_test_call(
            session=session,
            settings=world.settings,
            channel_id=world.channel_id,
            recording_id=world.recording_id,
            to="12345",
            redis=world.redis,
        )
    assert world.fake.calls == []


@pytest.mark.parametrize(
    ("status", "expected_state"),
    [(CampaignStatus.STOPPED, CallState.SKIPPED), (CampaignStatus.PAUSED, CallState.PENDING)],
)
def test_abandoned_claims_of_an_idle_campaign_are_settled(
    world: World, status: CampaignStatus, expected_state: CallState
) -> None:
    """A worker died, then the campaign was stopped or paused: no dispatcher runs it, yet its
    dialing calls are looked up (found: placed) or given back (stopped: skipped; paused:
    pending), never left dialing."""
    reached, lost = numbers(2)
    campaign_id = world.campaign([reached, lost])
    with new_session(world.engine) as session:
        placed = telephony.place_call(
            _client(world, session),
            to=reached,
            from_=FROM,
            twiml="<Response/>",
            status_callback=None,
        )
        old = utcnow() - timedelta(seconds=10)
        session.execute(
            update(Call)
            .where(Call.campaign_id == campaign_id)
            .values(state=CallState.DIALING, claim_token="dead:1", claimed_at=old, attempts=1)
        )
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=status))
        session.commit()
        assert dispatch.resolve_abandoned_claims(session=session, settings=world.settings) == 2
        session.commit()
    by_phone = {call.phone: call for call in world.calls(campaign_id)}
    assert (by_phone[reached].state, by_phone[reached].sid) == (CallState.PLACED, placed.sid)
    assert by_phone[lost].state == expected_state
    assert by_phone[lost].attempts == 0
    assert len(world.fake.calls_to(lost)) == 0
