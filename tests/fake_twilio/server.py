"""The fake Twilio: a real HTTP server on loopback that speaks Api v2010.

Start it in the test process (`FakeTwilio().start()` or `with FakeTwilio() as fake:`); point
`TWILIO_API_BASE_URL` at `fake.base_url` and the official SDK talks to it unchanged, from this
process or from worker subprocesses. Every request is checked against Twilio's OpenAPI document;
a request Twilio would refuse as malformed gets Twilio's 400 (or 401/404/405) answer and is
recorded in `fake.violations`, so tests end with `assert fake.violations == []`.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fake_twilio import handlers
from tests.fake_twilio.lifecycle import FakeCallback, Lifecycle
from tests.fake_twilio.openapi import load_spec
from tests.fake_twilio.resources import (
    Account,
    AccountRecord,
    FakeCall,
    NumberRecord,
    Outcome,
    new_sid,
)

# Seconds per lifecycle step (queued -> initiated -> ringing -> in-progress -> completed).
DEFAULT_SPEED = 0.05
# How often the accept loop checks for stop(); the stdlib's 0.5 s slows every test's teardown.
SHUTDOWN_POLL_SECONDS = 0.02


@dataclass
class RequestRecord:
    """One HTTP request the fake received."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: dict[str, list[str]]
    account_sid: str | None  # the Basic auth user name
    at: float  # time.time() on arrival
    status: int | None = None  # the status answered; None if hung or dropped


@dataclass
class Violation:
    """A request Twilio would refuse as malformed (or the fake answering off-schema)."""

    method: str
    path: str
    problems: list[str]

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {'; '.join(self.problems)}"


@dataclass
class Fault:
    """An injected failure for the next create request."""

    kind: str  # "fail", "hang" or "drop"
    status: int = 500
    code: int | None = None
    message: str = "Internal Server Error"
    create: bool = False  # hang/drop: create the call before going silent
    seconds: float | None = None  # hang: how long before closing; None = until stop()


class FakeTwilio:
    """A Twilio REST server on 127.0.0.1 with controls for tests; see the module docstring."""

    def __init__(self, *, speed: float = DEFAULT_SPEED, max_cps: float | None = None) -> None:
        self.spec = load_spec()
        self.lock = threading.RLock()
        self.speed = speed
        self.max_cps = max_cps
        self.default_outcome = Outcome()
        self.outcome_for: dict[str, Outcome] = {}
        self.fail_numbers: dict[str, tuple[int, int, str]] = {}
        # True: a create answers only after the call's whole life and every callback (see
        # Lifecycle.rush): callbacks overtake the create's answer.
        self.callback_before_response = False
        self._accounts: dict[str, AccountRecord] = {}
        self._calls: list[FakeCall] = []
        self._calls_by_sid: dict[str, FakeCall] = {}
        self._requests: list[RequestRecord] = []
        self._violations: list[Violation] = []
        self._callbacks: list[FakeCallback] = []
        self._create_times: list[float] = []
        self._recent_creates: dict[str, deque[float]] = {}
        self._faults: deque[Fault] = deque()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.lifecycle: Lifecycle | None = None

    # -- running -------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeTwilio:
        """Listen on 127.0.0.1:`port` (0 = a free one) in a background thread."""
        self._server = _Server(("127.0.0.1", port), _handler_class(self))
        self.lifecycle = Lifecycle(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="fake-twilio-http",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT, the value for TWILIO_API_BASE_URL."""
        assert self._server is not None, "call start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving, release hung connections, stop the clock and callbacks."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            with self.lock:
                connections = list(self._connections)
            for connection in connections:
                _close_quietly(connection)
            self._server.server_close()
        if self.lifecycle is not None:
            self.lifecycle.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilio:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- set-up --------------------------------------------------------------------------

    def add_account(
        self,
        sid: str | None = None,
        token: str | None = None,
        numbers: tuple[str, ...] | list[str] = ("+14155550100",),
        trial: bool = False,
        voice: bool = True,
        friendly_name: str | None = None,
        verified_numbers: tuple[str, ...] | list[str] = (),
    ) -> Account:
        """Create an account owning `numbers` (voice-capable unless voice=False).

        A trial account may only call its own numbers and `verified_numbers` (Twilio's 21219).
        """
        sid = sid or new_sid("AC")
        token = token or new_sid("")
        record = AccountRecord(sid, token, friendly_name or f"Account {sid[-4:]}", trial)
        for number in numbers:
            record.numbers[number] = NumberRecord(new_sid("PN"), sid, number, voice)
        record.verified_numbers.update(verified_numbers)
        with self.lock:
            self._accounts[sid] = record
        return Account(sid, token)

    def account(self, sid: str) -> AccountRecord:
        """The record of an account, to change e.g. its status ('suspended') or numbers."""
        with self.lock:
            return self._accounts[sid]

    def token_of(self, account_sid: str) -> str:
        with self.lock:
            return self._accounts[account_sid].token

    # -- fault injection -----------------------------------------------------------------

    def fail_next(
        self, n: int = 1, status: int = 500, code: int | None = None, message: str | None = None
    ) -> None:
        """The next `n` call creates answer `status` with Twilio's error JSON; no call is made."""
        default = "Too Many Requests" if status == 429 else "Internal Server Error"
        fault = Fault(
            "fail", status, code or (20429 if status == 429 else 20500), message or default
        )
        with self.lock:
            self._faults.extend([fault] * n)

    def hang_next(self, n: int = 1, create: bool = True, seconds: float | None = None) -> None:
        """The next `n` call creates get no answer: the connection is held `seconds` (None:
        until stop()) and then closed. create=True makes the call first (it then rings and
        completes as usual): the ambiguous failure the engine must resolve."""
        with self.lock:
            self._faults.extend([Fault("hang", create=create, seconds=seconds)] * n)

    def drop_next(self, n: int = 1, create: bool = False) -> None:
        """The next `n` call creates have their connection closed without an answer."""
        with self.lock:
            self._faults.extend([Fault("drop", create=create, seconds=0)] * n)

    # -- introspection -------------------------------------------------------------------

    @property
    def calls(self) -> list[FakeCall]:
        """Every call created, in creation order."""
        with self.lock:
            return list(self._calls)

    def calls_to(self, number: str) -> list[FakeCall]:
        with self.lock:
            return [call for call in self._calls if call.to == number]

    def call(self, sid: str) -> FakeCall:
        with self.lock:
            return self._calls_by_sid[sid]

    @property
    def requests(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._requests)

    @property
    def violations(self) -> list[Violation]:
        with self.lock:
            return list(self._violations)

    @property
    def callbacks(self) -> list[FakeCallback]:
        with self.lock:
            return list(self._callbacks)

    @property
    def create_times(self) -> list[float]:
        """time.time() of every accepted create (201, or hung/dropped after creating)."""
        with self.lock:
            return list(self._create_times)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Poll `predicate` until it is true or `timeout` passes; returns its last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every call is final and every callback delivered."""

        def idle() -> bool:
            assert self.lifecycle is not None
            return all(c.is_final for c in self.calls) and not self.lifecycle.busy

        return self.wait_for(idle, timeout)

    # -- used by the handlers ------------------------------------------------------------

    def record_violation(self, method: str, path: str, problems: list[str]) -> None:
        with self.lock:
            self._violations.append(Violation(method, path, problems))

    def next_fault(self) -> Fault | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def over_rate(self, account_sid: str, now: float) -> bool:
        """True if one more create now would exceed max_cps in the last 1-second window."""
        if self.max_cps is None:
            return False
        with self.lock:
            recent = self._recent_creates.setdefault(account_sid, deque())
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            return len(recent) >= self.max_cps

    def add_call(self, call: FakeCall) -> None:
        now = time.time()
        with self.lock:
            self._calls.append(call)
            self._calls_by_sid[call.sid] = call
            self._create_times.append(now)
            self._recent_creates.setdefault(call.account_sid, deque()).append(now)
        assert self.lifecycle is not None
        if not self.callback_before_response:  # else the create handler rushes it
            self.lifecycle.start(call)

    def find_account(self, sid: str) -> AccountRecord | None:
        with self.lock:
            return self._accounts.get(sid)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The stdlib's backlog of 5 drops the SYNs of a dispatcher opening dozens of connections
    # at once (the client then waits a full SYN retransmit and times out).
    request_queue_size = 256


def _close_quietly(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _handler_class(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(_TwilioHandler):
        pass

    Handler.fake = fake
    return Handler


class _TwilioHandler(BaseHTTPRequestHandler):
    """Parses one request, checks it against the document, and hands it to `handlers`."""

    fake: FakeTwilio
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled session expects
    server_version = "FakeTwilio/1.0"

    def setup(self) -> None:
        super().setup()
        with self.fake.lock:
            self.fake._connections.add(self.connection)  # noqa: SLF001

    def finish(self) -> None:
        with self.fake.lock:
            self.fake._connections.discard(self.connection)  # noqa: SLF001
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the request log is `fake.requests`."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = RequestRecord(
            method=method,
            path=parts.path,
            query=parse_qsl(parts.query, keep_blank_values=True),
            form=_form_fields(body.decode("utf-8", "replace")),
            account_sid=_basic_user(self.headers.get("Authorization")),
            at=time.time(),
        )
        with self.fake.lock:
            self.fake._requests.append(record)  # noqa: SLF001
        try:
            answer = handlers.handle(self.fake, record, self.headers)
        except Exception as exc:  # noqa: BLE001 - a fake's bug must show, not drop the line
            self.fake.record_violation(method, parts.path, [f"the fake crashed: {exc!r}"])
            answer = handlers.error(500, 20500, "Internal Server Error")
        if answer.silent:
            self._go_silent(answer.silent_seconds)
            return
        record.status = answer.status
        self._send_json(answer.status, answer.body, answer.headers)

    def _go_silent(self, seconds: float | None) -> None:
        """Hold the connection (hang) and close it without an answer."""
        if seconds:
            self.fake._stopping.wait(seconds)  # noqa: SLF001
        elif seconds is None:
            self.fake._stopping.wait()  # noqa: SLF001
        self.close_connection = True
        _close_quietly(self.connection)

    def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Twilio-Request-Id", new_sid("RQ"))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _form_fields(body: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    return fields


def _basic_user(header: str | None) -> str | None:
    credentials = basic_credentials(header)
    return credentials[0] if credentials else None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from a Basic Authorization header; None when absent or malformed."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password
