"""The fake Twilio speaks Twilio's protocol: it refuses what Twilio refuses (checked against the
OpenAPI document), answers in Twilio's shapes, and behaves as the engine's tests need."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bulkcall_core.settings import load_settings
from bulkcall_core.telephony import make_client
from tests.fake_twilio import FakeTwilio, Outcome
from tests.fake_twilio.openapi import load_spec, schema_problems

FROM = "+14155550100"
TO = "+14155550123"
TWIML = "<Response><Play>https://example.com/a.mp3</Play></Response>"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(speed=0.02) as fake:
        yield fake


@pytest.fixture
def account(fake: FakeTwilio):  # type: ignore[no-untyped-def]
    return fake.add_account(numbers=(FROM,))


@pytest.fixture
def client(fake: FakeTwilio, account) -> Client:  # type: ignore[no-untyped-def]
    settings = load_settings(twilio_api_base_url=fake.base_url, twilio_timeout_seconds=2)
    return make_client(account_sid=account.sid, auth_token=account.token, settings=settings)


class _Receiver:
    """A web hook that records every request it gets (headers, URL, form)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.received.append(
                    {
                        "path": self.path,
                        "signature": self.headers.get("X-Twilio-Signature"),
                        "form": dict(parse_qsl(body, keep_blank_values=True)),
                    }
                )
                self.send_response(204)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                receiver.received.append(
                    {
                        "path": self.path,
                        "signature": self.headers.get("X-Twilio-Signature"),
                        "form": dict(parse_qsl(self.path.partition("?")[2])),
                    }
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        serve.start()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    hook = _Receiver()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _post(fake: FakeTwilio, account, form, auth=None) -> requests.Response:  # type: ignore[no-untyped-def]
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json"
    return requests.post(url, data=form, auth=auth or (account.sid, account.token), timeout=5)


def _create_form(**extra: object) -> dict:
    return {"To": TO, "From": FROM, "Twiml": TWIML, **extra}


# -- requests checked against the document ----------------------------------------------


def test_sdk_create_is_accepted_and_answered_in_the_call_schema(fake, client) -> None:
    """The SDK's own create request passes every check; the answer fits api.v2010.account.call."""
    call = client.calls.create(
        to=TO,
        from_=FROM,
        twiml=TWIML,
        status_callback="https://hooks.example.com/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="DetectMessageEnd",
        async_amd=True,
        async_amd_status_callback="https://hooks.example.com/amd",
    )
    answer = requests.get(
        f"{fake.base_url}{call.uri}", auth=(call.account_sid, fake.token_of(call.account_sid))
    ).json()
    spec = load_spec()
    assert schema_problems(spec, spec.schema("api.v2010.account.call"), answer) == []
    assert answer["sid"].startswith("CA") and len(answer["sid"]) == 34
    assert answer["status"] == "queued" and answer["direction"] == "outbound-api"
    assert fake.violations == []


def test_repeated_status_callback_events_are_one_array_field(fake, account) -> None:
    """StatusCallbackEvent sent as repeated form fields is accepted and kept as a list."""
    form = list(_create_form().items()) + [
        ("StatusCallback", "https://hooks.example.com/s"),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "completed"),
    ]
    assert _post(fake, account, form).status_code == 201
    assert fake.calls[0].params["StatusCallbackEvent"] == ["initiated", "completed"]
    assert fake.violations == []


def test_missing_to_is_refused_with_21201_and_recorded(fake, account) -> None:
    answer = _post(fake, account, {"From": FROM, "Twiml": TWIML})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 21201 and body["status"] == 400
    assert body["more_info"] == "https://www.twilio.com/docs/errors/21201"
    assert len(fake.violations) == 1 and "To" in str(fake.violations[0])
    assert fake.calls == []


def test_missing_url_twiml_and_application_sid_is_refused(fake, account) -> None:
    answer = _post(fake, account, {"To": TO, "From": FROM})
    assert answer.json()["code"] == 21205
    assert fake.violations


@pytest.mark.parametrize(
    "field, value",
    [
        ("MachineDetection", "Detect"),
        ("StatusCallbackMethod", "PUT"),
        ("StatusCallbackEvent", "hung-up"),
        ("AsyncAmd", "maybe"),
        ("Timeout", "ten"),
        ("StatusCallback", "not a url"),
        ("StatusCallbackEvents", "completed"),  # a misspelt field name
    ],
)
def test_malformed_field_is_refused_and_recorded(fake, account, field, value) -> None:
    """Field types, enums, documented values and unknown names are checked."""
    answer = _post(fake, account, _create_form(**{field: value}))
    assert answer.status_code == 400
    assert field in str(fake.violations)
    assert fake.calls == []


@pytest.mark.parametrize("value", ["true", "false", "True"])
def test_async_amd_accepts_boolean_strings(fake, account, value) -> None:
    """AsyncAmd is a string; the SDK sends Python's True as 'True'."""
    answer = _post(fake, account, _create_form(MachineDetection="Enable", AsyncAmd=value))
    assert answer.status_code == 201
    assert fake.violations == []


def test_wrong_token_gets_401_20003_without_a_violation(fake, account) -> None:
    """Bad credentials are the caller's problem, not a protocol violation."""
    answer = _post(fake, account, _create_form(), auth=(account.sid, "wrong"))
    assert answer.status_code == 401
    assert answer.json()["code"] == 20003
    assert fake.violations == []


def test_missing_authorization_is_a_violation(fake, account) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json"
    answer = requests.post(url, data=_create_form(), timeout=5)
    assert answer.status_code == 401
    assert "Authorization" in str(fake.violations)


def test_another_accounts_path_is_refused(fake, account) -> None:
    other = fake.add_account()
    url = f"{fake.base_url}/2010-04-01/Accounts/{other.sid}/Calls.json"
    answer = requests.post(url, data=_create_form(), auth=(account.sid, account.token))
    assert answer.status_code == 401


def test_unknown_path_and_method_are_violations(fake, account) -> None:
    auth = (account.sid, account.token)
    base = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}"
    assert requests.get(f"{base}/Nothing.json", auth=auth).status_code == 404
    assert requests.put(f"{base}/Calls.json", auth=auth).status_code == 405
    assert len(fake.violations) == 2


def test_json_body_instead_of_form_is_a_violation(fake, account) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json"
    answer = requests.post(url, json=_create_form(), auth=(account.sid, account.token))
    assert answer.status_code == 400
    assert fake.violations


def test_malformed_date_filter_is_refused(fake, account) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json"
    answer = requests.get(
        url, params={"StartTime>": "yesterday"}, auth=(account.sid, account.token)
    )
    assert answer.status_code == 400
    assert "StartTime>" in str(fake.violations)


def test_page_size_above_1000_is_refused(fake, account) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json?PageSize=1001"
    assert requests.get(url, auth=(account.sid, account.token)).status_code == 400
    assert "PageSize" in str(fake.violations)


# -- answers shaped like Twilio's ---------------------------------------------------------


def test_account_and_numbers_fit_their_schemas(fake, client) -> None:
    """Trial flag, friendly name and voice capability as the SDK reads them."""
    trial = fake.add_account(numbers=("+447700900123",), trial=True, friendly_name="Acme")
    auth = (trial.sid, trial.token)
    base = f"{fake.base_url}/2010-04-01/Accounts/{trial.sid}"
    spec = load_spec()
    account = requests.get(f"{base}.json", auth=auth).json()
    assert schema_problems(spec, spec.schema("api.v2010.account"), account) == []
    assert account["type"] == "Trial" and account["friendly_name"] == "Acme"
    numbers = requests.get(
        f"{base}/IncomingPhoneNumbers.json", params={"PhoneNumber": "+447700900123"}, auth=auth
    ).json()
    number = numbers["incoming_phone_numbers"][0]
    schema = spec.schema("api.v2010.account.incoming_phone_number")
    assert schema_problems(spec, schema, number) == []
    assert number["capabilities"]["voice"] is True
    assert fake.violations == []


def test_list_pages_follow_next_page_uri_like_twilio(fake, account, client) -> None:
    """PageSize/Page/PageToken paging; the SDK walks every page; the list fits its schema."""
    for _ in range(5):
        assert _post(fake, account, _create_form()).status_code == 201
    auth = (account.sid, account.token)
    first = requests.get(
        f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json",
        params={"To": TO, "PageSize": 2},
        auth=auth,
    ).json()
    spec = load_spec()
    operation, _, _ = spec.match("GET", f"/2010-04-01/Accounts/{account.sid}/Calls.json")
    assert schema_problems(spec, operation.response_schema, first) == []
    assert len(first["calls"]) == 2 and first["previous_page_uri"] is None
    assert "PageToken=PA" in first["next_page_uri"]
    listed = [call.sid for call in client.calls.stream(to=TO, page_size=2)]
    assert sorted(listed) == sorted(call.sid for call in fake.calls)
    assert listed == [call.sid for call in reversed(fake.calls)]  # newest first
    assert fake.violations == []


def test_start_time_filter_is_by_date_and_skips_unstarted_calls(fake, account) -> None:
    """Twilio's StartTime>= compares UTC dates; a queued call has no start_time yet."""
    fake.speed = 30  # calls stay queued
    assert _post(fake, account, _create_form()).status_code == 201
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json"
    auth = (account.sid, account.token)
    assert requests.get(url, auth=auth).json()["calls"]
    today = fake.calls[0].date_created.date().isoformat()
    listed = requests.get(url, params={"StartTime>": today}, auth=auth).json()
    assert listed["calls"] == []


# -- behaviour controls -------------------------------------------------------------------


def test_creates_beyond_max_cps_get_429_20429(fake, account) -> None:
    """No 1-second window holds more than max_cps accepted creates; the rest get 429."""
    fake.max_cps = 2
    answers = [_post(fake, account, _create_form()) for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(a.json()["code"] == 20429 for a in limited)
    times = fake.create_times
    assert all(sum(1 for t in times if s <= t < s + 1) <= 2 for s in times)


def test_max_cps_is_per_account(fake, account) -> None:
    fake.max_cps = 1
    other = fake.add_account(numbers=("+14155550199",))
    assert _post(fake, account, _create_form()).status_code == 201
    form = {"To": TO, "From": "+14155550199", "Twiml": TWIML}
    assert _post(fake, other, form).status_code == 201


def test_fail_next_answers_the_given_error_and_creates_nothing(fake, account) -> None:
    fake.fail_next(2, status=503, code=20503)
    first, second, third = (_post(fake, account, _create_form()) for _ in range(3))
    assert (first.status_code, first.json()["code"]) == (503, 20503)
    assert second.status_code == 503 and third.status_code == 201
    assert len(fake.calls) == 1


def test_fail_numbers_refuses_that_number_only(fake, account) -> None:
    fake.fail_numbers[TO] = (400, 21217, "Phone number does not appear to be valid")
    answer = _post(fake, account, _create_form())
    assert answer.json()["code"] == 21217
    assert _post(fake, account, _create_form(To="+14155550124")).status_code == 201
    assert fake.violations == []


def test_trial_account_cannot_call_unverified_numbers(fake) -> None:
    trial = fake.add_account(numbers=(FROM,), trial=True, verified_numbers=("+14155550124",))
    assert _post(fake, trial, _create_form()).json()["code"] == 21219
    assert _post(fake, trial, _create_form(To="+14155550124")).status_code == 201


def test_from_number_must_belong_to_the_account(fake, account) -> None:
    answer = _post(fake, account, _create_form(From="+14155550111"))
    assert answer.json()["code"] == 21210


def test_hang_with_create_makes_the_call_but_never_answers(fake, account) -> None:
    fake.hang_next(1, create=True)
    with pytest.raises(requests.Timeout):
        _post_with_timeout(fake, account, 0.5)
    assert len(fake.calls_to(TO)) == 1
    assert fake.requests[-1].status is None


def test_hang_without_create_makes_no_call(fake, account) -> None:
    fake.hang_next(1, create=False, seconds=0.2)
    with pytest.raises(requests.RequestException):
        _post_with_timeout(fake, account, 2)
    assert fake.calls == []


def test_drop_closes_the_connection_without_an_answer(fake, account) -> None:
    fake.drop_next(1, create=True)
    with pytest.raises(requests.ConnectionError):
        _post_with_timeout(fake, account, 2)
    assert len(fake.calls) == 1
    assert _post(fake, account, _create_form()).status_code == 201


def test_stop_releases_hung_connections() -> None:
    """A connection hung until stop() is closed by stop(): no handler thread is left."""
    fake = FakeTwilio().start()
    account = fake.add_account(numbers=(FROM,))
    fake.hang_next(1, create=False)
    with pytest.raises(requests.Timeout):
        _post_with_timeout(fake, account, 0.3)
    fake.stop()

    def handlers_alive() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if "process_request" in t.name]

    assert fake.wait_for(lambda: not handlers_alive(), timeout=5)


def _post_with_timeout(fake: FakeTwilio, account, timeout: float) -> requests.Response:  # type: ignore[no-untyped-def]
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls.json"
    with requests.Session() as session:
        return session.post(
            url, data=_create_form(), auth=(account.sid, account.token), timeout=timeout
        )


# -- call life and status callbacks -------------------------------------------------------


def test_call_moves_through_its_statuses_to_completed(fake, client) -> None:
    call = client.calls.create(to=TO, from_=FROM, twiml=TWIML)
    assert fake.wait_idle(5)
    fetched = client.calls(call.sid).fetch()
    assert fetched.status == "completed"
    assert fetched.duration == "12" and fetched.price is not None
    assert fetched.start_time is not None and fetched.end_time is not None
    assert fake.call(call.sid).events == ["initiated", "ringing", "answered", "completed"]


def test_busy_outcome_ends_without_being_answered(fake, client) -> None:
    fake.outcome_for[TO] = Outcome(status="busy")
    call = client.calls.create(to=TO, from_=FROM, twiml=TWIML)
    assert fake.wait_idle(5)
    assert client.calls(call.sid).fetch().status == "busy"
    assert "answered" not in fake.call(call.sid).events


def test_status_callbacks_are_signed_like_twilio(fake, account, client, receiver) -> None:
    """Every subscribed event arrives, in order, with Twilio's fields and a valid signature."""
    url = f"{receiver.url}/twilio/status?campaign=1"
    call = client.calls.create(
        to=TO,
        from_=FROM,
        twiml=TWIML,
        status_callback=url,
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="DetectMessageEnd",
    )
    assert fake.wait_idle(5)
    validator = RequestValidator(account.token)
    received = sorted(receiver.received, key=lambda r: int(r["form"]["SequenceNumber"]))
    statuses = [r["form"]["CallStatus"] for r in received]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    for request in received:
        assert validator.validate(url, request["form"], request["signature"])
        assert request["form"]["CallSid"] == call.sid
        assert request["form"]["CallbackSource"] == "call-progress-events"
    final = received[-1]["form"]
    assert final["CallDuration"] == "12" and final["AnsweredBy"] == "human"
    assert not validator.validate(url, {**final, "CallStatus": "busy"}, received[-1]["signature"])
    assert all(callback.status_code == 204 for callback in fake.callbacks)


def test_get_callbacks_are_signed_over_the_whole_url(fake, account, client, receiver) -> None:
    """With StatusCallbackMethod=GET the fields travel in the query and are signed with it."""
    client.calls.create(
        to=TO,
        from_=FROM,
        twiml=TWIML,
        status_callback=f"{receiver.url}/s?campaign=7",
        status_callback_method="GET",
    )
    assert fake.wait_idle(5)
    (request,) = receiver.received
    assert request["form"]["CallStatus"] == "completed" and request["form"]["campaign"] == "7"
    url = receiver.url + request["path"]
    assert RequestValidator(account.token).validate(url, {}, request["signature"])


def test_only_completed_is_sent_without_status_callback_event(fake, client, receiver) -> None:
    client.calls.create(to=TO, from_=FROM, twiml=TWIML, status_callback=f"{receiver.url}/s")
    assert fake.wait_idle(5)
    assert [r["form"]["CallStatus"] for r in receiver.received] == ["completed"]


def test_async_amd_result_goes_to_its_own_callback(fake, account, client, receiver) -> None:
    fake.outcome_for[TO] = Outcome(answered_by="machine_end_beep")
    url = f"{receiver.url}/amd"
    call = client.calls.create(
        to=TO,
        from_=FROM,
        twiml=TWIML,
        machine_detection="DetectMessageEnd",
        async_amd=True,
        async_amd_status_callback=url,
    )
    assert fake.wait_idle(5)
    (amd,) = [r for r in receiver.received if r["path"] == "/amd"]
    assert amd["form"]["AnsweredBy"] == "machine_end_beep"
    assert RequestValidator(account.token).validate(url, amd["form"], amd["signature"])
    assert client.calls(call.sid).fetch().answered_by == "machine_end_beep"


def test_canceling_a_ringing_call(fake, client) -> None:
    fake.outcome_for[TO] = Outcome(ring_seconds=30)
    call = client.calls.create(to=TO, from_=FROM, twiml=TWIML)
    assert fake.wait_for(lambda: fake.call(call.sid).status == "ringing", 5)
    assert client.calls(call.sid).update(status="canceled").status == "canceled"
    assert fake.violations == []


def test_fetching_an_unknown_call_is_404_20404(fake, account) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{account.sid}/Calls/CA{'0' * 32}.json"
    answer = requests.get(url, auth=(account.sid, account.token))
    assert (answer.status_code, answer.json()["code"]) == (404, 20404)
    assert fake.violations == []


def test_schema_check_catches_an_off_schema_call() -> None:
    """The response check itself can fail: bad SID, unknown key, date not RFC 2822, bad enum."""
    spec = load_spec()
    bad = {
        "sid": "CA123",
        "status": "dialing",
        "date_created": "2026-12-04T10:00:00Z",
        "duration": 12,
        "extra": 1,
    }
    problems = " | ".join(schema_problems(spec, spec.schema("api.v2010.account.call"), bad))
    for expected in ("$.sid", "$.status", "$.date_created", "$.duration", "$.extra"):
        assert expected in problems


def test_runs_standalone_and_prints_its_base_url() -> None:
    """python -m tests.fake_twilio serves the given account until terminated."""
    sid, token = "AC" + "1" * 32, "standalone-token"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_twilio", "--account", f"{sid}:{token}:{FROM}"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"account {sid}")
        base_url = process.stdout.readline().strip()
        answer = requests.get(f"{base_url}/2010-04-01/Accounts/{sid}.json", auth=(sid, token))
        assert answer.json()["sid"] == sid
    finally:
        process.terminate()
        process.wait(timeout=30)
