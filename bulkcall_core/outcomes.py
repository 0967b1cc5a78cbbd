"""What happened to each call: Twilio's statuses applied in order, retries, campaign completion.

Statuses arrive from two places: Twilio's signed status callbacks (`webhooks`) and the poller
here, which lists Twilio's calls for what callbacks missed (callbacks get lost, and a web hooks
server can be down). Both go through `apply_call_status`, which only ever moves a call forward:
a late "ringing" never overwrites "completed", and a final status sticks.

Callbacks can come before the dispatcher has recorded the call's SID (Twilio's create answer
and the first callbacks race; a call that fails at once may only ever send its final one).
So the dispatcher puts the call's id and its claim token in the callback URL
(`webhooks.callback_url_for_call`), and a callback naming a call that is still `dialing` under
that same claim records its SID first (`placed`), in one conditional UPDATE, then applies its
status as usual. The claim token, not the attempt number, identifies the attempt: an attempt
given back after an ambiguous create reuses its number, never its token. Every write here and
in the dispatcher is conditional, so each only moves a call forward: the dispatcher's own
`dialing -> placed` finds nothing to do once a callback has placed or settled the call.

Ordering comes from the status itself (queued < initiated < ringing < in-progress < final).
Twilio's SequenceNumber orders one call's callbacks too, but the status rank already gives that
order for everything this product records, so it is accepted and not stored.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import exists, func, update
from sqlmodel import Session, col, select

from bulkcall_core import channels, telephony
from bulkcall_core.errors import BulkCallError
from bulkcall_core.models import (
    FINAL_CALL_STATUSES,
    Call,
    CallState,
    Campaign,
    CampaignStatus,
    Channel,
    utcnow,
)
from bulkcall_core.settings import Settings

logger = logging.getLogger(__name__)

# How far each Twilio status is along a call's life; a status only replaces a lower one.
STATUS_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    **{status: 4 for status in FINAL_CALL_STATUSES},
}
# Final statuses worth calling again when the campaign asks for retries.
RETRYABLE_STATUSES = frozenset({"busy", "no-answer", "failed"})
# Call states that still wait for something: the campaign is not done while any remain.
OPEN_STATES = (CallState.PENDING, CallState.DIALING, CallState.PLACED)
# States in which the call's SID is its current attempt's. A pending (retry) or dialing call
# may still carry the SID of its previous attempt, whose late callbacks must change nothing.
CURRENT_SID_STATES = (CallState.PLACED, CallState.DONE)
# What one attempt told us; cleared before a retry so the next attempt starts blank.
ATTEMPT_DETAILS = (
    "status", "answered_by", "duration_seconds", "price", "price_unit", "error_code",
    "error_message",
)  # fmt: skip
# Campaign states in which a failed call is still given its retries.
RETRYING_CAMPAIGN_STATES = (CampaignStatus.RUNNING, CampaignStatus.PAUSED)
# The poller leaves a call alone this long after it was placed: its callbacks normally arrive
# within seconds of the end, and Twilio rings for up to 60 s before the message plays.
DEFAULT_POLL_MIN_AGE_SECONDS = 120.0
# Twilio's start time and this machine's clock differ a little, and a call starts after it
# was placed: list from this much before the oldest open call.
POLL_START_SLACK_SECONDS = 300
# Per channel and poll, the open calls fetched one by one at most: each fetch is a round trip
# (0.1-0.3 s), so a poll stays well under a minute; the rest wait for the next poll, oldest
# first.
MAX_FETCHES_PER_POLL = 100


def apply_call_status(
    *,
    session: Session,
    sid: str,
    status: str,
    answered_by: str | None = None,
    duration: Any = None,
    price: Any = None,
    price_unit: str | None = None,
    error_code: Any = None,
    error_message: str | None = None,
    sequence: int | None = None,
    now: datetime | None = None,
    call_id: int | None = None,
    claim: str | None = None,
) -> Call | None:
    """Record Twilio's `status` (and details) for the call with this SID.

    Only moves forward, and only for the call's current attempt (a retried call's old SID
    changes nothing). Details (duration, price, AnsweredBy, error) fill in whenever the status
    is the call's current one, so a poll can add the price a callback lacked. On the first
    final status the call is settled: `done`; or, when it was busy / no-answer / failed and
    the campaign has retries left (`attempts` counts calls placed, so retry_count=2 allows 3
    calls), back to `pending` at `next_attempt_at` with the attempt's status and details
    cleared, so the next attempt's statuses apply from scratch. Then the campaign is
    completed if nothing is left. `sequence` is accepted and unused (see the module).
    `call_id` and `claim` (from the callback URL) let a callback that overtook the create's
    answer record the SID of a call still dialing under that claim (see the module).
    Returns the Call, or None for an unknown SID. The caller commits.
    """
    status = (status or "").strip().lower()
    if status not in STATUS_RANK:
        logger.warning("Ignoring unknown Twilio call status %r for %s", status, sid)
        return _find_call(session, sid)
    now = now or utcnow()
    _record_early_sid(session, sid, call_id=call_id, claim=claim, now=now)
    call = _find_call(session, sid, lock=True)
    if call is None or call.state not in CURRENT_SID_STATES:
        return call
    advances = STATUS_RANK[status] > STATUS_RANK.get(call.status or "", -1)
    if not advances and status != call.status:
        return call
    call.status = status
    _merge_details(
        call,
        answered_by=answered_by,
        duration=_integer(duration),
        price=_number(price),
        price_unit=price_unit,
        error_code=_integer(error_code),
        error_message=error_message,
    )
    call.updated_at = now
    settled = advances and status in FINAL_CALL_STATUSES
    if settled:
        _settle(session, call, now)
    session.add(call)
    session.flush()
    if settled:
        finish_campaign_if_done(session=session, campaign_id=call.campaign_id, now=now)
    return call


def apply_call_info(
    *, session: Session, info: telephony.CallInfo, now: datetime | None = None
) -> Call | None:
    """Record what Twilio's API reported about a call (a poll, a lookup, a create answer)
    through `apply_call_status`. Returns the Call, or None for an unknown SID. The caller
    commits."""
    return apply_call_status(
        session=session,
        sid=info.sid,
        status=info.status,
        answered_by=info.answered_by,
        duration=info.duration,
        price=info.price,
        price_unit=info.price_unit,
        error_code=info.error_code,
        error_message=info.error_message,
        now=now,
    )


def apply_answered_by(
    *,
    session: Session,
    sid: str,
    answered_by: str,
    call_id: int | None = None,
    claim: str | None = None,
) -> Call | None:
    """Record Twilio's asynchronous machine-detection result (AnsweredBy) for a call;
    `call_id` and `claim` as for `apply_call_status`.

    Returns the Call, or None for an unknown SID. The caller commits.
    """
    _record_early_sid(session, sid, call_id=call_id, claim=claim, now=utcnow())
    call = _find_call(session, sid, lock=True)
    if call is None or not answered_by or call.state not in CURRENT_SID_STATES:
        return call
    call.answered_by = answered_by.strip()[:32]
    call.updated_at = utcnow()
    session.add(call)
    session.flush()
    return call


def finish_campaign_if_done(
    *, session: Session, campaign_id: int, now: datetime | None = None
) -> bool:
    """Mark a running campaign `completed` once none of its calls is pending, dialing or placed.

    One conditional UPDATE, so two processes finishing the last calls at once cannot both (or
    neither) complete it. Returns True when this call completed it. The caller commits.
    """
    open_call = exists().where(
        col(Call.campaign_id) == campaign_id, col(Call.state).in_(OPEN_STATES)
    )
    statement = (
        update(Campaign)
        .where(
            col(Campaign.id) == campaign_id,
            col(Campaign.status) == CampaignStatus.RUNNING,
            ~open_call,
        )
        .values(status=CampaignStatus.COMPLETED, finished_at=now or utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return session.execute(statement).rowcount == 1


def _record_early_sid(
    session: Session, sid: str, *, call_id: int | None, claim: str | None, now: datetime
) -> None:
    """dialing -> placed with `sid` for call `call_id`, only while it is still dialing under
    `claim` and has no other SID of this attempt: one conditional UPDATE, so the dispatcher's
    own conditional write (or a concurrent callback) finds it done and changes nothing. A
    pending or dialing call may still carry its previous attempt's SID; that one is replaced."""
    if call_id is None or not claim:
        return
    session.execute(
        update(Call)
        .where(
            col(Call.id) == call_id,
            col(Call.claim_token) == claim,
            col(Call.state) == CallState.DIALING,
        )
        .values(sid=sid, state=CallState.PLACED, placed_at=now, updated_at=now)
        .execution_options(synchronize_session="fetch")
    )


def _find_call(session: Session, sid: str, *, lock: bool = False) -> Call | None:
    query = select(Call).where(Call.sid == sid)
    if lock:
        query = query.with_for_update()  # PostgreSQL: the callback and the poller queue up
    return session.exec(query).first()


def _merge_details(call: Call, **details: Any) -> None:
    # What Twilio told us before stays unless it now says something (later is better).
    limits = {"answered_by": 32, "price_unit": 8}
    for name, value in details.items():
        if value is None or value == "":
            continue
        if name in limits:
            value = str(value)[: limits[name]]
        setattr(call, "duration_seconds" if name == "duration" else name, value)


def _settle(session: Session, call: Call, now: datetime) -> None:
    campaign = session.get(Campaign, call.campaign_id)
    retry = (
        campaign is not None
        and call.status in RETRYABLE_STATUSES
        and call.attempts <= campaign.retry_count
        and campaign.status in RETRYING_CAMPAIGN_STATES
    )
    if retry:
        assert campaign is not None
        logger.info("Call %s was %s; retry %d of %d", call.id, call.status, call.attempts,
                    campaign.retry_count)  # fmt: skip
        call.previous_status = call.status
        for name in ATTEMPT_DETAILS:
            setattr(call, name, None)
        call.state = CallState.PENDING
        call.next_attempt_at = now + timedelta(seconds=campaign.retry_interval_seconds)
        call.claim_token = None
        call.claimed_at = None
        call.completed_at = None
    else:
        call.state = CallState.DONE
        call.completed_at = now


def _integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


# -- polling Twilio for what callbacks missed ------------------------------------------------


@dataclass(frozen=True)
class _OpenCall:
    sid: str
    since: datetime


def poll_open_calls(
    *,
    session: Session,
    settings: Settings,
    now: datetime | None = None,
    min_age_seconds: float = DEFAULT_POLL_MIN_AGE_SECONDS,
) -> int:
    """Ask Twilio about every placed call still without a final status after `min_age_seconds`.

    Per channel, whichever costs fewer requests: one listing of the channel's calls (filtered
    by From and start time, 1,000 a page, via `telephony.find_calls`; its size estimated from
    the calls this product placed since then), or one fetch per open call (oldest first, up to
    MAX_FETCHES_PER_POLL); calls missing from a listing are fetched one by one. Everything
    Twilio reports goes through
    `apply_call_status`. A channel whose Twilio requests fail is logged and skipped (the next
    poll tries again). Returns how many calls got their final status. The caller commits.
    """
    now = now or utcnow()
    reports: list[telephony.CallInfo] = []
    for channel, open_calls in _open_calls_by_channel(session, now, min_age_seconds):
        listing = _listing_pages(session, channel, open_calls[0].since) < len(open_calls)
        try:
            reports.extend(_ask_twilio(channel, open_calls, settings, listing=listing))
        except BulkCallError as exc:
            logger.warning("Could not poll Twilio for channel %r: %s", channel.name, exc)
    # Network first, database after: row locks are held only while applying.
    return sum(_apply_report(session, report, now) for report in reports)


def _open_calls_by_channel(
    session: Session, now: datetime, min_age_seconds: float
) -> list[tuple[Channel, list[_OpenCall]]]:
    since = func.coalesce(Call.placed_at, Call.updated_at)
    rows = session.exec(
        select(Call.sid, since, Campaign.channel_id)
        .join(Campaign, col(Campaign.id) == Call.campaign_id)
        .where(
            Call.state == CallState.PLACED,
            col(Call.sid).is_not(None),
            since <= now - timedelta(seconds=min_age_seconds),
        )
        .order_by(since)
    ).all()
    grouped: dict[int, list[_OpenCall]] = defaultdict(list)
    for sid, placed, channel_id in rows:
        grouped[channel_id].append(_OpenCall(sid, placed))
    result = []
    for channel_id, open_calls in grouped.items():
        channel = session.get(Channel, channel_id)
        if channel is not None:
            result.append((channel, open_calls))
    return result


def _listing_pages(session: Session, channel: Channel, oldest: datetime) -> int:
    """About how many pages listing the channel's calls since `oldest` takes: the calls this
    product placed since a day before (Twilio's start-time filter works by date)."""
    start = oldest - timedelta(seconds=POLL_START_SLACK_SECONDS, days=1)
    placed = session.exec(
        select(func.count())
        .select_from(Call)
        .join(Campaign, col(Campaign.id) == Call.campaign_id)
        .where(Campaign.channel_id == channel.id, col(Call.placed_at) >= start)
    ).one()
    return max(1, math.ceil(placed / telephony.MAX_PAGE_SIZE))


def _ask_twilio(
    channel: Channel, open_calls: list[_OpenCall], settings: Settings, *, listing: bool
) -> list[telephony.CallInfo]:
    client = channels.channel_client(channel, settings)
    wanted = {call.sid for call in open_calls}
    found: dict[str, telephony.CallInfo] = {}
    if listing:
        listed = telephony.find_calls(
            client,
            from_=channel.from_number,
            started_after=open_calls[0].since - timedelta(seconds=POLL_START_SLACK_SECONDS),
        )
        found = {info.sid: info for info in listed if info.sid in wanted}
    missing = [call.sid for call in open_calls if call.sid not in found]
    for sid in missing[:MAX_FETCHES_PER_POLL]:
        try:
            found[sid] = telephony.fetch_call(client, sid)
        except BulkCallError as exc:  # one bad SID must not hide the others
            logger.warning("Could not fetch call %s from Twilio: %s", sid, exc)
    return list(found.values())


def _apply_report(session: Session, info: telephony.CallInfo, now: datetime) -> int:
    call = apply_call_info(session=session, info=info, now=now)
    return int(call is not None and info.status in FINAL_CALL_STATUSES)
