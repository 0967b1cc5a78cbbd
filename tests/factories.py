"""Small factories for database tests: a channel, a recording, a campaign.

Each returns a committed model. Keyword arguments override the defaults (any model field).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from bulkcall_core.campaigns import create_campaign
from bulkcall_core.models import Campaign, Channel, Recording, utcnow
from bulkcall_core.planning import Plan, PlanOptions, plan_records


def make_channel(session: Session, **overrides: Any) -> Channel:
    """A verified, voice-capable channel calling from +14155550100 (token not a real one)."""
    values: dict[str, Any] = {
        "name": f"Channel {secrets.token_hex(3)}",
        "account_sid": "AC" + "0" * 32,
        "from_number": "+14155550100",
        "auth_token_encrypted": "x",
        "verified_at": utcnow(),
    }
    channel = Channel(**{**values, **overrides})
    session.add(channel)
    session.commit()
    return channel


def make_recording(session: Session, **overrides: Any) -> Recording:
    """A one-second mp3 recording row (no file behind it)."""
    values: dict[str, Any] = {
        "token": secrets.token_urlsafe(16),
        "filename": "m.mp3",
        "extension": "mp3",
        "content_type": "audio/mpeg",
        "size_bytes": 1,
        "duration_seconds": 1.0,
        "sha256": "0" * 64,
    }
    recording = Recording(**{**values, **overrides})
    session.add(recording)
    session.commit()
    return recording


def make_plan(
    phones: Sequence[str | None], *, names: Sequence[str | None] | None = None, **options: Any
) -> Plan:
    """A plan over `phones` as if they were a file's phone column (row 2 onwards), each row
    with a `note` field; `options` are PlanOptions fields."""
    names = names if names is not None else [f"Person {index}" for index in range(len(phones))]
    records = (
        (index + 2, phone, name, {"note": f"row {index + 2}"})
        for index, (phone, name) in enumerate(zip(phones, names, strict=True))
    )
    return plan_records(records, PlanOptions(phone_column="phone", **options))


def make_campaign(
    session: Session,
    phones: Sequence[str] = ("+14155550101", "+14155550102"),
    **overrides: Any,
) -> Campaign:
    """A scheduled campaign one hour ahead calling `phones`, on a new channel and recording
    unless `channel_id` / `recording_id` are given; other keywords go to create_campaign."""
    if "channel_id" not in overrides:
        overrides["channel_id"] = make_channel(session).id
    if "recording_id" not in overrides:
        overrides["recording_id"] = make_recording(session).id
    values: dict[str, Any] = {
        "name": "Test campaign",
        "scheduled_at": utcnow() + timedelta(hours=1),
        "plan": overrides.pop("plan", None) or make_plan(phones),
    }
    campaign = create_campaign(session=session, **{**values, **overrides})
    session.commit()
    return campaign
