"""The telephony wrapper against the fake Twilio: requests as Twilio expects them, answers as
CallInfo, and every failure mapped to the error the engine acts on."""

from __future__ import annotations

import base64
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from bulkcall_core import telephony
from bulkcall_core.errors import TelephonyError
from bulkcall_core.telephony import (
    AmbiguousCallError,
    TwilioUnreachableError,
    cancel_call,
    fetch_call,
    find_calls,
    is_retryable,
    make_client,
    place_call,
    play_twiml,
)
from tests.fake_twilio import FakeTwilio, Outcome
from tests.fake_twilio.fixtures import fake_twilio  # noqa: F401 - fixture

FROM = "+14155550100"
TO = "+14155550123"
TWIML = "<Response><Play>https://example.com/a.mp3</Play></Response>"


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> FakeTwilio:  # noqa: F811 - the imported fixture
    fake_twilio.speed = 0.02
    return fake_twilio


@pytest.fixture
def account(fake: FakeTwilio):  # type: ignore[no-untyped-def]
    return fake.add_account(numbers=(FROM,))


@pytest.fixture
def client(fake, account, settings_factory):  # type: ignore[no-untyped-def]
    settings = settings_factory(twilio_api_base_url=fake.base_url, twilio_timeout_seconds=1)
    return make_client(account_sid=account.sid, auth_token=account.token, settings=settings)


def _place(client, to: str = TO, **options) -> telephony.CallInfo:  # type: ignore[no-untyped-def]
    return place_call(client, to=to, from_=FROM, twiml=TWIML, status_callback=None, **options)


# -- requests -----------------------------------------------------------------------------


def test_requests_go_to_the_configured_base_url(fake, client) -> None:
    info = _place(client)
    assert [r.path for r in fake.requests] == [
        f"/2010-04-01/Accounts/{fake.calls[0].account_sid}/Calls.json"
    ]
    assert info.sid == fake.calls[0].sid
    assert fake.violations == []


def test_place_call_subscribes_to_every_progress_event(fake, client) -> None:
    place_call(
        client,
        to=TO,
        from_=FROM,
        twiml=TWIML,
        status_callback="https://hooks.example.com/twilio/status",
        machine_detection="DetectMessageEnd",
        async_amd=True,
        amd_callback="https://hooks.example.com/twilio/amd",
        timeout_seconds=25,
    )
    params = fake.calls[0].params
    assert params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert params["MachineDetection"] == ["DetectMessageEnd"]
    assert params["AsyncAmd"] == ["true"]
    assert params["AsyncAmdStatusCallback"] == ["https://hooks.example.com/twilio/amd"]
    assert params["Timeout"] == ["25"] and params["Twiml"] == [TWIML]
    assert fake.violations == []


def test_without_callback_or_detection_nothing_extra_is_sent(fake, client) -> None:
    _place(client)
    assert set(fake.calls[0].params) == {"To", "From", "Twiml"}


def test_call_info_of_a_queued_call(client) -> None:
    info = _place(client)
    assert info.status == "queued" and info.to == TO and info.from_ == FROM
    assert info.date_created is not None and info.date_created.tzinfo == UTC
    assert info.duration is None and info.price is None and info.end_time is None


def test_fetch_gives_the_final_outcome(fake, client) -> None:
    fake.outcome_for[TO] = Outcome(answered_by="machine_end_beep", duration=31)
    info = _place(client, machine_detection="DetectMessageEnd")
    assert fake.wait_idle(5)
    final = fetch_call(client, info.sid)
    assert (final.status, final.answered_by, final.duration) == (
        "completed",
        "machine_end_beep",
        31,
    )
    assert final.price is not None and final.price_unit == "USD"
    assert final.end_time >= final.start_time


def test_play_twiml_plays_the_url() -> None:
    twiml = play_twiml("https://calls.example.com/audio/abc.mp3?x=1&y=2")
    assert twiml.startswith("<?xml") and "<Play>https://calls.example.com/audio/abc.mp3" in twiml
    assert "&amp;y=2" in twiml


# -- errors -------------------------------------------------------------------------------


def test_refused_call_keeps_twilio_code_and_message(fake, client) -> None:
    fake.fail_numbers[TO] = (400, 21217, "Phone number does not appear to be valid")
    with pytest.raises(TelephonyError) as caught:
        _place(client)
    error = caught.value
    assert (error.status, error.code) == (400, 21217)
    assert "Phone number does not appear to be valid" in error.message
    assert not isinstance(error, AmbiguousCallError) and not is_retryable(error)


@pytest.mark.parametrize("status, code", [(429, 20429), (500, 20500), (503, 20503)])
def test_not_processed_answers_are_retryable(fake, client, status, code) -> None:
    fake.fail_next(1, status=status, code=code)
    with pytest.raises(TelephonyError) as caught:
        _place(client)
    assert caught.value.status == status and is_retryable(caught.value)
    assert fake.calls == []


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_on_create_are_ambiguous(fake, client, status) -> None:
    """A gateway may have passed the create on: look the call up before calling again."""
    fake.fail_next(1, status=status)
    with pytest.raises(AmbiguousCallError) as caught:
        _place(client)
    assert caught.value.status == status and not is_retryable(caught.value)


def test_timeout_after_sending_is_ambiguous(fake, client) -> None:
    fake.hang_next(1, create=True)
    with pytest.raises(AmbiguousCallError):
        _place(client)
    assert len(fake.calls_to(TO)) == 1


def test_dropped_connection_is_ambiguous(fake, client) -> None:
    fake.drop_next(1, create=True)
    with pytest.raises(AmbiguousCallError):
        _place(client)


def test_unreachable_twilio_is_retryable_not_ambiguous(account, settings_factory) -> None:
    settings = settings_factory(twilio_api_base_url="http://127.0.0.1:9")
    client = make_client(account_sid=account.sid, auth_token=account.token, settings=settings)
    with pytest.raises(TwilioUnreachableError) as caught:
        _place(client)
    assert is_retryable(caught.value)


def test_unknown_call_is_404_20404(client) -> None:
    with pytest.raises(TelephonyError) as caught:
        fetch_call(client, "CA" + "0" * 32)
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_is_retryable_is_false_for_other_exceptions() -> None:
    assert not is_retryable(ValueError("x"))


# -- finding calls ------------------------------------------------------------------------


def test_find_calls_walks_every_page(fake, client) -> None:
    """More than 1000 calls between two numbers, read in pages of 100, none missed."""
    fake.speed = 60  # keep them queued: no clock work while creating
    since = datetime.now(UTC) - timedelta(seconds=1)
    with ThreadPoolExecutor(8) as pool:
        placed = list(pool.map(lambda _: _place(client).sid, range(1050)))
    found = find_calls(client, from_=FROM, to=TO, started_after=since, page_size=100)
    assert sorted(info.sid for info in found) == sorted(placed)
    pages = [r for r in fake.requests if r.method == "GET"]
    assert len(pages) == 11
    assert fake.violations == []


def test_find_calls_filters_on_creation_time(fake, client) -> None:
    """Calls created before started_after are left out, to the second."""
    old = _place(client)
    time.sleep(1.1)  # date_created has whole seconds: let one pass
    since = datetime.now(UTC)
    new = _place(client)
    found = [info.sid for info in find_calls(client, from_=FROM, to=TO, started_after=since)]
    assert new.sid in found and old.sid not in found


def test_find_calls_sees_a_call_created_in_the_same_second(client) -> None:
    """date_created has whole seconds; a call made just after started_after is found."""
    since = datetime.now(UTC)
    placed = _place(client)
    found = find_calls(client, from_=FROM, to=TO, started_after=since)
    assert [info.sid for info in found] == [placed.sid]


def test_find_calls_without_to_uses_the_date_filter(fake, client) -> None:
    placed = _place(client, to="+14155550124")
    assert fake.wait_idle(5)
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = find_calls(client, from_=FROM, started_after=since)
    assert [info.sid for info in found] == [placed.sid]
    assert any(name.startswith("StartTime") for name, _ in fake.requests[-1].query)


# -- cancel, concurrency, secrecy ---------------------------------------------------------


def test_cancel_a_ringing_call(fake, client) -> None:
    fake.outcome_for[TO] = Outcome(ring_seconds=30)
    info = _place(client)
    assert fake.wait_for(lambda: fake.call(info.sid).status == "ringing", 5)
    assert cancel_call(client, info.sid).status == "canceled"


def test_one_client_places_calls_from_many_threads(fake, client) -> None:
    """The dispatcher shares one client between its sending threads."""
    numbers = [f"+1415555{n:04d}" for n in range(200, 264)]
    with ThreadPoolExecutor(32) as pool:
        infos = list(pool.map(lambda number: _place(client, to=number), numbers))
    assert sorted(info.to for info in infos) == sorted(numbers)
    assert len({info.sid for info in infos}) == len(numbers)
    assert fake.violations == []


def test_token_never_reaches_the_logs(fake, account, client, caplog) -> None:
    """Even at DEBUG, neither the token nor the Authorization header is logged."""
    basic = base64.b64encode(f"{account.sid}:{account.token}".encode()).decode()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("twilio").setLevel(logging.DEBUG)
        info = _place(client)
        fetch_call(client, info.sid)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Calls.json" in logged  # the SDK did log its requests
    assert account.token not in logged and basic not in logged


def test_clients_are_reused_per_account_and_token(fake, account, settings_factory) -> None:
    """Polls and campaigns of one account share a client (and its open connections)."""
    settings = settings_factory(twilio_api_base_url=fake.base_url)
    first = make_client(account_sid=account.sid, auth_token=account.token, settings=settings)
    again = make_client(account_sid=account.sid, auth_token=account.token, settings=settings)
    other = make_client(account_sid=account.sid, auth_token="rotated", settings=settings)
    assert first is again and other is not first


# -- accounts -------------------------------------------------------------------------------


def test_fetch_account_reports_status_and_trial(fake, client, account) -> None:  # type: ignore[no-untyped-def]
    fake.account(account.sid).trial = True
    info = telephony.fetch_account(client, account.sid)
    assert (info.sid, info.status, info.is_trial) == (account.sid, "active", True)


def test_fetch_account_with_a_wrong_token_raises_twilios_20003(
    fake, account, settings_factory
) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(twilio_api_base_url=fake.base_url, twilio_timeout_seconds=1)
    wrong = make_client(account_sid=account.sid, auth_token="0" * 32, settings=settings)
    with pytest.raises(TelephonyError) as caught:
        telephony.fetch_account(wrong, account.sid)
    assert (caught.value.status, caught.value.code) == (401, 20003)
