"""Getting campaigns to a dispatcher: submit, the reconciler, calling windows.

Database on SQLite and PostgreSQL, a real Redis and a real RQ queue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import update
from sqlmodel import Session

from bulkcall_core import scheduling
from bulkcall_core.errors import SettingsError
from bulkcall_core.models import Call, CallState, Campaign, CampaignStatus, utcnow
from bulkcall_core.settings import Settings
from tests.factories import make_campaign


@pytest.fixture
def queue(redis_url: str) -> Queue:
    return Queue("bulkcall-test", connection=Redis.from_url(redis_url))


@pytest.fixture
def launch_settings(settings_factory, database_url: str, redis_url: str) -> Settings:  # type: ignore[no-untyped-def]
    """Settings with PUBLIC_BASE_URL, so that campaigns can be launched."""
    return settings_factory(
        database_url=database_url,
        redis_url=redis_url,
        public_base_url="https://calls.example.com",
    )


def _set(session: Session, campaign_id: int, **values: object) -> None:
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    session.commit()


def _set_calls(session: Session, campaign_id: int, **values: object) -> None:
    session.execute(update(Call).where(Call.campaign_id == campaign_id).values(**values))
    session.commit()


def _queued_campaigns(queue: Queue) -> list[int]:
    return [job.args[0] for job in queue.get_jobs()]


def test_a_scheduled_campaign_whose_time_came_is_due(session: Session) -> None:
    campaign = make_campaign(session)
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=60) == []
    later = campaign.scheduled_at + timedelta(seconds=1)
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=60, now=later) == [
        campaign.id
    ]


def test_a_campaign_held_by_a_live_lease_is_not_due(session: Session) -> None:
    campaign = make_campaign(session)
    now = campaign.scheduled_at + timedelta(seconds=1)
    _set(session, campaign.id, lease_owner="w1", lease_until=now + timedelta(seconds=5))
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=60, now=now) == []


def test_an_expired_lease_makes_the_campaign_due_again(session: Session) -> None:
    """A dispatcher that died leaves a lease that expires: the campaign is picked up again."""
    campaign = make_campaign(session)
    now = campaign.scheduled_at + timedelta(minutes=1)
    _set(
        session,
        campaign.id,
        status=CampaignStatus.RUNNING,
        lease_owner="dead",
        lease_until=now - timedelta(seconds=1),
    )
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=60, now=now) == [
        campaign.id
    ]


def test_a_running_campaign_with_only_future_retries_is_not_due(session: Session) -> None:
    campaign = make_campaign(session)
    now = campaign.scheduled_at + timedelta(minutes=1)
    _set(session, campaign.id, status=CampaignStatus.RUNNING)
    _set_calls(session, campaign.id, next_attempt_at=now + timedelta(minutes=5))
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=60, now=now) == []
    assert scheduling.due_campaign_ids(
        session=session, claim_timeout_seconds=60, now=now + timedelta(minutes=6)
    ) == [campaign.id]


def test_abandoned_dialing_claims_make_a_running_campaign_due(session: Session) -> None:
    """Calls left dialing by a killed worker wake a dispatcher once older than the timeout."""
    campaign = make_campaign(session)
    now = campaign.scheduled_at + timedelta(minutes=1)
    _set(session, campaign.id, status=CampaignStatus.RUNNING)
    _set_calls(
        session,
        campaign.id,
        state=CallState.DIALING,
        claim_token="dead:1",
        claimed_at=now - timedelta(seconds=30),
    )
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=60, now=now) == []
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=20, now=now) == [
        campaign.id
    ]


@pytest.mark.parametrize("status", ["paused", "canceled", "stopped", "completed"])
def test_campaigns_not_scheduled_or_running_are_never_due(session: Session, status: str) -> None:
    campaign = make_campaign(session)
    _set(session, campaign.id, status=status)
    later = campaign.scheduled_at + timedelta(minutes=1)
    assert scheduling.due_campaign_ids(session=session, claim_timeout_seconds=60, now=later) == []


def test_reconcile_enqueues_each_due_campaign_once(
    session: Session, queue: Queue, launch_settings: Settings
) -> None:
    """Many reconcilers (one per worker) keep at most one waiting job per campaign."""
    campaign = make_campaign(session)
    later = campaign.scheduled_at + timedelta(seconds=1)
    for _ in range(3):
        scheduling.reconcile(session=session, queue=queue, settings=launch_settings, now=later)
    assert _queued_campaigns(queue) == [campaign.id]


def test_reconcile_enqueues_again_once_the_job_started(
    session: Session, queue: Queue, launch_settings: Settings
) -> None:
    """After a job started (and, say, died), the campaign can be enqueued again."""
    campaign = make_campaign(session)
    later = campaign.scheduled_at + timedelta(seconds=1)
    scheduling.reconcile(session=session, queue=queue, settings=launch_settings, now=later)
    queue.empty()
    scheduling.job_started(queue.connection, campaign.id)
    assert scheduling.reconcile(
        session=session, queue=queue, settings=launch_settings, now=later
    ) == [campaign.id]


def test_a_redis_that_lost_everything_still_gets_the_campaign(
    session: Session, queue: Queue, launch_settings: Settings
) -> None:
    """FLUSHDB wipes the queue and the markers; the next reconcile enqueues from the database."""
    campaign = make_campaign(session)
    later = campaign.scheduled_at + timedelta(seconds=1)
    scheduling.reconcile(session=session, queue=queue, settings=launch_settings, now=later)
    queue.connection.flushdb()
    scheduling.reconcile(session=session, queue=queue, settings=launch_settings, now=later)
    assert _queued_campaigns(queue) == [campaign.id]


def test_submit_schedules_a_future_campaign_at_its_time(
    session: Session, queue: Queue, launch_settings: Settings
) -> None:
    campaign = make_campaign(session)
    assert scheduling.submit(campaign.id, session=session, settings=launch_settings, queue=queue)
    registry = ScheduledJobRegistry(queue=queue)
    [job_id] = registry.get_job_ids()
    when = registry.get_scheduled_time(job_id)
    assert abs((when - campaign.scheduled_at).total_seconds()) < 1
    assert queue.get_jobs() == []


def test_submit_enqueues_a_due_campaign_now(
    session: Session, queue: Queue, launch_settings: Settings
) -> None:
    campaign = make_campaign(session, scheduled_at=None)
    assert scheduling.submit(campaign.id, session=session, settings=launch_settings, queue=queue)
    assert _queued_campaigns(queue) == [campaign.id]


def test_submit_refuses_without_public_base_url(
    session: Session, queue: Queue, settings: Settings
) -> None:
    """Twilio must reach the audio and callbacks: launching without the address is refused."""
    campaign = make_campaign(session, scheduled_at=None)
    with pytest.raises(SettingsError, match="Set PUBLIC_BASE_URL"):
        scheduling.submit(campaign.id, session=session, settings=settings, queue=queue)
    assert queue.get_jobs() == []


def test_submit_ignores_a_canceled_campaign(
    session: Session, queue: Queue, launch_settings: Settings
) -> None:
    campaign = make_campaign(session, scheduled_at=None)
    _set(session, campaign.id, status=CampaignStatus.CANCELED)
    assert not scheduling.submit(
        campaign.id, session=session, settings=launch_settings, queue=queue
    )
    assert queue.get_jobs() == []


def test_next_scheduled_at_is_the_earliest_future_time(session: Session) -> None:
    first = make_campaign(session, scheduled_at=utcnow() + timedelta(minutes=5))
    make_campaign(session, scheduled_at=utcnow() + timedelta(minutes=9))
    assert scheduling.next_scheduled_at(session=session) == first.scheduled_at


# ---------------------------------------------------------------------- calling windows

NEW_YORK = "+12125550123"  # America/New_York
LONDON = "+442071234567"  # Europe/London


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_inside_the_window_the_call_may_go_now() -> None:
    now = _at("2026-06-01T14:00:00+00:00")  # 10:00 in New York
    assert scheduling.window_opening(NEW_YORK, "08:00", "21:00", now=now) is None


def test_before_the_window_the_call_waits_for_todays_opening() -> None:
    now = _at("2026-06-01T10:00:00+00:00")  # 06:00 in New York
    opening = scheduling.window_opening(NEW_YORK, "08:00", "21:00", now=now)
    assert opening == _at("2026-06-01T08:00:00-04:00")


def test_after_the_window_the_call_waits_for_tomorrow() -> None:
    now = _at("2026-06-02T02:00:00+00:00")  # 22:00 on June 1st in New York
    opening = scheduling.window_opening(NEW_YORK, "08:00", "21:00", now=now)
    assert opening == _at("2026-06-02T08:00:00-04:00")


def test_the_window_end_is_exclusive() -> None:
    now = _at("2026-06-01T20:00:00+00:00")  # 21:00 in London (BST)
    assert scheduling.window_opening(LONDON, "08:00", "21:00", now=now) is not None


def test_the_recipients_zone_decides_not_the_servers() -> None:
    """14:00 UTC is 10:00 in New York (inside 08-12) but 15:00 in London (outside)."""
    now = _at("2026-06-01T14:00:00+00:00")
    assert scheduling.window_opening(NEW_YORK, "08:00", "12:00", now=now) is None
    assert scheduling.window_opening(LONDON, "08:00", "12:00", now=now) is not None


def test_a_window_across_midnight() -> None:
    late = _at("2026-06-01T23:30:00+00:00")
    early = _at("2026-06-02T01:30:00+00:00")
    midday = _at("2026-06-02T12:00:00+00:00")
    number = "+35312345678"  # Europe/Dublin (UTC+1 in June)
    assert scheduling.window_opening(number, "22:00", "03:00", now=late) is None
    assert scheduling.window_opening(number, "22:00", "03:00", now=early) is None
    assert scheduling.window_opening(number, "22:00", "03:00", now=midday) == _at(
        "2026-06-02T22:00:00+01:00"
    )


def test_a_number_without_a_known_zone_uses_the_campaign_zone() -> None:
    now = _at("2026-06-01T14:00:00+00:00")
    unknown = "+80012345678"  # international freephone: no zone
    assert (
        scheduling.window_opening(unknown, "08:00", "12:00", now=now, default_zone="Asia/Tokyo")
        is not None
    )
    assert (
        scheduling.window_opening(
            unknown, "08:00", "12:00", now=now, default_zone="America/New_York"
        )
        is None
    )
