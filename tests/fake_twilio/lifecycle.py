"""Moving fake calls through their statuses and posting Twilio's signed status callbacks.

One timer thread runs every scheduled step (so a thousand ringing calls cost no thousand
threads); callbacks go out through a small pool so that a slow receiver does not stall the
clock. Callbacks are signed exactly as Twilio signs them (`X-Twilio-Signature`: HMAC-SHA1 of the
URL followed by the sorted POST parameters, base64), computed with the SDK's RequestValidator.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from tests.fake_twilio.resources import API_VERSION, FakeCall, rfc2822

if TYPE_CHECKING:
    from tests.fake_twilio.server import FakeTwilio

# Callback deliveries in flight at once; Twilio's own fan-out is unbounded, the fake needs few.
CALLBACK_WORKERS = 8
# How long the fake waits for the product's web hook to answer a callback.
CALLBACK_TIMEOUT_SECONDS = 5.0
# SIP response code Twilio reports per final status.
SIP_CODES = {"completed": 200, "busy": 486, "no-answer": 487, "failed": 500, "canceled": 487}


@dataclass
class FakeCallback:
    """One status or AMD callback the fake sent (or tried to send)."""

    url: str
    method: str
    params: dict[str, str]
    signature: str
    event: str  # initiated, ringing, answered, completed, or amd
    call_sid: str
    sent_at: float  # time.time()
    status_code: int | None = None  # the receiver's HTTP answer; None if unreachable
    error: str | None = None


class Clock:
    """One thread that runs callables at their time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fake-twilio-clock", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        with self._condition:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), action))
            self._condition.notify()

    @property
    def pending(self) -> int:
        with self._condition:
            return len(self._heap)

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._condition.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, action = heapq.heappop(self._heap)
            try:
                action()
            except Exception:  # noqa: BLE001 - one broken step must not stop every call's clock
                traceback.print_exc()


class Lifecycle:
    """Schedules each call's steps: initiated, ringing, answered (or not), completed."""

    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        self.clock = Clock()
        self.pool = ThreadPoolExecutor(CALLBACK_WORKERS, thread_name_prefix="fake-twilio-callback")
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._sessions = threading.local()  # one keep-alive session per callback thread
        self._rushed: set[str] = set()  # calls living their whole life inside their create

    @property
    def busy(self) -> bool:
        """True while steps are scheduled or callbacks are being delivered."""
        with self._in_flight_lock:
            return self.clock.pending > 0 or self._in_flight > 0

    def start(self, call: FakeCall) -> None:
        self.clock.call_later(self.fake.speed, lambda: self._initiated(call))

    def rush(self, call: FakeCall) -> None:
        """Run the call's whole life now, in this thread, each callback delivered (answered)
        before the next step: with `fake.callback_before_response` the create request only
        gets its answer after every callback, the race Twilio allows at its worst."""
        self._rushed.add(call.sid)
        try:
            self._initiated(call)
        finally:
            self._rushed.discard(call.sid)

    def _later(self, call: FakeCall, delay: float, action: Callable[[], None]) -> None:
        if call.sid in self._rushed:
            action()
        else:
            self.clock.call_later(delay, action)

    def stop(self) -> None:
        self.clock.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _step(self, call: FakeCall, event: str, status: str | None) -> bool:
        """Apply one status change under the fake's lock; False if the call already ended."""
        with self.fake.lock:
            if call.is_final:
                return False
            now = datetime.now(UTC)
            if status is not None:
                call.status = status
            call.date_updated = now
            call.events.append(event)
        return True

    def _initiated(self, call: FakeCall) -> None:
        with self.fake.lock:
            call.start_time = call.start_time or datetime.now(UTC)
        if self._step(call, "initiated", None):
            self.send_status(call, "initiated", "initiated")
            self._later(call, self.fake.speed, lambda: self._ringing(call))

    def _ringing(self, call: FakeCall) -> None:
        if self._step(call, "ringing", "ringing"):
            self.send_status(call, "ringing", "ringing")
            ring = call.outcome.ring_seconds
            self._later(
                call, self.fake.speed if ring is None else ring, lambda: self._pick_up(call)
            )

    def _pick_up(self, call: FakeCall) -> None:
        if call.outcome.status != "completed":
            self._finish(call, call.outcome.status)
            return
        detection = call.param("MachineDetection")
        async_amd = (call.param("AsyncAmd") or "false").lower() == "true"
        with self.fake.lock:
            if detection and not async_amd:
                call.answered_by = call.outcome.answered_by or "human"
        if self._step(call, "answered", "in-progress"):
            self.send_status(call, "answered", "in-progress")
            if detection and async_amd:
                self._later(call, self.fake.speed / 2, lambda: self._amd_result(call))
            self._later(call, self.fake.speed, lambda: self._finish(call, "completed"))

    def _amd_result(self, call: FakeCall) -> None:
        with self.fake.lock:
            call.answered_by = call.outcome.answered_by or "human"
        url = call.param("AsyncAmdStatusCallback")
        if url:
            params = {
                "AccountSid": call.account_sid,
                "CallSid": call.sid,
                "AnsweredBy": call.answered_by,
                "MachineDetectionDuration": "2150",
            }
            method = call.param("AsyncAmdStatusCallbackMethod") or "POST"
            self._deliver(call, "amd", url, method, params)

    def _finish(self, call: FakeCall, status: str) -> None:
        with self.fake.lock:
            if call.is_final:
                return
            call.finish(status, datetime.now(UTC))
            call.events.append(status)
        self.send_status(call, "completed", status)

    def send_status(self, call: FakeCall, event: str, call_status: str) -> None:
        """Post the status callback for `event` if the call subscribed to it."""
        url = call.param("StatusCallback")
        subscribed = call.params.get("StatusCallbackEvent") or ["completed"]
        if not url or event not in subscribed:
            return
        params = self._status_params(call, call_status)
        method = call.param("StatusCallbackMethod") or "POST"
        self._deliver(call, event, url, method, params)

    def _status_params(self, call: FakeCall, call_status: str) -> dict[str, str]:
        with self.fake.lock:
            params = {
                "AccountSid": call.account_sid,
                "ApiVersion": API_VERSION,
                "CallSid": call.sid,
                "CallStatus": call_status,
                "Called": call.to,
                "Caller": call.from_,
                "CallbackSource": "call-progress-events",
                "Direction": "outbound-api",
                "From": call.from_,
                "SequenceNumber": str(call.sequence),
                "Timestamp": rfc2822(datetime.now(UTC)) or "",
                "To": call.to,
            }
            call.sequence += 1
            if call.answered_by and call_status != "initiated":
                params["AnsweredBy"] = call.answered_by
            if call.is_final:
                params["CallDuration"] = str(call.duration or 0)
                params["Duration"] = str(math.ceil((call.duration or 0) / 60))
                params["SipResponseCode"] = str(SIP_CODES.get(call.status, 200))
        return params

    def _deliver(
        self, call: FakeCall, event: str, url: str, method: str, params: dict[str, str]
    ) -> None:
        with self.fake.lock:
            token = self.fake.token_of(call.account_sid)
        validator = RequestValidator(token)
        if method.upper() == "GET":
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
            signature = validator.compute_signature(url, {})
        else:
            signature = validator.compute_signature(url, params)
        record = FakeCallback(url, method.upper(), params, signature, event, call.sid, time.time())
        with self.fake.lock:
            self.fake._callbacks.append(record)  # noqa: SLF001 - the fake's own log
        with self._in_flight_lock:
            self._in_flight += 1
        if call.sid in self._rushed:
            self._post(record)
        else:
            self.pool.submit(self._post, record)

    def _post(self, record: FakeCallback) -> None:
        sequence = record.params.get("SequenceNumber", record.event)
        headers = {
            "X-Twilio-Signature": record.signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": f"{record.call_sid}-{sequence}",
        }
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        data = None if record.method == "GET" else record.params
        try:
            answer = session.request(
                record.method,
                record.url,
                data=data,
                headers=headers,
                timeout=CALLBACK_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            with self.fake.lock:
                record.status_code = answer.status_code
        except requests.RequestException as exc:
            with self.fake.lock:
                record.error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
