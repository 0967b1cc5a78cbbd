"""Channels are validated, verified with Twilio (the fake), stored with the token encrypted,
and cannot be removed from under a campaign. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session

from bulkcall_core import channels
from bulkcall_core.errors import ChannelError
from bulkcall_core.models import Campaign, CampaignStatus, Channel, Recording, utcnow
from bulkcall_core.telephony import fetch_call, place_call
from tests.fake_twilio import FakeTwilio
from tests.fake_twilio.fixtures import fake_twilio  # noqa: F401 - fixture

FROM = "+14155550100"


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> FakeTwilio:  # noqa: F811 - the imported fixture
    return fake_twilio


@pytest.fixture
def settings(settings_factory, fake: FakeTwilio):  # type: ignore[no-untyped-def]
    return settings_factory(twilio_api_base_url=fake.base_url, twilio_timeout_seconds=3)


def _add(session: Session, settings, account, **overrides) -> Channel:  # type: ignore[no-untyped-def]
    values = {
        "name": "Sales US",
        "account_sid": account.sid,
        "auth_token": account.token,
        "from_number": FROM,
    }
    values.update(overrides)
    return channels.add_channel(session=session, settings=settings, **values)


def _campaign(session: Session, channel: Channel, name: str, status: str) -> Campaign:
    recording = Recording(
        token=f"tok-{name}",
        filename="a.mp3",
        extension="mp3",
        content_type="audio/mpeg",
        size_bytes=1,
        duration_seconds=1.0,
        sha256="0" * 64,
    )
    session.add(recording)
    session.flush()
    campaign = Campaign(
        name=name,
        channel_id=channel.id,
        recording_id=recording.id,
        scheduled_at=utcnow(),
        status=status,
    )
    session.add(campaign)
    session.flush()
    return campaign


# -- adding -------------------------------------------------------------------------------


def test_added_channel_is_verified_and_stored(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account, calls_per_second=5, allowed_countries="us, ca")
    session.commit()
    stored = session.get(Channel, channel.id)
    assert stored.verified_at is not None and stored.voice_capable and not stored.is_trial
    assert stored.calls_per_second == 5.0
    assert stored.allowed_countries == "CA,US"
    assert fake.violations == []


def test_token_is_encrypted_in_the_database_row(session, settings, fake) -> None:
    """The plaintext token appears nowhere in the stored row."""
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    session.commit()
    row = session.execute(text("SELECT * FROM channel WHERE id = :id"), {"id": channel.id}).one()
    assert all(account.token not in str(value) for value in row)
    assert account.token[-8:] not in channel.auth_token_encrypted


def test_stored_token_gives_a_working_client(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    client = channels.channel_client(channel, settings)
    info = place_call(
        client, to="+14155550123", from_=FROM, twiml="<Response/>", status_callback=None
    )
    assert fetch_call(client, info.sid).sid == info.sid
    assert fake.violations == []


def test_trial_account_is_flagged_but_added(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,), trial=True)
    assert _add(session, settings, account).is_trial


def test_refused_credentials_say_so_and_store_nothing(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    with pytest.raises(ChannelError, match=r"refused the Account SID / auth token \(error 20003\)"):
        _add(session, settings, account, auth_token="0" * 32)
    assert channels.list_channels(session=session) == []


def test_number_of_another_account_is_refused(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    with pytest.raises(ChannelError, match=r"\+14155550101 is not a number of account AC"):
        _add(session, settings, account, from_number="+14155550101")


def test_number_without_voice_is_refused(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,), voice=False)
    with pytest.raises(ChannelError, match="cannot make voice calls"):
        _add(session, settings, account)


def test_suspended_account_is_refused(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    fake.account(account.sid).status = "suspended"
    with pytest.raises(ChannelError, match="it is not active"):
        _add(session, settings, account)


def test_unreachable_twilio_is_a_clear_error(session, settings_factory, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    offline = settings_factory(twilio_api_base_url="http://127.0.0.1:9", twilio_timeout_seconds=1)
    with pytest.raises(ChannelError, match="Could not verify the channel with Twilio"):
        _add(session, offline, account)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "  ", "Give the channel a name"),
        ("name", "x" * 101, "at most 100"),
        ("account_sid", "AC123", "is not a Twilio Account SID"),
        ("account_sid", "SK" + "a" * 32, "is not a Twilio Account SID"),
        ("auth_token", "", "auth token is missing"),
        ("from_number", "4155550100", "international form"),
        ("from_number", "+1415", "international form"),
        ("calls_per_second", 0, "out of range"),
        ("calls_per_second", 1001, "out of range"),
        ("calls_per_second", "fast", "out of range"),
        ("allowed_countries", "US,XX", "Unknown country code 'XX'"),
    ],
)
def test_bad_input_is_refused_before_asking_twilio(
    session, settings, fake, field, value, message
) -> None:
    account = fake.add_account(numbers=(FROM,))
    with pytest.raises(ChannelError, match=message) as caught:
        _add(session, settings, account, **{field: value})
    assert caught.value.field == field
    assert fake.requests == []


def test_from_number_is_normalised_to_e164(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    assert _add(session, settings, account, from_number="+1 (415) 555-0100").from_number == FROM


def test_name_is_unique_whatever_its_case(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM, "+14155550101"))
    _add(session, settings, account)
    with pytest.raises(ChannelError, match="exists already"):
        _add(session, settings, account, name="sales us", from_number="+14155550101")


def test_same_account_and_number_twice_is_refused(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    _add(session, settings, account)
    with pytest.raises(ChannelError, match="already"):
        _add(session, settings, account, name="Other")


# -- verifying and updating ---------------------------------------------------------------


def test_verify_records_an_upgraded_account(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,), trial=True)
    channel = _add(session, settings, account)
    fake.account(account.sid).trial = False
    verified = channels.verify_channel(session=session, settings=settings, channel_id=channel.id)
    assert not verified.is_trial


def test_verify_fails_when_the_number_was_released(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    del fake.account(account.sid).numbers[FROM]
    with pytest.raises(ChannelError, match="is not a number of account"):
        channels.verify_channel(session=session, settings=settings, channel_id=channel.id)


def test_update_changes_pace_countries_and_name(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account, allowed_countries="US")
    channels.update_channel(
        session=session,
        channel_id=channel.id,
        calls_per_second=10,
        allowed_countries="",
        name="New",
    )
    session.commit()
    stored = session.get(Channel, channel.id)
    assert (stored.calls_per_second, stored.allowed_countries, stored.name) == (10.0, "", "New")
    assert channels.allowed_country_set(stored) is None


def test_new_token_is_verified_before_it_replaces_the_old(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    before = channel.auth_token_encrypted
    with pytest.raises(ChannelError, match="20003"):
        channels.update_channel(
            session=session, channel_id=channel.id, auth_token="f" * 32, settings=settings
        )
    assert channel.auth_token_encrypted == before


# -- removing and finding -----------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED]
)
def test_remove_is_refused_while_a_campaign_needs_it(session, settings, fake, status) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    _campaign(session, channel, "Spring promo", status)
    with pytest.raises(ChannelError, match="'Spring promo'.*cancel or stop it first"):
        channels.remove_channel(session=session, channel_id=channel.id)


def test_removing_a_channel_with_history_archives_it(session, settings, fake) -> None:
    """History keeps naming the channel; every list and lookup forgets it; its name is free."""
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    campaign = _campaign(session, channel, "Last year", CampaignStatus.COMPLETED)
    channels.remove_channel(session=session, channel_id=channel.id)
    session.commit()
    assert channels.list_channels(session=session) == []
    assert channels.eligible_channels(session=session) == []
    with pytest.raises(ChannelError, match="No channel named"):
        channels.get_channel_by_name(session=session, name="Sales US")
    kept = channels.get_channel(session=session, channel_id=campaign.channel_id)
    assert kept.archived_at is not None and kept.name.startswith("Sales US (removed ")
    again = _add(session, settings, account)  # same name, account and number: allowed again
    assert again.id != channel.id and again.name == "Sales US"


def test_unused_channel_is_removed(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    session.commit()
    channels.remove_channel(session=session, channel_id=channel.id)
    session.commit()
    assert channels.list_channels(session=session) == []


def test_unknown_name_lists_the_channels_there_are(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    _add(session, settings, account)
    assert channels.get_channel_by_name(session=session, name="sales us").name == "Sales US"
    with pytest.raises(ChannelError, match="No channel named 'Nope'; the channels are: Sales US"):
        channels.get_channel_by_name(session=session, name="Nope")


def test_unknown_id_is_a_channel_error(session) -> None:
    with pytest.raises(ChannelError, match="No channel with id 42"):
        channels.get_channel(session=session, channel_id=42)


def test_eligible_channels_are_verified_and_voice_capable(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM, "+14155550101", "+14155550102"))
    good = _add(session, settings, account, name="A")
    unverified = _add(session, settings, account, name="B", from_number="+14155550101")
    no_voice = _add(session, settings, account, name="C", from_number="+14155550102")
    unverified.verified_at = None
    no_voice.voice_capable = False
    session.commit()
    assert [c.id for c in channels.eligible_channels(session=session)] == [good.id]


def test_region_of_the_channel_number(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM, "+447700900123"))
    assert channels.channel_region(_add(session, settings, account)) == "US"
    # +44 7700 900xxx is a drama number phonenumbers calls invalid: the region is still GB.
    uk = _add(session, settings, account, name="UK", from_number="+447700900123")
    assert channels.channel_region(uk) == "GB"


def test_masked_token_shows_only_the_last_four(session, settings, fake) -> None:
    account = fake.add_account(numbers=(FROM,))
    channel = _add(session, settings, account)
    assert channels.masked_token(channel, settings) == "••••••••" + account.token[-4:]
