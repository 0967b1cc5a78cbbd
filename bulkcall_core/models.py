"""Database tables. The schema is created and upgraded by the Alembic migrations in
`migrations/`; change a table here and add a migration beside it.

Every datetime is timezone-aware. SQLModel's UTCDateTime type refuses naive values and reads
back UTC on SQLite and PostgreSQL alike; `utcnow()` is the clock to use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time
    RUNNING = "running"  # dispatching or waiting for the last outcomes
    PAUSED = "paused"  # no new calls until resumed
    COMPLETED = "completed"  # every call has a final outcome
    CANCELED = "canceled"  # canceled before it started
    STOPPED = "stopped"  # stopped while running; calls not placed are left uncalled


class CallState(StrEnum):
    """Where a recipient is in dispatch (the engine's own bookkeeping)."""

    PENDING = "pending"  # to be called when next_attempt_at is reached
    DIALING = "dialing"  # claimed by a dispatcher; the request to Twilio may be in flight
    PLACED = "placed"  # Twilio accepted it (sid known); waiting for the final status
    DONE = "done"  # final status known, no retry left
    SKIPPED = "skipped"  # never called: do-not-call, stopped campaign...


# Twilio's final call statuses; anything else may still change.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


class Channel(SQLModel, table=True):
    """A Twilio account plus one of its numbers, from which campaigns call."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    account_sid: str = Field(max_length=64)
    from_number: str = Field(max_length=32)  # E.164
    auth_token_encrypted: str  # Fernet token; never decrypted outside telephony
    calls_per_second: float = 1.0
    allowed_countries: str = ""  # comma-separated ISO 3166 alpha-2; empty = any
    is_trial: bool = False
    voice_capable: bool = True
    verified_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Set when a channel with campaigns in History is removed: it leaves every list and can't
    # be used again, but History keeps showing which channel placed those calls.
    archived_at: datetime | None = None


class ContactList(SQLModel, table=True):
    """A saved list of contacts that a campaign can call instead of an uploaded file."""

    __tablename__ = "contact_list"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Contact(SQLModel, table=True):
    """One person on a contact list: each E.164 number at most once per list."""

    __table_args__ = (UniqueConstraint("list_id", "phone", name="uq_contact_list_phone"),)
    id: int | None = Field(default=None, primary_key=True)
    # No index of its own: uq_contact_list_phone starts with list_id and serves its lookups.
    list_id: int = Field(foreign_key="contact_list.id", ondelete="CASCADE")
    name: str | None = None
    phone: str = Field(max_length=32)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class DoNotCall(SQLModel, table=True):
    """A number nobody may call, whatever the campaign."""

    __tablename__ = "do_not_call"
    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(unique=True, index=True, max_length=32)
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Recording(SQLModel, table=True):
    """An uploaded message, served to Twilio at an unguessable URL."""

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(unique=True, index=True, max_length=64)  # the URL's secret part
    filename: str  # as uploaded, for display
    extension: str = Field(max_length=8)  # mp3, wav, aiff
    content_type: str = Field(max_length=64)
    size_bytes: int
    duration_seconds: float
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Campaign(SQLModel, table=True):
    """One broadcast: who to call, from which channel, with which recording, when."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    recording_id: int = Field(foreign_key="recording.id")
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    scheduled_at: datetime = Field(index=True)  # UTC
    time_zone: str = "UTC"  # the creator's zone, for display
    status: str = Field(default=CampaignStatus.SCHEDULED, index=True, max_length=16)
    voicemail_full_message: bool = False
    allow_duplicates: bool = False
    retry_count: int = 0  # extra attempts for busy / no-answer / failed
    retry_interval_seconds: int = 600
    window_start: str | None = None  # "HH:MM" in the recipient's local time
    window_end: str | None = None
    source: str = ""  # file name or "contact list: NAME"
    rows: int = 0
    invalid: int = 0
    duplicates: int = 0
    to_call: int = 0
    lease_owner: str | None = None  # dispatcher holding the campaign
    lease_until: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None


class Call(SQLModel, table=True):
    """One recipient of a campaign and what happened when it was called."""

    __table_args__ = (Index("ix_call_dispatch", "campaign_id", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    # No single-column indexes on campaign_id or phone: ix_call_dispatch starts with
    # campaign_id, nothing looks a call up by exact phone, and each extra index slowed the
    # bulk insert of a 1M-row campaign by about a quarter (bench/bench_pipeline.py).
    campaign_id: int = Field(foreign_key="campaign.id", ondelete="CASCADE")
    row: int  # as a spreadsheet shows it; a contact's 1-based position in its list
    name: str | None = None
    phone: str = Field(max_length=32)  # E.164
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=CallState.PENDING, max_length=16)
    next_attempt_at: datetime | None = None
    claim_token: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = None
    attempts: int = 0  # calls placed (or possibly placed) so far
    sid: str | None = Field(default=None, unique=True, max_length=64)
    status: str | None = Field(default=None, max_length=16)  # Twilio's status
    answered_by: str | None = Field(default=None, max_length=32)
    duration_seconds: int | None = None
    price: float | None = None
    price_unit: str | None = Field(default=None, max_length=8)
    error_code: int | None = None
    error_message: str | None = None
    skip_reason: str | None = None
    # The final status of the attempt before a retry (busy, no-answer, failed): History shows
    # "retrying" with it while the next attempt waits, instead of a bare "pending".
    previous_status: str | None = Field(default=None, max_length=16)
    placed_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class CampaignProblem(SQLModel, table=True):
    """A file row that was not called, with the reason, kept for History."""

    __tablename__ = "campaign_problem"
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    row: int
    value: str = ""
    reason: str
