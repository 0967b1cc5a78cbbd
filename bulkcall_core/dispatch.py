"""The dispatcher: places a campaign's calls through Twilio, paced, concurrently, exactly once.

`run_campaign(campaign_id)` is the RQ job. It may run any number of times, in any number of
workers on any number of machines; what keeps that safe:

One dispatcher per campaign: a lease in the database (`Campaign.lease_owner/lease_until`),
taken with one conditional UPDATE that also moves a due campaign from scheduled to running,
and renewed every CONTROL_CHECK_SECONDS with a conditional UPDATE that also requires status
running. A job that cannot take the lease returns at once. The same renewal is the pause /
stop / cancel check: when it fails, the dispatcher places nothing more, releases the calls it
claimed but did not send, and returns. Before each send it also checks that its lease is
still valid by its own clock, so a process that was frozen past its lease sends nothing.

Exactly once (never called twice, never skipped):
1. Claim before calling: `pending -> dialing` with a fresh claim token (conditional on
   `state = pending`), attempts + 1. Only the lease holder claims.
2. Twilio accepted: `dialing -> placed` with the SID, conditional on the claim token.
3. Twilio refused without processing (429 / 20429, 500, 503, not reachable): back to pending
   with a backoff (exponential, jittered, capped); attempts not counted.
   Twilio refused the call (other 4xx): done, status failed, Twilio's code and message kept.
   401 / 20003 (credentials): the campaign is paused with the reason; nothing is lost.
4. Ambiguous (timeout after sending, dropped connection, gateway error): the call stays
   dialing. After AMBIGUOUS_SETTLE_SECONDS it is looked up in Twilio's call list (From, To,
   created after the claim minus LOOKUP_SKEW_SECONDS, SIDs already recorded excluded): found
   -> adopted (placed with that SID); not found -> pending again.
5. A worker killed at any moment leaves at most its in-flight claims in dialing. A dispatcher
   that takes the campaign over resolves every dialing claim older than
   `settings.claim_timeout_seconds` the same way (step 4) before it claims anything, and keeps
   doing so while it runs; the reconciler wakes a dispatcher for such claims.
6. Claims waiting for a pacing slot are refreshed before they get old, so a live claim never
   looks abandoned.
Residual risk: a process frozen (SIGSTOP, VM pause, swap storm) between its last lease check
and the send for longer than the claim timeout, whose request Twilio then accepts after the
takeover looked it up. The window is the few microseconds between the check and the send.
Machine clocks must agree to well within the lease (NTP) since leases compare their times.

Pacing: one `pacing.Pacer` per Twilio account (Twilio's calls-per-second limit is the account's, so
two channels on one account share it), keyed by the account SID and shared by all workers through
Redis. Its rate is the channel's calls_per_second; when the account's channels disagree, the
smallest of them, with a warning in the log (a faster channel cannot lend its rate to a slower one's
campaigns without exceeding what the slower one promised). A single pacing thread takes slots and
hands each call to a thread pool that sends it (Twilio's create is a network round trip; calls never
wait for earlier calls to finish). The pool is bounded to IN_FLIGHT_PER_CPS x CPS (at most
MAX_IN_FLIGHT) and the pacer only takes a slot when a thread is free, so the moment a slot is taken
is the moment the request leaves.

Calls are claimed about a second's worth at a time (CLAIM_BATCH_SECONDS), so the database
round trip of claiming does not eat into the rate at 100 CPS.

Callback URLs name the call and its claim (`?call=ID&claim=TOKEN`), so a callback that arrives
before Twilio's answer to the create records the SID itself (`outcomes`); every write here is
conditional on the claim still dialing, so none undoes what such a callback recorded.

A call adopted after a lookup may already have ended (its callbacks came while its SID was
unknown and were dropped): its status from the lookup goes through `outcomes`, like a
callback, so it is settled rather than left placed.

Turns: a worker runs one campaign at a time, so a dispatcher hands its campaign back (lease
released; the reconciler enqueues it again) after MAX_RUN_SECONDS, or after FAIR_SHARE_SECONDS
when another campaign's job waits in the queue because every worker is busy. With enough
workers (`serve --workers`) a due campaign is taken by an idle one at once.

Do-not-call numbers (the list may have grown since planning) are skipped with a reason when
claimed. Calls outside the campaign's calling window (recipient's local time) go back to
pending with `next_attempt_at` at the next opening. A dispatcher returns when nothing is
claimable soon; the reconciler enqueues one again when something becomes due.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bulkcall_core import audio, channels, outcomes, pacing, phones, scheduling, telephony, webhooks
from bulkcall_core.campaigns import CANCELED_REASON, STOPPED_REASON
from bulkcall_core.database import get_engine, new_session
from bulkcall_core.errors import BulkCallError, CampaignError
from bulkcall_core.models import (
    Call,
    CallState,
    Campaign,
    CampaignStatus,
    Channel,
    DoNotCall,
    Recording,
    utcnow,
)
from bulkcall_core.pacing import Pacer
from bulkcall_core.queueing import get_queue, get_redis
from bulkcall_core.settings import Settings, get_settings
from bulkcall_core.telephony import AmbiguousCallError, CallInfo

log = logging.getLogger(__name__)

# A lease lasts this long without renewal; a dead dispatcher's campaign is taken over after it.
LEASE_SECONDS = 10.0
# How often the lease is renewed and the campaign's status re-read (pause/stop latency).
CONTROL_CHECK_SECONDS = 0.5
# Stop sending this long before the lease would expire if renewals failed (clock safety).
LEASE_SAFETY_SECONDS = 2.0
# Calls in flight per unit of CPS: covers ~2 s of Twilio round trip at full rate.
IN_FLIGHT_PER_CPS = 2
MAX_IN_FLIGHT = 64  # = telephony.CONNECTION_POOL_SIZE: one connection per sending thread
# After an ambiguous create, wait this long before looking the call up in Twilio's list.
AMBIGUOUS_SETTLE_SECONDS = 5.0
# Allowance for clock skew between this machine and Twilio when looking a call up.
LOOKUP_SKEW_SECONDS = 120
# Backoff of calls Twilio did not process (429 / 5xx): doubles per consecutive failure.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
# After a not-processed answer no new call leaves for this long, doubling while they go on:
# Twilio's 429 says the account is over its rate, whatever our limiter believes.
HOLD_BASE_SECONDS = 0.1
# Calls claimed at once: about a second's worth, so that claiming (a database round trip)
# happens once a second, not between every few calls. Claims not yet sent are refreshed
# before they age and given back on pause/stop.
CLAIM_BATCH_SECONDS = 1.0
MAX_CLAIM_BATCH = 500
# A dispatcher hands its campaign back after this long so a busy worker serves the others too.
MAX_RUN_SECONDS = 600.0
# ...and after only this long when another campaign waits for a worker (a job in the queue):
# campaigns beyond the number of workers then take turns instead of waiting up to 10 minutes.
# Handing back and taking over cost about a second (lease, warm-up): under 2 % of a turn.
FAIR_SHARE_SECONDS = 60.0
# How often, past the fair share, the dispatcher looks whether a campaign waits (one LLEN).
WAITING_CHECK_SECONDS = 1.0
# Stay (instead of returning) when the next call is due within this long.
LINGER_SECONDS = 5.0
# How often the dispatcher looks for abandoned dialing claims while it runs.
STALE_CHECK_SECONDS = 5.0
# Pacing seed after Redis lost its data: calls of the channel claimed this recently count.
RECENT_CALLS_SECONDS = 5.0
IDLE_SLEEP_SECONDS = 0.05
DO_NOT_CALL_REASON = "on the do-not-call list"
AUTH_STATUSES = frozenset({401})

_settings_override: Settings | None = None


def configure(settings: Settings) -> None:
    """Make jobs in this process (and its forks) use `settings` instead of the environment's."""
    global _settings_override
    _settings_override = settings


def run_campaign(campaign_id: int) -> str:
    """RQ job: dispatch the campaign until nothing is claimable, it is paused or stopped, or
    the time slice ends. Returns what happened (a word, for RQ's logs). Never raises for a
    campaign that is gone, done or held by another worker."""
    settings = _settings_override or get_settings()
    engine = get_engine(settings)
    engine.dispose(close=False)  # a forked work horse must not share its parent's connections
    redis = get_redis(settings)
    scheduling.job_started(redis, campaign_id)
    stop = threading.Event()
    previous = _on_sigterm(stop)
    try:
        return dispatch_campaign(
            campaign_id, engine=engine, redis=redis, settings=settings, stop_event=stop
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm(stop: threading.Event) -> Any:
    """The worker sends its work horse SIGTERM on shutdown: stop cleanly, don't die mid-call."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: stop.set())


def dispatch_campaign(
    campaign_id: int,
    *,
    engine: Engine,
    redis: Redis,
    settings: Settings,
    stop_event: threading.Event | None = None,
    fair_share_seconds: float = FAIR_SHARE_SECONDS,
) -> str:
    """Dispatch one campaign in this thread (see the module docstring). Hands the campaign
    back ("time-slice") after MAX_RUN_SECONDS, or after `fair_share_seconds` once another
    campaign waits in the queue. Returns one of "not-runnable", "idle", "paused", "stopped",
    "canceled", "lease-lost", "shutdown", "time-slice", "completed", "misconfigured"."""
    dispatcher = _Dispatcher(campaign_id, engine, redis, settings, stop_event)
    dispatcher.fair_share = fair_share_seconds  # the tests' short turns; FAIR_SHARE_SECONDS
    return dispatcher.run()


@dataclass(frozen=True)
class _Claim:
    id: int
    phone: str
    token: str
    claimed_at: datetime


@dataclass(frozen=True)
class _Target:
    """Everything a send needs, read once per run."""

    channel: Channel
    twiml: str
    status_callback: str
    amd_callback: str
    full_message: bool
    window: tuple[str, str] | None
    default_zone: str


class _Dispatcher:
    def __init__(
        self,
        campaign_id: int,
        engine: Engine,
        redis: Redis,
        settings: Settings,
        stop_event: threading.Event | None,
    ) -> None:
        self.campaign_id = campaign_id
        self.engine = engine
        self.redis = redis
        self.settings = settings
        self.stop_event = stop_event or threading.Event()
        self.owner = f"{secrets.token_hex(6)}"
        self.session = new_session(engine)
        self.reason: str | None = None
        self.started = time.monotonic()
        self.last_check = 0.0
        self.lease_valid_until = 0.0
        self.last_stale_check = time.monotonic()
        self.retries: dict[int, int] = {}  # not-processed answers per call, for its backoff
        self.failures = 0  # consecutive not-processed answers: the whole dispatcher slows down
        self.hold_until = 0.0  # monotonic time before which no new call leaves
        self.lock = threading.Condition()
        self.in_flight = 0
        self.ambiguous: dict[int, tuple[_Claim, float]] = {}
        self.target: _Target | None = None
        self.client: Any = None
        self.pacer: Pacer | None = None
        self.batch = 1  # calls claimed at once, set from the channel's rate
        self.cps = 1.0  # the account's rate (see account_rate), set by _prepare
        self.fair_share = FAIR_SHARE_SECONDS
        self.last_waiting_check = 0.0

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> str:
        if not self._take_lease():
            self.session.close()
            return "not-runnable"
        try:
            if not self._prepare():
                return "misconfigured"
            self._resolve_stale(all_stale=True)
            log.info("campaign %s: dispatching as %s", self.campaign_id, self.owner)
            return self._loop()
        finally:
            self._wind_down()

    def _take_lease(self) -> bool:
        now = utcnow()
        free = or_(
            Campaign.lease_owner.is_(None),
            Campaign.lease_until < now,
            Campaign.lease_owner == self.owner,
        )
        statement = (
            update(Campaign)
            .where(
                Campaign.id == self.campaign_id,
                Campaign.status.in_([CampaignStatus.SCHEDULED, CampaignStatus.RUNNING]),
                Campaign.scheduled_at <= now,
                free,
            )
            .values(
                lease_owner=self.owner,
                lease_until=now + timedelta(seconds=LEASE_SECONDS),
                status=CampaignStatus.RUNNING.value,
                started_at=func.coalesce(Campaign.started_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        taken = self.session.execute(statement).rowcount == 1
        self.session.commit()
        if taken:
            self.last_check = time.monotonic()
            self.lease_valid_until = self.last_check + LEASE_SECONDS - LEASE_SAFETY_SECONDS
        return taken

    def _prepare(self) -> bool:
        """Read the campaign's channel and recording; build TwiML, URLs, client and pacer."""
        campaign = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert campaign is not None
        channel = self.session.get(Channel, campaign.channel_id)
        recording = self.session.get(Recording, campaign.recording_id)
        try:
            if channel is None or recording is None:
                raise CampaignError("its channel or recording was deleted")
            self.target = _target(campaign, channel, recording, self.settings)
            self.client = channels.channel_client(channel, self.settings)
            _warm_up(self.client, channel.account_sid)
        except BulkCallError as exc:
            self._halt(f"Cannot place calls: {exc.message}")
            return False
        self.cps = account_rate(session=self.session, channel=channel)
        self.session.commit()
        self.pacer = Pacer(
            self.redis,
            channel.account_sid,
            self.cps,
            recent_calls=lambda: _recent_calls(self.engine, channel.account_sid),
        )
        return True

    def _loop(self) -> str:
        cps = self.cps
        capacity = _capacity(cps)
        self.batch = max(capacity, min(MAX_CLAIM_BATCH, math.ceil(cps * CLAIM_BATCH_SECONDS)))
        with ThreadPoolExecutor(capacity, thread_name_prefix="bulkcall-send") as pool:
            self.pool = pool
            while not self.should_stop():
                self._housekeeping()
                if not self._wait_for_thread(capacity):
                    continue
                claims = self._screen(self._claim(self.batch))
                if not claims:
                    if self._nothing_soon():
                        return "idle"
                    time.sleep(IDLE_SLEEP_SECONDS)
                    continue
                self._send_all(claims, capacity)
        return self.reason or "stopped"

    def _wind_down(self) -> None:
        """After the loop: settle ambiguous calls, release the lease, complete if done."""
        try:
            self._settle_ambiguous()
            self._release_lease()
            outcomes.finish_campaign_if_done(session=self.session, campaign_id=self.campaign_id)
            self.session.commit()
        except Exception:
            log.exception("campaign %s: winding down failed", self.campaign_id)
            self.session.rollback()
        finally:
            self.session.close()

    # ------------------------------------------------------------------ control

    def should_stop(self) -> bool:
        """True once the campaign must place nothing more (pause, stop, shutdown, lease...)."""
        if self.reason is not None:
            return True
        now = time.monotonic()
        if self.stop_event.is_set():
            self.reason = "shutdown"
        elif now - self.started > MAX_RUN_SECONDS or self._another_waits(now):
            self.reason = "time-slice"
        elif now - self.last_check >= CONTROL_CHECK_SECONDS:
            self._check_control(now)
        if self.reason is None and time.monotonic() > self.lease_valid_until:
            self.reason = "lease-lost"
        return self.reason is not None

    def _another_waits(self, now: float) -> bool:
        """True past the fair share when a job waits in the queue: another campaign (or a
        copy of this one's, which then simply resumes it) wants a worker."""
        if now - self.started < self.fair_share:
            return False
        if now - self.last_waiting_check < WAITING_CHECK_SECONDS:
            return False
        self.last_waiting_check = now
        try:
            return get_queue(self.settings, connection=self.redis).count > 0
        except RedisError:
            return False  # Redis is down: nobody can be waiting for this worker anyway

    def _must_not_send(self) -> bool:
        """The checks that need no database, made between taking a pacing slot and sending
        (a database write there would delay the request and bunch calls at Twilio)."""
        if self.stop_event.is_set():
            self.reason = self.reason or "shutdown"
        elif time.monotonic() > self.lease_valid_until:
            self.reason = self.reason or "lease-lost"
        return self.reason is not None

    def _check_control(self, now: float) -> None:
        """Renew the lease, which only succeeds while the campaign is running and ours."""
        self.last_check = now
        try:
            renewed = _renew_lease(self.session, self.campaign_id, self.owner)
        except Exception:
            log.warning("campaign %s: lease renewal failed", self.campaign_id, exc_info=True)
            self.session.rollback()
            return  # lease_valid_until stops us if this goes on
        if renewed:
            self.lease_valid_until = now + LEASE_SECONDS - LEASE_SAFETY_SECONDS
            return
        campaign = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        self.session.commit()
        status = campaign.status if campaign is not None else CampaignStatus.CANCELED
        self.reason = status if status != CampaignStatus.RUNNING else "lease-lost"

    def _halt(self, message: str) -> None:
        """Pause the campaign with `message` for the operator (credentials, missing setup)."""
        log.error("campaign %s: %s", self.campaign_id, message)
        _pause(self.session, self.campaign_id, message)
        self.session.commit()
        self.reason = CampaignStatus.PAUSED.value

    def _release_lease(self) -> None:
        self.session.execute(
            update(Campaign)
            .where(Campaign.id == self.campaign_id, Campaign.lease_owner == self.owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        self.session.commit()

    # ------------------------------------------------------------------ claiming

    def _claim(self, limit: int) -> list[_Claim]:
        """Claim up to `limit` due pending calls (conditional UPDATE per batch)."""
        if limit <= 0:
            return []
        now = utcnow()
        token = f"{self.owner}:{secrets.token_hex(4)}"
        due = (
            select(Call.id)
            .where(
                Call.campaign_id == self.campaign_id,
                Call.state == CallState.PENDING.value,
                or_(Call.next_attempt_at.is_(None), Call.next_attempt_at <= now),
            )
            .order_by(Call.next_attempt_at, Call.id)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(Call)
            .where(Call.id.in_(due.scalar_subquery()), Call.state == CallState.PENDING.value)
            .values(
                state=CallState.DIALING.value,
                claim_token=token,
                claimed_at=now,
                attempts=Call.attempts + 1,
                updated_at=now,
            )
            .returning(Call.id, Call.phone)
            .execution_options(synchronize_session=False)
        )
        rows = self.session.execute(statement).all()
        self.session.commit()
        return sorted((_Claim(row.id, row.phone, token, now) for row in rows), key=lambda c: c.id)

    def _screen(self, claims: list[_Claim]) -> list[_Claim]:
        """Skip do-not-call numbers, defer calls outside the calling window; the rest."""
        if not claims:
            return claims
        phones = {claim.phone for claim in claims}
        blocked = set(
            self.session.execute(select(DoNotCall.phone).where(DoNotCall.phone.in_(phones)))
            .scalars()
            .all()
        )
        target = self.target
        assert target is not None
        keep = []
        for claim in claims:
            if claim.phone in blocked:
                self._unclaim(claim, state=CallState.SKIPPED, skip_reason=DO_NOT_CALL_REASON)
                continue
            opening = _window_opening(claim.phone, target, utcnow())
            if opening is not None:
                self._unclaim(claim, next_attempt_at=opening)
                continue
            keep.append(claim)
        self.session.commit()
        return keep

    def _unclaim(
        self,
        claim: _Claim,
        *,
        state: CallState = CallState.PENDING,
        session: Session | None = None,
        **values: Any,
    ) -> bool:
        return _unclaim(session or self.session, claim, state=state, **values)

    def _release_unsent(self, claims: list[_Claim]) -> None:
        """Claims that never left: skipped if the campaign was stopped, else pending again."""
        reasons = {
            CampaignStatus.STOPPED.value: STOPPED_REASON,
            CampaignStatus.CANCELED.value: CANCELED_REASON,
        }
        reason = reasons.get(self.reason or "")
        for claim in claims:
            if reason:
                self._unclaim(claim, state=CallState.SKIPPED, skip_reason=reason)
            else:
                self._unclaim(claim)
        self.session.commit()

    def _refresh(self, claim: _Claim) -> _Claim | None:
        """A claim that waited long for pacing gets a fresh claimed_at (None if it was lost)."""
        age = (utcnow() - claim.claimed_at).total_seconds()
        if age < self.settings.claim_timeout_seconds / 4:
            return claim
        now = utcnow()
        statement = (
            update(Call)
            .where(*_still_claimed(claim))
            .values(claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        refreshed = self.session.execute(statement).rowcount == 1
        self.session.commit()
        return replace(claim, claimed_at=now) if refreshed else None

    # ------------------------------------------------------------------ sending

    def _wait_for_thread(self, capacity: int) -> bool:
        with self.lock:
            if self.in_flight < capacity:
                return True
            self.lock.wait(IDLE_SLEEP_SECONDS)
            return self.in_flight < capacity

    def _send_all(self, claims: list[_Claim], capacity: int) -> None:
        """Send each claim when a thread is free and the pacer gives a slot."""
        assert self.pacer is not None
        for index, claim in enumerate(claims):
            while not self._wait_for_thread(capacity) and not self.should_stop():
                pass
            if not self._hold() or not self.pacer.acquire(should_stop=self.should_stop):
                self._release_unsent(claims[index:])
                return
            fresh = self._refresh(claim)
            if fresh is None or self._must_not_send():
                self._release_unsent(claims[index:] if fresh else claims[index + 1 :])
                return
            with self.lock:
                self.in_flight += 1
            self.pool.submit(self._send, fresh)

    def _hold(self) -> bool:
        """Wait out a slowdown after Twilio refused calls unprocessed; False to stop."""
        while time.monotonic() < self.hold_until:
            if self.should_stop():
                return False
            time.sleep(min(pacing.WAIT_SLICE_SECONDS, self.hold_until - time.monotonic()))
        return not self.should_stop()

    def _send(self, claim: _Claim) -> None:
        """In a pool thread: place one call and record what Twilio answered."""
        target = self.target
        assert target is not None
        try:
            info = telephony.place_call(
                self.client,
                to=claim.phone,
                from_=target.channel.from_number,
                twiml=target.twiml,
                status_callback=_for_claim(target.status_callback, claim),
                machine_detection="DetectMessageEnd" if target.full_message else "Enable",
                async_amd=not target.full_message,
                amd_callback=None
                if target.full_message
                else _for_claim(target.amd_callback, claim),
            )
        except AmbiguousCallError as exc:
            self._note_ambiguous(claim, exc)
        except telephony.TelephonyError as exc:
            self._refused(claim, exc)
        except Exception:
            log.exception("campaign %s: call %s: unexpected error", self.campaign_id, claim.id)
            self._note_ambiguous(claim, None)
        else:
            self.failures = 0
            self._record(lambda session: _adopt(session, claim, info))
        finally:
            with self.lock:
                self.in_flight -= 1
                self.lock.notify_all()

    def _record(self, write: Any) -> None:
        """Run `write(session)` in a session of this thread and commit."""
        with new_session(self.engine) as session:
            try:
                write(session)
                session.commit()
            except IntegrityError:
                session.rollback()
                log.error("campaign %s: SID already recorded elsewhere", self.campaign_id)

    def _note_ambiguous(self, claim: _Claim, exc: BaseException | None) -> None:
        log.warning(
            "campaign %s: call %s may have been placed (%s); looking it up in %.0f s",
            self.campaign_id,
            claim.id,
            exc,
            AMBIGUOUS_SETTLE_SECONDS,
        )
        with self.lock:
            self.ambiguous[claim.id] = (claim, time.monotonic() + AMBIGUOUS_SETTLE_SECONDS)

    def _refused(self, claim: _Claim, exc: telephony.TelephonyError) -> None:
        if telephony.is_retryable(exc):
            self.failures += 1
            self.retries[claim.id] = self.retries.get(claim.id, 0) + 1
            delay = _backoff(self.retries[claim.id])
            pause = min(BACKOFF_CAP_SECONDS, HOLD_BASE_SECONDS * 2 ** min(self.failures, 16))
            self.hold_until = max(self.hold_until, time.monotonic() + pause)
            log.info("campaign %s: %s; retrying in %.1f s", self.campaign_id, exc, delay)
            later = utcnow() + timedelta(seconds=delay)
            self._record(
                lambda session: self._unclaim(claim, session=session, next_attempt_at=later)
            )
        elif exc.status in AUTH_STATUSES or exc.code == telephony.AUTHENTICATE_CODE:
            self._record(lambda session: self._unclaim(claim, session=session))
            self.reason = self.reason or "misconfigured"
            self._record(lambda session: _pause(session, self.campaign_id, _auth_message(exc)))
        else:
            self._record(lambda session: _fail(session, claim, exc))

    # ------------------------------------------------------------------ ambiguous and stale

    def _housekeeping(self) -> None:
        """Resolve ambiguous calls whose settle time passed, and abandoned claims."""
        now = time.monotonic()
        with self.lock:
            due = [claim for claim, at in self.ambiguous.values() if at <= now]
        for claim in due:
            self._resolve(claim)
        if now - self.last_stale_check >= STALE_CHECK_SECONDS:
            self.last_stale_check = now
            self._resolve_stale(all_stale=False)

    def _settle_ambiguous(self) -> None:
        """At the end of a run: wait out the settle delay and resolve what is left."""
        while self.ambiguous:
            with self.lock:
                claim, at = min(self.ambiguous.values(), key=lambda item: item[1])
            time.sleep(max(0.0, at - time.monotonic()))
            if not self._resolve(claim):
                break  # Twilio unreachable: the claim ages into the stale path

    def _resolve(self, claim: _Claim) -> bool:
        """Look an ambiguous call up in Twilio: adopt it if found, else pending again."""
        try:
            found = self._lookup(claim)
        except BulkCallError as exc:
            log.warning(
                "campaign %s: lookup of call %s failed: %s", self.campaign_id, claim.id, exc
            )
            with self.lock:
                self.ambiguous[claim.id] = (claim, time.monotonic() + AMBIGUOUS_SETTLE_SECONDS)
            return False
        with self.lock:
            self.ambiguous.pop(claim.id, None)
        if found is not None:
            log.info("campaign %s: call %s was placed as %s", self.campaign_id, claim.id, found.sid)
            self._record(lambda session: _adopt(session, claim, found))
        else:
            self._unclaim(claim)
            self.session.commit()
        return True

    def _lookup(self, claim: _Claim) -> CallInfo | None:
        target = self.target
        assert target is not None
        return _lookup(self.session, self.client, target.channel.from_number, claim)

    def _resolve_stale(self, *, all_stale: bool) -> None:
        """Resolve dialing claims older than the claim timeout (left by a dead dispatcher)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.claim_timeout_seconds)
        rows = self.session.execute(
            select(Call.id, Call.phone, Call.claim_token, Call.claimed_at).where(
                Call.campaign_id == self.campaign_id,
                Call.state == CallState.DIALING.value,
                or_(Call.claimed_at.is_(None), Call.claimed_at < cutoff),
            )
        ).all()
        self.session.commit()
        for row in rows:
            if row.id in self.ambiguous:
                continue
            claim = _Claim(row.id, row.phone, row.claim_token or "", row.claimed_at or cutoff)
            if claim.token == "":
                continue  # not claimed by a dispatcher: nothing safe to do automatically
            self._resolve(claim)
            with self.lock:
                self.ambiguous.pop(claim.id, None)
            if not all_stale and self.should_stop():
                return

    def _nothing_soon(self) -> bool:
        """True when nothing is in flight or ambiguous and no call is due within LINGER."""
        with self.lock:
            if self.in_flight or self.ambiguous:
                return False
        horizon = utcnow() + timedelta(seconds=LINGER_SECONDS)
        soon = self.session.execute(
            select(func.count(Call.id)).where(
                Call.campaign_id == self.campaign_id,
                Call.state == CallState.PENDING.value,
                or_(Call.next_attempt_at.is_(None), Call.next_attempt_at <= horizon),
            )
        ).scalar()
        self.session.commit()
        return not soon


# ---------------------------------------------------------------------- helpers


def _target(
    campaign: Campaign, channel: Channel, recording: Recording, settings: Settings
) -> _Target:
    window = (
        (campaign.window_start, campaign.window_end)
        if campaign.window_start and campaign.window_end
        else None
    )
    return _Target(
        channel=channel,
        twiml=telephony.play_twiml(audio.recording_url(recording, settings)),
        status_callback=webhooks.status_callback_url(settings),
        amd_callback=webhooks.amd_callback_url(settings),
        full_message=campaign.voicemail_full_message,
        window=window,
        default_zone=campaign.time_zone or "UTC",
    )


def _warm_up(client: Any, account_sid: str) -> None:
    """Before the first pacing slot: let the SDK import its resources (it does so lazily, ~0.1 s
    of CPU) and open a connection to Twilio (TCP + TLS), so that the first calls leave when
    their slots are taken instead of bunching with later ones at Twilio."""
    try:
        telephony.fetch_account(client, account_sid)
    except Exception as exc:  # noqa: BLE001 - a warm-up must never stop dispatch; the calls tell
        log.info("warm-up request failed (%s); the calls will tell", type(exc).__name__)


def _capacity(cps: float) -> int:
    return max(2, min(MAX_IN_FLIGHT, math.ceil(IN_FLIGHT_PER_CPS * cps)))


def _backoff(failures: int) -> float:
    """Seconds before retrying a call Twilio did not process: full jitter, capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(failures, 16))
    return random.uniform(BACKOFF_BASE_SECONDS, max(BACKOFF_BASE_SECONDS, ceiling))


def _renew_lease(session: Session, campaign_id: int, owner: str) -> bool:
    now = utcnow()
    statement = (
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.lease_owner == owner,
            Campaign.status == CampaignStatus.RUNNING.value,
        )
        .values(lease_until=now + timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False)
    )
    renewed = session.execute(statement).rowcount == 1
    session.commit()
    return renewed


def _still_claimed(claim: _Claim) -> tuple[Any, ...]:
    """The conditions under which a claim is still the one this dispatcher holds."""
    return (
        Call.id == claim.id,
        Call.claim_token == claim.token,
        Call.state == CallState.DIALING.value,
    )


def _unclaim(
    session: Session, claim: _Claim, *, state: CallState = CallState.PENDING, **values: Any
) -> bool:
    """Give back a claim whose call was NOT placed (attempt not counted); False if the claim
    is no longer held as `claim`."""
    statement = (
        update(Call)
        .where(*_still_claimed(claim))
        .values(
            state=state.value,
            claim_token=None,
            attempts=Call.attempts - 1,
            updated_at=utcnow(),
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount == 1


def _lookup(session: Session, client: Any, from_number: str, claim: _Claim) -> CallInfo | None:
    """The call Twilio made for `claim`, if any: from `from_number` to its phone, created after
    the claim (minus clock skew), not already recorded for another call. Raises
    TelephonyError when Twilio cannot be asked."""
    since = claim.claimed_at - timedelta(seconds=LOOKUP_SKEW_SECONDS)
    listed = telephony.find_calls(client, from_=from_number, to=claim.phone, started_after=since)
    if not listed:
        return None
    sids = [info.sid for info in listed]
    known = set(session.execute(select(Call.sid).where(Call.sid.in_(sids))).scalars())
    session.commit()
    fresh = [info for info in listed if info.sid not in known]
    return fresh[-1] if fresh else None  # listed newest first: the earliest unknown one


def _adopt(session: Session, claim: _Claim, info: CallInfo) -> None:
    """dialing -> placed with Twilio's SID, only while the claim is still ours (a callback
    that overtook Twilio's answer may already have placed or even settled the call: then this
    changes nothing); then Twilio's status and details go through `outcomes.apply_call_info`,
    so that a call adopted after it already ended (its callbacks came while its SID was
    unknown) is settled like any other: done, or pending for a retry, and the campaign
    completed when it was the last."""
    now = utcnow()
    adopted = session.execute(
        update(Call)
        .where(*_still_claimed(claim))
        .values(state=CallState.PLACED.value, sid=info.sid, placed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if adopted.rowcount != 1:
        return
    outcomes.apply_call_info(session=session, info=info, now=now)


def _for_claim(url: str, claim: _Claim) -> str:
    """The callback URL naming the call and claim (see `outcomes`: early callbacks)."""
    return webhooks.callback_url_for_call(url, call_id=claim.id, claim=claim.token)


def _fail(session: Session, claim: _Claim, exc: telephony.TelephonyError) -> None:
    """Twilio refused this call: done, failed, with Twilio's code and message."""
    now = utcnow()
    session.execute(
        update(Call)
        .where(*_still_claimed(claim))
        .values(
            state=CallState.DONE.value,
            status="failed",
            error_code=exc.code or exc.status,
            error_message=exc.message[:500],
            completed_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _pause(session: Session, campaign_id: int, message: str) -> None:
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.RUNNING.value)
        .values(status=CampaignStatus.PAUSED.value, last_error=message)
        .execution_options(synchronize_session=False)
    )


def _auth_message(exc: telephony.TelephonyError) -> str:
    return (
        f"Twilio refused the channel's credentials ({exc.message}); the campaign is paused. "
        "Fix the channel's auth token on the Channels page, then resume."
    )


def _recent_calls(engine: Engine, account_sid: str) -> int:
    """Calls of the account's channels claimed in the last RECENT_CALLS_SECONDS (pacing
    after Redis lost the limiter's state)."""
    since = utcnow() - timedelta(seconds=RECENT_CALLS_SECONDS)
    with new_session(engine) as session:
        return int(
            session.execute(
                select(func.count(Call.id))
                .join(Campaign, Campaign.id == Call.campaign_id)
                .join(Channel, Channel.id == Campaign.channel_id)
                .where(
                    Channel.account_sid == account_sid,
                    and_(Call.claimed_at.is_not(None), Call.claimed_at >= since),
                )
            ).scalar()
            or 0
        )


def account_rate(*, session: Session, channel: Channel) -> float:
    """The calls per second of `channel`'s Twilio account: Twilio limits the account, so
    every channel on it shares one limiter. The smallest calls_per_second of the account's
    channels when they disagree (logged as a warning, so the operator can align them)."""
    rates = set(
        session.execute(
            select(Channel.calls_per_second).where(Channel.account_sid == channel.account_sid)
        ).scalars()
    )
    rates.add(channel.calls_per_second)
    if len(rates) > 1:
        log.warning(
            "Twilio account %s: its channels are set to %s calls per second; Twilio limits "
            "the account, so they share the smallest, %s",
            channel.account_sid,
            ", ".join(f"{rate:g}" for rate in sorted(rates)),
            f"{min(rates):g}",
        )
    return min(rates)


def _window_opening(phone: str, target: _Target, now: datetime) -> datetime | None:
    """None when `phone` may be called now, else when its calling window next opens."""
    if target.window is None:
        return None
    start, end = target.window
    return scheduling.window_opening(phone, start, end, now=now, default_zone=target.default_zone)


# ---------------------------------------------------------------------- idle campaigns


def resolve_abandoned_claims(
    *, session: Session, settings: Settings, now: datetime | None = None
) -> int:
    """Settle dialing claims left by a dead worker in campaigns no dispatcher will run again
    (paused, stopped, canceled): look each call up in Twilio; found -> placed with its SID,
    else pending (paused) or skipped with the stop/cancel reason. Claims younger than the
    claim timeout are left alone. Returns how many were settled; the caller commits.
    A channel Twilio cannot be asked about is logged and tried again next time."""
    cutoff = (now or utcnow()) - timedelta(seconds=settings.claim_timeout_seconds)
    idle = [CampaignStatus.PAUSED, CampaignStatus.STOPPED, CampaignStatus.CANCELED]
    rows = session.execute(
        select(Call.id, Call.phone, Call.claim_token, Call.claimed_at, Campaign.status, Channel)
        .join(Campaign, Campaign.id == Call.campaign_id)
        .join(Channel, Channel.id == Campaign.channel_id)
        .where(
            Call.state == CallState.DIALING.value,
            Call.claim_token.is_not(None),
            Call.claimed_at < cutoff,
            Campaign.status.in_([status.value for status in idle]),
        )
    ).all()
    settled = 0
    for call_id, phone, token, claimed_at, status, channel in rows:
        claim = _Claim(call_id, phone, token, claimed_at)
        try:
            client = channels.channel_client(channel, settings)
            found = _lookup(session, client, channel.from_number, claim)
        except BulkCallError as exc:
            log.warning("abandoned claim %s: lookup failed: %s", call_id, exc)
            continue
        if found is not None:
            _adopt(session, claim, found)
        elif status == CampaignStatus.PAUSED:
            _unclaim(session, claim)
        else:
            reason = STOPPED_REASON if status == CampaignStatus.STOPPED else CANCELED_REASON
            _unclaim(session, claim, state=CallState.SKIPPED, skip_reason=reason)
        settled += 1
    return settled


# ---------------------------------------------------------------------- test call


def place_test_call(
    *,
    session: Session,
    settings: Settings,
    channel_id: int,
    recording_id: int,
    to: str,
    voicemail_full_message: bool = False,
    redis: Redis | None = None,
) -> CallInfo:
    """Call `to` (E.164) once with the recording and options a campaign would use, paced with
    the campaigns of the channel's Twilio account. Returns Twilio's CallInfo. Raises
    `CampaignError` (bad number, unknown channel or recording, channel busy), `SettingsError`
    (PUBLIC_BASE_URL unset) or `TelephonyError` (Twilio refused)."""
    channel = session.get(Channel, channel_id)
    recording = session.get(Recording, recording_id)
    if channel is None or recording is None:
        raise CampaignError("Pick a channel and a recording before the test call.", field="to")
    check = phones.normalize_phone(
        to,
        country=phones.region_of(channel.from_number) or "US",
        allowed_countries=channels.allowed_country_set(channel) or None,
    )
    if check.phone is None:
        raise CampaignError(f"Cannot call {to!r}: {check.reason}.", field="to")
    probe = Campaign(
        name="test call",
        channel_id=channel_id,
        recording_id=recording_id,
        scheduled_at=utcnow(),
        voicemail_full_message=voicemail_full_message,
    )
    target = _target(probe, channel, recording, settings)
    rate = account_rate(session=session, channel=channel)
    pacer = Pacer(redis or get_redis(settings), channel.account_sid, rate)
    if not pacer.acquire(timeout=TEST_CALL_PACING_TIMEOUT_SECONDS):
        raise CampaignError(
            f"Channel {channel.name!r} is busy placing calls at its limit; try again shortly.",
            field="to",
        )
    return telephony.place_call(
        channels.channel_client(channel, settings),
        to=check.phone,
        from_=channel.from_number,
        twiml=target.twiml,
        status_callback=target.status_callback,
        machine_detection="DetectMessageEnd" if voicemail_full_message else "Enable",
        async_amd=not voicemail_full_message,
        amd_callback=None if voicemail_full_message else target.amd_callback,
    )


# How long a test call waits for a pacing slot on a channel busy with a campaign.
TEST_CALL_PACING_TIMEOUT_SECONDS = 10.0
