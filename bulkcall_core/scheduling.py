"""Getting campaigns to a dispatcher at their time, even when Redis or the workers failed.

The database is the source of truth and Redis is transport:
- `submit(campaign_id)` hands a campaign to RQ: enqueued now when due, else with `enqueue_at`
  at its time (the worker runs RQ's scheduler). That is the fast path.
- `reconcile()` runs about every second in every worker (see `worker.py`) and enqueues a
  dispatcher for every campaign the database says is due and nobody holds: status scheduled
  with its time reached, or running with calls due (pending and `next_attempt_at` reached, or
  `dialing` claims older than the claim timeout left by a dead worker) and no live lease. So a
  Redis that lost every job, a scheduler that died, or no worker at the time all end the same
  way: the campaign runs once a worker is up.

Enqueueing twice is harmless (a dispatcher that cannot take the campaign's lease returns), but
the queue should not fill with copies while every worker is busy: a short-lived Redis marker
per campaign (`SET NX`, cleared by the job when it starts) keeps at most one waiting job per
campaign. If Redis loses the marker along with the queue, the next reconcile enqueues again.

Validating a campaign's time lives in `campaigns.check_schedule` (one copy of the rule).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis import Redis
from rq import Queue
from sqlalchemy import and_, exists, or_, select
from sqlmodel import Session

from bulkcall_core import phones
from bulkcall_core.audio import public_base_url
from bulkcall_core.models import Call, CallState, Campaign, CampaignStatus, utcnow
from bulkcall_core.queueing import get_queue
from bulkcall_core.settings import Settings

# How long the "a job for this campaign is waiting" marker lives if no worker picks the job up:
# after that a reconcile enqueues another (harmless) copy, so a lost job costs at most this.
QUEUED_MARKER_SECONDS = 60
# A dispatcher job may run this long; it ends its own run well before (dispatch.MAX_RUN_SECONDS).
JOB_TIMEOUT_SECONDS = 3600
# Keep a failed job's record this long for `rq info`; short, so stale ids never pile up.
FAILURE_TTL_SECONDS = 24 * 3600
MARKER_PREFIX = "bulkcall:dispatch-queued"


def marker_key(campaign_id: int) -> str:
    return f"{MARKER_PREFIX}:{campaign_id}"


def enqueue_dispatch(queue: Queue, campaign_id: int, *, at: datetime | None = None) -> bool:
    """Enqueue `dispatch.run_campaign(campaign_id)` now, or at `at` (aware) when given.

    Returns False (and enqueues nothing) when a job for the campaign is already waiting.
    """
    redis: Redis = queue.connection
    job_id = f"bulkcall-dispatch-{campaign_id}-{secrets.token_hex(4)}"
    options = {
        "job_id": job_id,
        "job_timeout": JOB_TIMEOUT_SECONDS,
        "result_ttl": 0,
        "failure_ttl": FAILURE_TTL_SECONDS,
    }
    if at is not None and at > utcnow():
        queue.enqueue_at(at, "bulkcall_core.dispatch.run_campaign", campaign_id, **options)
        return True
    if not redis.set(marker_key(campaign_id), job_id, nx=True, ex=QUEUED_MARKER_SECONDS):
        return False
    queue.enqueue("bulkcall_core.dispatch.run_campaign", campaign_id, **options)
    return True


def job_started(redis: Redis, campaign_id: int) -> None:
    """Called by the dispatcher job when it starts: the next due check may enqueue again."""
    redis.delete(marker_key(campaign_id))


def submit(
    campaign_id: int, *, session: Session, settings: Settings, queue: Queue | None = None
) -> bool:
    """Hand a stored campaign to the workers: now when due, else at its scheduled time.

    Returns False when the campaign is not scheduled or running (nothing to do) or a job for
    it already waits. Raises `SettingsError` when PUBLIC_BASE_URL is unset (Twilio could not
    fetch the audio nor report outcomes); Redis errors propagate, and the campaign, being
    stored, is still run by the reconciler once Redis is back.
    """
    public_base_url(settings)
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status not in (
        CampaignStatus.SCHEDULED,
        CampaignStatus.RUNNING,
    ):
        return False
    queue = queue if queue is not None else get_queue(settings)
    return enqueue_dispatch(queue, campaign_id, at=campaign.scheduled_at)


def due_campaign_ids(
    *, session: Session, claim_timeout_seconds: float, now: datetime | None = None
) -> list[int]:
    """Campaigns that need a dispatcher now and have none (no lease, or an expired one)."""
    now = now or utcnow()
    unleased = or_(Campaign.lease_until.is_(None), Campaign.lease_until < now)
    stale = now - timedelta(seconds=claim_timeout_seconds)
    call_due = exists().where(
        Call.campaign_id == Campaign.id,
        or_(
            and_(
                Call.state == CallState.PENDING.value,
                or_(Call.next_attempt_at.is_(None), Call.next_attempt_at <= now),
            ),
            and_(Call.state == CallState.DIALING.value, Call.claimed_at < stale),
        ),
    )
    query = select(Campaign.id).where(
        unleased,
        or_(
            and_(Campaign.status == CampaignStatus.SCHEDULED.value, Campaign.scheduled_at <= now),
            and_(Campaign.status == CampaignStatus.RUNNING.value, call_due),
        ),
    )
    return list(session.execute(query.order_by(Campaign.scheduled_at)).scalars())


def next_scheduled_at(*, session: Session, now: datetime | None = None) -> datetime | None:
    """The earliest time a scheduled campaign becomes due after `now` (None when none)."""
    now = now or utcnow()
    query = select(Campaign.scheduled_at).where(
        Campaign.status == CampaignStatus.SCHEDULED.value, Campaign.scheduled_at > now
    )
    return session.execute(query.order_by(Campaign.scheduled_at).limit(1)).scalar()


def reconcile(
    *, session: Session, queue: Queue, settings: Settings, now: datetime | None = None
) -> list[int]:
    """Enqueue a dispatcher for every campaign the database says is due and nobody holds.

    Returns the ids of the campaigns enqueued now (not those whose job already waits).
    """
    due = due_campaign_ids(
        session=session, claim_timeout_seconds=settings.claim_timeout_seconds, now=now
    )
    session.rollback()  # end the read transaction before talking to Redis
    return [campaign_id for campaign_id in due if enqueue_dispatch(queue, campaign_id)]


# ---------------------------------------------------------------------- calling windows


def window_opening(
    phone: str,
    start: str,
    end: str,
    *,
    now: datetime | None = None,
    default_zone: str = "UTC",
) -> datetime | None:
    """None when `phone` (E.164) may be called now under the window `start`-`end` ("HH:MM",
    the recipient's local time, `end` exclusive; a window may span midnight, 20:00-02:00),
    else the aware UTC moment the window next opens. The recipient's zone comes from the
    number (`phones.time_zone_of`), else `default_zone` (the campaign creator's)."""
    now = now or utcnow()
    zone = _zone_or_utc(phones.time_zone_of(phone) or default_zone)
    local = now.astimezone(zone)
    opens, closes = _clock(start), _clock(end)
    clock = local.time().replace(tzinfo=None)
    inside = opens <= clock < closes if opens <= closes else (clock >= opens or clock < closes)
    if inside:
        return None
    day = local.date() if clock < opens else local.date() + timedelta(days=1)
    return datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _zone_or_utc(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
