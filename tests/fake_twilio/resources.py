"""The fake's records (accounts, numbers, calls) and their JSON, shaped like Twilio's.

Shapes follow the schemas `api.v2010.account`, `api.v2010.account.call` and
`api.v2010.account.incoming_phone_number` of Twilio's OpenAPI document; the server checks each
answer against them and records any difference as a violation.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import phonenumbers

API_VERSION = "2010-04-01"
PRICE_PER_MINUTE = "0.01300"  # what a US outbound minute costs, enough for price formatting
CALL_SUBRESOURCES = (
    "notifications",
    "recordings",
    "payments",
    "events",
    "siprec",
    "streams",
    "transcriptions",
    "user_defined_message_subscriptions",
    "user_defined_messages",
)
ACCOUNT_SUBRESOURCES = (
    "available_phone_numbers",
    "calls",
    "conferences",
    "incoming_phone_numbers",
    "notifications",
    "outgoing_caller_ids",
    "recordings",
    "transcriptions",
    "addresses",
    "signing_keys",
    "connect_apps",
    "sip",
    "authorized_connect_apps",
    "usage",
    "keys",
    "applications",
    "short_codes",
    "queues",
    "messages",
    "balance",
)


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 lower-case hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format: 'Tue, 31 Aug 2010 20:36:28 +0000'."""
    return format_datetime(moment.astimezone(UTC)) if moment else None


def formatted(number: str) -> str:
    """Twilio's *_formatted: '(415) 555-0100' for North America, else the international form."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


@dataclass(frozen=True)
class Account:
    """Credentials of a fake account, as returned by `FakeTwilio.add_account`."""

    sid: str
    token: str


@dataclass
class AccountRecord:
    sid: str
    token: str
    friendly_name: str
    trial: bool
    status: str = "active"
    numbers: dict[str, NumberRecord] = field(default_factory=dict)  # E.164 -> record
    verified_numbers: set[str] = field(default_factory=set)  # a trial account may call these
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.sid}"
        return {
            "auth_token": self.token,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_created),
            "friendly_name": self.friendly_name,
            "owner_account_sid": self.sid,
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                name: f"{base}/{_subresource_path(name)}.json" for name in ACCOUNT_SUBRESOURCES
            },
            "type": "Trial" if self.trial else "Full",
            "uri": f"{base}.json",
        }


def _subresource_path(name: str) -> str:
    special = {"short_codes": "SMS/ShortCodes", "sip": "SIP"}
    if name in special:
        return special[name]
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass
class NumberRecord:
    sid: str
    account_sid: str
    phone_number: str
    voice: bool
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        created = rfc2822(self.date_created)
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        return {
            "account_sid": self.account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": API_VERSION,
            "beta": False,
            "capabilities": {"voice": self.voice, "sms": True, "mms": False, "fax": False},
            "date_created": created,
            "date_updated": created,
            "emergency_status": "Inactive",
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "friendly_name": formatted(self.phone_number),
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": self.phone_number,
            "sid": self.sid,
            "sms_application_sid": None,
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": "POST",
            "sms_url": "",
            "status_callback": "",
            "status_callback_method": "POST",
            "trunk_sid": None,
            "uri": f"{base}/IncomingPhoneNumbers/{self.sid}.json",
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": None,
            "voice_method": "POST",
            "voice_url": None,
            "bundle_sid": None,
            "voice_receive_mode": "voice",
            "status": "in-use",
            "type": "local",
        }


@dataclass(frozen=True)
class Outcome:
    """What happens to a call placed to a number.

    status: the final status (completed, busy, no-answer, failed).
    answered_by: AnsweredBy when machine detection was asked for (None: 'human' then).
    duration: the call's reported length in seconds once answered.
    ring_seconds: how long (real seconds) it rings in the fake; None = one `speed` step.
    """

    status: str = "completed"
    answered_by: str | None = None
    duration: int = 12
    ring_seconds: float | None = None


@dataclass
class FakeCall:
    """A call created through the fake, with the request's fields and its life so far."""

    sid: str
    account_sid: str
    to: str
    from_: str
    params: dict[str, list[str]]  # the create request's form fields, in arrival order
    phone_number_sid: str | None
    outcome: Outcome
    date_created: datetime
    status: str = "queued"
    date_updated: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    answered_by: str | None = None
    price: str | None = None
    sequence: int = 0  # SequenceNumber of the next status callback
    events: list[str] = field(default_factory=list)  # statuses it went through, in order

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else None

    @property
    def is_final(self) -> bool:
        return self.status in ("completed", "busy", "no-answer", "failed", "canceled")

    def finish(self, status: str, now: datetime) -> None:
        self.status = status
        self.end_time = now
        self.date_updated = now
        answered = status == "completed"
        self.duration = self.outcome.duration if answered else 0
        if answered and self.duration:
            minutes = math.ceil(self.duration / 60)
            self.price = f"-{float(PRICE_PER_MINUTE) * minutes:.5f}"

    def to_json(self) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "sid": self.sid,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated or self.date_created),
            "parent_call_sid": None,
            "account_sid": self.account_sid,
            "to": self.to,
            "to_formatted": formatted(self.to),
            "from": self.from_,
            "from_formatted": formatted(self.from_),
            "phone_number_sid": self.phone_number_sid,
            "status": self.status,
            "start_time": rfc2822(self.start_time),
            "end_time": rfc2822(self.end_time),
            "duration": None if self.duration is None else str(self.duration),
            "price": self.price,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": f"{base}.json",
            "subresource_uris": {
                name: f"{base}/{_subresource_path(name)}.json" for name in CALL_SUBRESOURCES
            },
        }


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error JSON."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
