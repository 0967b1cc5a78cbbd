"""Twilio, through the official SDK: the only module that imports `twilio.rest`.

- `make_client` builds an SDK client whose requests go to `TWILIO_API_BASE_URL` (the SDK has
  no such option: a TwilioHttpClient subclass rewrites scheme and host of each request).
- `place_call`, `find_calls`, `fetch_call`, `cancel_call` wrap the Calls resource and return
  plain `CallInfo` values; `fetch_account` reads an account; `check_account` verifies a
  channel's credentials and number.
- Every failure becomes a `TelephonyError` carrying Twilio's HTTP status and error code, or an
  `AmbiguousCallError` when a create request may have reached Twilio without an answer.

Thread safety: one client may be shared by many threads. The SDK keeps no per-request state
on the client except two test-only attributes (`_test_only_last_request/response`), and
requests' Session with urllib3's pool is safe for concurrent `send` (its cookie jar is
unused: Twilio sets no cookies). The pool holds CONNECTION_POOL_SIZE connections per host.

Tokens: the auth token only travels in the Basic Authorization header, which the SDK's own
request logging leaves out; this module logs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from bulkcall_core.errors import ChannelError, TelephonyError
from bulkcall_core.settings import Settings

# Concurrent HTTP connections per client: the dispatcher places calls from a thread pool and
# holding 100 calls per second at ~0.3 s per round trip needs ~30 in flight.
CONNECTION_POOL_SIZE = 64
# SDK clients kept per process (one per account and settings): enough for every channel of an
# install, small enough that stale ones (rotated tokens) fall out.
CLIENT_CACHE_SIZE = 32
# Twilio's largest list page; fewer round trips when reconciling thousands of calls.
MAX_PAGE_SIZE = 1000
# Every progress event, so History can show ringing and answered calls live.
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
# HTTP statuses Twilio answers for requests it did not process (its retry guidance): rate
# limited, internal error, unavailable. 502 and 504 come from a gateway that may have passed
# the request on, so for a create they are ambiguous rather than retryable.
NOT_PROCESSED_STATUSES = frozenset({429, 500, 503})
GATEWAY_STATUSES = frozenset({502, 504})
TOO_MANY_REQUESTS_CODE = 20429
AUTHENTICATE_CODE = 20003
ACCOUNT_NOT_ACTIVE_CODE = 20005


class AmbiguousCallError(TelephonyError):
    """A create request may have reached Twilio but no answer came back (timeout after
    sending, connection dropped, gateway error). The call may exist: look it up with
    `find_calls` before calling again."""


class TwilioUnreachableError(TelephonyError):
    """Twilio could not be reached and the request was not sent (connection refused, DNS,
    connect timeout), or a read failed; safe to retry."""


def is_retryable(exc: BaseException) -> bool:
    """True when the request was not processed and may be sent again after a backoff:
    429 / 20429, 500, 503, or Twilio unreachable before sending. False for an
    AmbiguousCallError (look the call up first) and for any other 4xx (that call failed)."""
    if isinstance(exc, TwilioUnreachableError):
        return True
    if not isinstance(exc, TelephonyError) or isinstance(exc, AmbiguousCallError):
        return False
    return exc.code == TOO_MANY_REQUESTS_CODE or exc.status in NOT_PROCESSED_STATUSES


@dataclass(frozen=True)
class CallInfo:
    """A Twilio call as this product uses it. Datetimes are aware UTC; price is Twilio's
    value (negative = charged), None until Twilio reports it."""

    sid: str
    to: str
    from_: str
    status: str
    answered_by: str | None = None
    duration: int | None = None
    price: float | None = None
    price_unit: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    date_created: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(frozen=True)
class AccountInfo:
    """A Twilio account as `fetch_account` reports it."""

    sid: str
    friendly_name: str
    status: str  # active, suspended or closed
    is_trial: bool


@dataclass(frozen=True)
class AccountCheck:
    """What verifying a channel found out about its account and number."""

    friendly_name: str
    is_trial: bool
    voice_capable: bool
    number_sid: str


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends each SDK request to `base_url` instead of api.twilio.com, keeping path and query.

    A path in base_url (a Twilio-compatible provider under /api/laml, say) is put in front of
    Twilio's path unless the provider's own next-page links already carry it.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(pool_connections=True, timeout=timeout)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=CONNECTION_POOL_SIZE)
        assert self.session is not None
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._base = urlsplit(base_url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        prefix = self._base.path.rstrip("/")
        path = parts.path if parts.path.startswith(prefix + "/") else prefix + parts.path
        target = urlunsplit((self._base.scheme, self._base.netloc, path, parts.query, ""))
        return super().request(method, target, *args, **kwargs)


def make_client(*, account_sid: str, auth_token: str, settings: Settings) -> Client:
    """An SDK client for one account, talking to settings.twilio_api_base_url with
    settings.twilio_timeout_seconds per request. Safe to share between threads.

    Clients are kept per process (CLIENT_CACHE_SIZE), so that campaigns and polls of one
    account reuse open connections; the process id is part of the key because a forked
    worker must not share its parent's sockets.
    """
    return _cached_client(
        os.getpid(),
        account_sid,
        auth_token,
        settings.twilio_api_base_url,
        settings.twilio_timeout_seconds,
    )


@lru_cache(maxsize=CLIENT_CACHE_SIZE)
def _cached_client(
    _pid: int, account_sid: str, auth_token: str, base_url: str, timeout: float
) -> Client:
    http_client = _BaseUrlHttpClient(base_url, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


def play_twiml(audio_url: str) -> str:
    """TwiML that plays the recording at `audio_url` once."""
    response = VoiceResponse()
    response.play(audio_url)
    return str(response)


def place_call(
    client: Client,
    *,
    to: str,
    from_: str,
    twiml: str,
    status_callback: str | None,
    machine_detection: str | None = None,
    async_amd: bool = False,
    amd_callback: str | None = None,
    timeout_seconds: int | None = None,
) -> CallInfo:
    """Create one outbound call playing `twiml`; the CallInfo of the queued call.

    status_callback receives every progress event (STATUS_CALLBACK_EVENTS).
    machine_detection: None, "Enable" or "DetectMessageEnd" (playback starts after the beep).
    Raises TelephonyError (Twilio refused: code and message kept), AmbiguousCallError (the
    call may exist), TwilioUnreachableError (not sent).
    """
    options: dict[str, Any] = {"to": to, "from_": from_, "twiml": twiml}
    if status_callback:
        options["status_callback"] = status_callback
        options["status_callback_event"] = list(STATUS_CALLBACK_EVENTS)
        options["status_callback_method"] = "POST"
    if machine_detection:
        options["machine_detection"] = machine_detection
        if async_amd:
            options["async_amd"] = "true"
            if amd_callback:
                options["async_amd_status_callback"] = amd_callback
                options["async_amd_status_callback_method"] = "POST"
    if timeout_seconds is not None:
        options["timeout"] = timeout_seconds
    with _translated(creating=True):
        return _call_info(client.calls.create(**options))


def fetch_call(client: Client, sid: str) -> CallInfo:
    """The call `sid` as Twilio knows it now. Raises TelephonyError (404: code 20404)."""
    with _translated(creating=False):
        return _call_info(client.calls(sid).fetch())


def fetch_account(client: Client, sid: str) -> AccountInfo:
    """The account `sid` as Twilio reports it to `client`'s credentials. Raises
    TelephonyError (401 / 20003: refused credentials; TwilioUnreachableError: no answer)."""
    with _translated(creating=False):
        account = client.api.v2010.accounts(sid).fetch()
    return AccountInfo(
        sid=account.sid or sid,
        friendly_name=account.friendly_name or sid,
        status=account.status or "",
        is_trial=account.type == "Trial",
    )


def cancel_call(client: Client, sid: str) -> CallInfo:
    """End the call: a queued or ringing call is canceled, an answered one hung up."""
    with _translated(creating=False):
        call = client.calls(sid).fetch()
        wanted = "completed" if call.status == "in-progress" else "canceled"
        return _call_info(client.calls(sid).update(status=wanted))


def find_calls(
    client: Client,
    *,
    from_: str,
    to: str | None = None,
    started_after: datetime,
    page_size: int = MAX_PAGE_SIZE,
) -> list[CallInfo]:
    """Calls from `from_` (and to `to`) created at or after `started_after`, newest first,
    across every page.

    Twilio's StartTime filter works by UTC date and skips calls not started yet (queued calls
    have no start_time), so: with `to`, no date filter is sent and the few calls between the
    two numbers are filtered here on date_created; without `to`, StartTime>= the day before
    narrows the list (queued calls may be missing then: fetch those by SID). Callers allow
    for clock skew between this machine and Twilio by passing an earlier `started_after`.
    """
    filters: dict[str, Any] = {"from_": from_, "page_size": page_size}
    if to is not None:
        filters["to"] = to
    else:
        filters["start_time_after"] = (started_after - timedelta(days=1)).date()
    with _translated(creating=False):
        calls = [_call_info(call) for call in client.calls.stream(**filters)]
    # date_created has whole seconds: a call made in the same second as started_after counts.
    since = started_after.astimezone(UTC).replace(microsecond=0)
    return [c for c in calls if c.date_created is None or c.date_created >= since]


def check_account(
    *, account_sid: str, auth_token: str, from_number: str, settings: Settings
) -> AccountCheck:
    """Verify that the credentials work and `from_number` is a voice number of the account.

    Raises ChannelError with what to do: refused credentials, an inactive account, a number
    not on the account, a number that cannot make voice calls, Twilio unreachable.
    """
    client = make_client(account_sid=account_sid, auth_token=auth_token, settings=settings)
    try:
        account = fetch_account(client, account_sid)
        with _translated(creating=False):
            numbers = client.incoming_phone_numbers.list(phone_number=from_number, limit=20)
    except TelephonyError as exc:
        raise _channel_error(exc, account_sid) from None
    if account.status != "active":
        raise ChannelError(
            f"Twilio account {account_sid} is {account.status}; reactivate it in the Twilio "
            "console or use another account",
            field="account_sid",
        )
    number = next((n for n in numbers if n.phone_number == from_number), None)
    if number is None:
        raise ChannelError(
            f"{from_number} is not a number of account {account_sid}; buy or port it in the "
            "Twilio console, or pick one of the account's numbers",
            field="from_number",
        )
    voice = bool((number.capabilities or {}).get("voice"))
    if not voice:
        raise ChannelError(
            f"{from_number} cannot make voice calls (Twilio lists it without the voice "
            "capability); pick a voice-capable number",
            field="from_number",
        )
    return AccountCheck(
        friendly_name=account.friendly_name,
        is_trial=account.is_trial,
        voice_capable=voice,
        number_sid=number.sid,
    )


@contextmanager
def _translated(*, creating: bool) -> Iterator[None]:
    """Turn the SDK's and requests' exceptions into TelephonyError and its subclasses."""
    try:
        yield
    except TwilioException as exc:
        raise _rest_error(exc, creating=creating) from None
    except requests.RequestException as exc:
        raise _network_error(exc, creating=creating) from None


def _channel_error(error: TelephonyError, account_sid: str) -> ChannelError:
    if error.code == ACCOUNT_NOT_ACTIVE_CODE:
        return ChannelError(
            f"Twilio refused account {account_sid}: it is not active (error {error.code}); "
            "reactivate it in the Twilio console or use another account",
            field="account_sid",
        )
    if error.status == 401 or error.code == AUTHENTICATE_CODE:
        return ChannelError(
            f"Twilio refused the Account SID / auth token (error {error.code or 20003}); "
            f"check both for account {account_sid} in the Twilio console",
            field="auth_token",
        )
    return ChannelError(f"Could not verify the channel with Twilio: {error.message}")


def _call_info(call: Any) -> CallInfo:
    return CallInfo(
        sid=call.sid,
        to=call.to,
        from_=call._from,  # noqa: SLF001 - the SDK's name for the "from" field
        status=call.status,
        answered_by=call.answered_by,
        duration=int(call.duration) if call.duration not in (None, "") else None,
        price=float(call.price) if call.price not in (None, "") else None,
        price_unit=call.price_unit,
        date_created=_utc(call.date_created),
        start_time=_utc(call.start_time),
        end_time=_utc(call.end_time),
    )


def _utc(moment: datetime | None) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rest_error(exc: TwilioException, *, creating: bool) -> TelephonyError:
    """Twilio answered with an error: keep its status, code and message."""
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if isinstance(exc, TwilioRestException):
        message = (exc.msg or "").split(" record: ", 1)[-1]
    else:  # RFC 9457 answers (TwilioServiceException) carry title and detail instead
        message = getattr(exc, "detail", None) or getattr(exc, "title", None) or str(exc)
    text = f"Twilio error {code}: {message}" if code else f"Twilio answered {status}: {message}"
    error_class = AmbiguousCallError if creating and status in GATEWAY_STATUSES else TelephonyError
    return error_class(text, code=code, status=status)


def _network_error(exc: requests.RequestException, *, creating: bool) -> TelephonyError:
    """No answer from Twilio: was the request possibly received?"""
    if _not_sent(exc):
        return TwilioUnreachableError(f"Twilio could not be reached: {type(exc).__name__}")
    if creating:
        return AmbiguousCallError(
            f"No answer from Twilio after sending the call ({type(exc).__name__}); "
            "the call may have been placed"
        )
    return TwilioUnreachableError(f"No answer from Twilio ({type(exc).__name__})")


def _not_sent(exc: requests.RequestException) -> bool:
    """True when the failure happened before the request could reach Twilio."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        text = repr(exc.args)
        return any(
            marker in text
            for marker in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
        )
    return False
