"""The web hooks server, over real HTTP: media with ranges, signed Twilio callbacks, health."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from bulkcall_core import audio, crypto, telephony, webhooks
from bulkcall_core.database import get_engine, new_session
from bulkcall_core.errors import SettingsError
from bulkcall_core.models import Call, CallState, Campaign, CampaignStatus, Channel, utcnow
from bulkcall_core.settings import Settings
from tests.fake_twilio import FakeTwilio
from tests.ports import free_port
from tests.test_audio import make_mp3

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "f" * 32


@pytest.fixture
def hooks_settings(settings_factory, database_url: str, engine) -> Settings:  # type: ignore[no-untyped-def]
    """Settings whose PUBLIC_BASE_URL is the test server itself (a direct set-up); `engine`
    empties the shared PostgreSQL database after the test."""
    port = free_port()
    return settings_factory(
        database_url=database_url, webhook_port=port, public_base_url=f"http://127.0.0.1:{port}"
    )


@pytest.fixture
def server(hooks_settings: Settings) -> Iterator[webhooks.BackgroundServer]:
    running = webhooks.serve_in_background(hooks_settings, port=hooks_settings.webhook_port)
    yield running
    running.stop()


@pytest.fixture
def db(hooks_settings: Settings) -> Iterator[Session]:
    with new_session(get_engine(hooks_settings)) as session:
        yield session


@pytest.fixture
def stored(db: Session, hooks_settings: Settings):  # type: ignore[no-untyped-def]
    """A stored MP3 recording and its bytes."""
    data = make_mp3(2.0)
    recording = audio.store_recording(
        session=db, settings=hooks_settings, data=data, filename="hello.mp3"
    )
    db.commit()
    return recording, data


def placed_call(db: Session, settings: Settings, *, sid: str | None = None, **campaign) -> Call:  # type: ignore[no-untyped-def]
    """A running campaign on a channel of ACCOUNT_SID with one placed call."""
    channel = Channel(
        name=f"ch-{secrets.token_hex(3)}",
        account_sid=campaign.pop("account_sid", ACCOUNT_SID),
        from_number=campaign.pop("from_number", "+14155550100"),
        auth_token_encrypted=crypto.encrypt_secret(settings, campaign.pop("token", AUTH_TOKEN)),
    )
    db.add(channel)
    db.flush()
    recording = audio.store_recording(
        session=db, settings=settings, data=make_mp3(1.0), filename="m.mp3"
    )
    row = Campaign(
        name="c", channel_id=channel.id, recording_id=recording.id, scheduled_at=utcnow(),
        status=CampaignStatus.RUNNING, to_call=1, **campaign,
    )  # fmt: skip
    db.add(row)
    db.flush()
    call = Call(
        campaign_id=row.id, row=2, phone="+14155550199", state=CallState.PLACED,
        sid=sid or "CA" + secrets.token_hex(16), status="queued", attempts=1,
        placed_at=utcnow() - timedelta(minutes=5),
    )  # fmt: skip
    db.add(call)
    db.commit()
    return call


def post_signed(url: str, params: dict[str, str], *, signed_url: str | None = None,
                token: str = AUTH_TOKEN) -> requests.Response:  # fmt: skip
    signature = RequestValidator(token).compute_signature(signed_url or url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)


def status_params(call: Call, status: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": call.sid or "", "CallStatus": status, **extra}


def reload(db: Session, call: Call) -> Call:
    db.expire_all()
    fresh = db.get(Call, call.id)
    assert fresh is not None
    return fresh


# -- URLs ------------------------------------------------------------------------------------


def test_callback_urls_are_under_public_base_url(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(public_base_url="https://calls.example.com")
    assert webhooks.status_callback_url(settings) == "https://calls.example.com/twilio/status"
    assert webhooks.amd_callback_url(settings) == "https://calls.example.com/twilio/amd"


def test_a_campaign_calls_callback_url_names_the_call_and_its_claim() -> None:
    url = webhooks.callback_url_for_call("https://x.example/twilio/status", call_id=7, claim="a:b")
    assert url == "https://x.example/twilio/status?call=7&claim=a%3Ab"


def test_callback_urls_need_public_base_url(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError, match="Set PUBLIC_BASE_URL"):
        webhooks.status_callback_url(settings_factory(public_base_url=None))


# -- health ----------------------------------------------------------------------------------


def test_healthz_answers_when_the_database_does(server) -> None:  # type: ignore[no-untyped-def]
    answer = requests.get(server.url + "/healthz", timeout=5)
    assert answer.status_code == 200 and answer.json() == {"ok": True}


# -- media -----------------------------------------------------------------------------------


def test_media_is_served_with_audio_type_and_cache_headers(server, stored) -> None:  # type: ignore[no-untyped-def]
    recording, data = stored
    answer = requests.get(f"{server.url}/media/{recording.token}.mp3", timeout=5)
    assert answer.status_code == 200 and answer.content == data
    headers = answer.headers
    assert headers["Content-Type"] == "audio/mpeg"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{recording.sha256}"'
    assert "Last-Modified" in headers and "max-age" in headers["Cache-Control"]


def test_media_head_gives_headers_without_a_body(server, stored) -> None:  # type: ignore[no-untyped-def]
    recording, data = stored
    answer = requests.head(f"{server.url}/media/{recording.token}.mp3", timeout=5)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["Content-Length"] == str(len(data))


def test_media_answers_a_single_range_with_206(server, stored) -> None:  # type: ignore[no-untyped-def]
    recording, data = stored
    url = f"{server.url}/media/{recording.token}.mp3"
    first = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=5)
    tail = requests.get(url, headers={"Range": "bytes=-100"}, timeout=5)
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(data)}"
    assert tail.status_code == 206 and tail.content == data[-100:]


def test_media_refuses_a_range_past_the_end_with_416(server, stored) -> None:  # type: ignore[no-untyped-def]
    recording, data = stored
    answer = requests.get(
        f"{server.url}/media/{recording.token}.mp3",
        headers={"Range": f"bytes={len(data)}-"},
        timeout=5,
    )
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{len(data)}"


def test_media_answers_304_to_a_matching_etag(server, stored) -> None:  # type: ignore[no-untyped-def]
    recording, _ = stored
    answer = requests.get(
        f"{server.url}/media/{recording.token}.mp3",
        headers={"If-None-Match": f'"{recording.sha256}"'},
        timeout=5,
    )
    assert answer.status_code == 304 and answer.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/media/" + "A" * 43 + ".mp3",  # well-formed, unknown
        "/media/{token}.wav",  # right token, wrong extension
        "/media/{token}",  # no extension
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/%2e%2e/%2e%2e/etc/passwd.mp3",
        "/media/",
        "/media",
    ],
)
def test_media_answers_404_to_anything_but_a_stored_token(server, stored, path: str) -> None:  # type: ignore[no-untyped-def]
    recording, _ = stored
    answer = requests.get(server.url + path.format(token=recording.token), timeout=5)
    assert answer.status_code == 404
    assert b"ID3" not in answer.content and recording.token not in answer.text


def test_the_access_log_never_shows_a_media_token(server, stored, caplog) -> None:  # type: ignore[no-untyped-def]
    recording, _ = stored
    with caplog.at_level(logging.INFO, logger="bulkcall_core.webhooks"):
        requests.get(f"{server.url}/media/{recording.token}.mp3", timeout=5)
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "GET /media/<token>.mp3 200" in logged
    assert recording.token not in logged


def test_served_audio_passes_the_public_url_check(server, stored, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    recording, _ = stored
    check = audio.check_public_url(audio.recording_url(recording, hooks_settings), timeout=5)
    assert check.ok, check.message
    assert "with range requests" in check.message


# -- status callbacks ------------------------------------------------------------------------


def test_a_signed_status_callback_is_applied(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    params = status_params(call, "completed", CallDuration="23", AnsweredBy="human")
    answer = post_signed(server.url + "/twilio/status", params)
    assert answer.status_code == 204
    fresh = reload(db, call)
    assert (fresh.status, fresh.state, fresh.duration_seconds) == ("completed", "done", 23)
    assert fresh.answered_by == "human"


def test_a_bad_signature_is_refused_and_changes_nothing(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    params = status_params(call, "completed")
    forged = post_signed(server.url + "/twilio/status", params, token="0" * 32)
    unsigned = requests.post(server.url + "/twilio/status", data=params, timeout=5)
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert reload(db, call).status == "queued"


def test_a_signature_over_other_parameters_is_refused(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    url = server.url + "/twilio/status"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, status_params(call, "busy"))
    answer = requests.post(
        url,
        data=status_params(call, "completed"),
        headers={"X-Twilio-Signature": signature},
        timeout=5,
    )
    assert answer.status_code == 403
    assert reload(db, call).status == "queued"


def test_a_callback_for_an_unknown_account_is_refused(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    params = {**status_params(call, "completed"), "AccountSid": "AC" + "b" * 32}
    assert post_signed(server.url + "/twilio/status", params).status_code == 403


def test_behind_a_proxy_the_signature_over_public_base_url_is_accepted(  # type: ignore[no-untyped-def]
    settings_factory, database_url, engine
) -> None:
    port = free_port()
    settings = settings_factory(
        database_url=database_url, webhook_port=port, public_base_url="https://calls.example.com"
    )
    running = webhooks.serve_in_background(settings, port=port)
    try:
        with new_session(get_engine(settings)) as db:
            call = placed_call(db, settings)
            answer = post_signed(
                running.url + "/twilio/status",
                status_params(call, "ringing"),
                signed_url="https://calls.example.com/twilio/status",
            )
            assert answer.status_code == 204
            assert reload(db, call).status == "ringing"
    finally:
        running.stop()


def dialing_call(db: Session, settings: Settings, claim: str) -> Call:
    """A call claimed under `claim` whose create has not been answered yet (no SID)."""
    call = placed_call(db, settings)
    call.state, call.sid, call.status, call.claim_token = CallState.DIALING, None, None, claim
    db.commit()
    return call


def test_a_callback_naming_its_call_and_claim_records_the_sid_before_the_dispatcher(
    server, db, hooks_settings
) -> None:  # type: ignore[no-untyped-def]
    call = dialing_call(db, hooks_settings, "owner:abc")
    sid = "CA" + "4" * 32
    url = webhooks.callback_url_for_call(
        server.url + "/twilio/status", call_id=int(call.id or 0), claim="owner:abc"
    )
    params = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "CallStatus": "failed"}
    assert post_signed(url, params).status_code == 204
    fresh = reload(db, call)
    assert (fresh.sid, fresh.state, fresh.status) == (sid, CallState.DONE, "failed")


def test_a_callback_url_whose_call_was_changed_is_refused(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    """The signature covers the query: another call's id cannot be slipped in."""
    call = dialing_call(db, hooks_settings, "owner:abc")
    base = server.url + "/twilio/status"
    signed = webhooks.callback_url_for_call(base, call_id=999999, claim="owner:abc")
    sent = webhooks.callback_url_for_call(base, call_id=int(call.id or 0), claim="owner:abc")
    params = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "4" * 32, "CallStatus": "failed"}
    assert post_signed(sent, params, signed_url=signed).status_code == 403
    fresh = reload(db, call)
    assert (fresh.sid, fresh.state) == (None, CallState.DIALING)


def test_a_signed_callback_without_a_status_is_a_bad_request(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call.sid or ""}
    assert post_signed(server.url + "/twilio/status", params).status_code == 400


def test_a_signed_callback_for_an_unknown_call_is_accepted_quietly(
    server, db, hooks_settings
) -> None:  # type: ignore[no-untyped-def]
    placed_call(db, hooks_settings)
    params = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "9" * 32, "CallStatus": "completed"}
    assert post_signed(server.url + "/twilio/status", params).status_code == 204


def test_the_amd_callback_records_answered_by(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call.sid or "",
        "AnsweredBy": "machine_end_beep",
    }
    assert post_signed(server.url + "/twilio/amd", params).status_code == 204
    assert reload(db, call).answered_by == "machine_end_beep"


def test_an_unsigned_amd_callback_is_refused(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call.sid or "", "AnsweredBy": "human"}
    assert requests.post(server.url + "/twilio/amd", data=params, timeout=5).status_code == 403
    assert reload(db, call).answered_by is None


# -- end to end with the fake Twilio ---------------------------------------------------------


def test_fake_twilio_callbacks_complete_a_call_and_its_campaign(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    """A call placed through the fake gets its signed callbacks over HTTP, up to completed."""
    with FakeTwilio(speed=0.3) as fake:
        account = fake.add_account(numbers=("+14155550100",))
        settings = hooks_settings.model_copy(update={"twilio_api_base_url": fake.base_url})
        client = telephony.make_client(
            account_sid=account.sid, auth_token=account.token, settings=settings
        )
        info = telephony.place_call(
            client, to="+14155550199", from_="+14155550100",
            twiml=telephony.play_twiml("https://example.com/a.mp3"),
            status_callback=webhooks.status_callback_url(settings),
        )  # fmt: skip
        call = placed_call(db, settings, sid=info.sid, account_sid=account.sid, token=account.token)
        assert fake.wait_idle(timeout=15)
        answers = [(cb.event, cb.status_code) for cb in fake.callbacks]
    assert ("completed", 204) in answers, answers
    fresh = reload(db, call)
    assert (fresh.status, fresh.state, fresh.duration_seconds) == ("completed", "done", 12)
    campaign = db.get(Campaign, fresh.campaign_id)
    assert campaign is not None and campaign.status == CampaignStatus.COMPLETED


def test_an_oversized_callback_is_refused_unparsed(server, db, hooks_settings) -> None:  # type: ignore[no-untyped-def]
    call = placed_call(db, hooks_settings)
    params = status_params(call, "completed", Padding="x" * (webhooks.MAX_CALLBACK_BYTES + 1))
    assert post_signed(server.url + "/twilio/status", params).status_code == 413
    assert reload(db, call).status == "queued"
