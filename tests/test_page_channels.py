"""The Channels page (AppTest) against the fake Twilio: add, verify, edit, remove; errors
beside their field; the trial warning; the auth token never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from bulkcall_core.models import Channel
from bulkcall_core.settings import get_settings
from tests.e2e.app_env import app_env  # noqa: F401 (fixture)
from tests.factories import make_campaign
from tests.fake_twilio import Account, FakeTwilio
from tests.fake_twilio.fixtures import fake_twilio  # noqa: F401 (fixture)

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
NUMBER = "+14155550100"


@pytest.fixture
def twilio(fake_twilio: FakeTwilio, app_env, monkeypatch: pytest.MonkeyPatch) -> FakeTwilio:  # noqa: F811
    """The fake Twilio, with the app's settings pointing at it."""
    monkeypatch.setenv("TWILIO_API_BASE_URL", fake_twilio.base_url)
    get_settings.cache_clear()
    return fake_twilio


def open_channels() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/channels.py").run()
    assert not at.exception, at.exception
    return at


def fill_and_add(at: AppTest, account: Account, **fields: object) -> AppTest:
    values = {
        "name": "Sales US",
        "account_sid": account.sid,
        "auth_token": account.token,
        "from_number": NUMBER,
    }
    values.update(fields)
    for field, value in values.items():
        at.text_input(key=f"channels_add_{field}").input(value)
    [submit] = [b for b in at.button if b.label == "Verify with Twilio and add"]
    submit.click().run()
    assert not at.exception, at.exception
    return at


def shown_text(at: AppTest) -> str:
    """Every text the page shows (not what sits in input boxes)."""
    parts = []
    for kind in ("markdown", "caption", "success", "error", "warning", "info", "title", "text"):
        parts += [str(element.value) for element in at.get(kind)]
    for frame in at.dataframe:
        parts.append(frame.value.to_csv())
    return "\n".join(parts)


def test_add_verifies_and_stores_the_channel(twilio: FakeTwilio, session: Session) -> None:
    """A channel Twilio confirms is stored, listed and the form is emptied."""
    account = twilio.add_account(numbers=(NUMBER,))

    at = fill_and_add(open_channels(), account)

    [stored] = session.exec(select(Channel)).all()
    assert (stored.name, stored.account_sid, stored.from_number) == (
        "Sales US",
        account.sid,
        NUMBER,
    )
    assert "Sales US" in at.markdown[1].value or "Sales US" in shown_text(at)
    assert "added" in at.success[0].value
    assert at.text_input(key="channels_add_auth_token").value == ""


def test_the_token_never_appears_on_the_page(twilio: FakeTwilio, session: Session) -> None:
    """After adding, the page shows the token's last four characters at most."""
    account = twilio.add_account(numbers=(NUMBER,))

    at = fill_and_add(open_channels(), account)

    text = shown_text(at)
    assert account.token not in text
    assert account.token[:-4] not in text
    assert "••••" + account.token[-4:] in text
    stored = session.exec(select(Channel)).one()
    assert account.token not in stored.auth_token_encrypted


def test_wrong_token_is_refused_beside_the_form_and_keeps_the_input(
    twilio: FakeTwilio, session: Session
) -> None:
    """Twilio refusing the credentials stores nothing and keeps what was typed."""
    account = twilio.add_account(numbers=(NUMBER,))

    at = fill_and_add(open_channels(), account, auth_token="not-the-token")

    assert session.exec(select(Channel)).all() == []
    assert at.error, "an error is shown"
    assert at.text_input(key="channels_add_name").value == "Sales US"
    assert at.text_input(key="channels_add_account_sid").value == account.sid


def test_a_malformed_account_sid_is_named(twilio: FakeTwilio) -> None:
    """A SID that is not AC + 32 hex characters is refused before Twilio is asked."""
    account = twilio.add_account(numbers=(NUMBER,))

    at = fill_and_add(open_channels(), account, account_sid="AC123")

    assert "Account SID 'AC123' is not a Twilio Account SID" in at.error[0].value
    assert twilio.requests == []


def test_a_number_not_on_the_account_is_refused(twilio: FakeTwilio) -> None:
    """A from number the account does not own is refused with what to do."""
    account = twilio.add_account(numbers=(NUMBER,))

    at = fill_and_add(open_channels(), account, from_number="+14155550199")

    assert "+14155550199 is not a number of account" in at.error[0].value


def test_trial_account_shows_the_paid_account_warning(twilio: FakeTwilio) -> None:
    """A trial account is added with the 'paid account required' warning."""
    account = twilio.add_account(numbers=(NUMBER,), trial=True)

    at = fill_and_add(open_channels(), account)

    assert any("Paid account required" in w.value for w in at.warning)


def test_verify_again_reports_an_account_twilio_refuses(
    twilio: FakeTwilio, session: Session
) -> None:
    """Verify again asks Twilio; a suspended account is reported beside the channel."""
    account = twilio.add_account(numbers=(NUMBER,))
    at = fill_and_add(open_channels(), account)
    twilio.account(account.sid).status = "suspended"

    [verify] = [b for b in at.button if b.label == "Verify again"]
    verify.click().run()

    assert "Twilio refused" in at.error[0].value
    assert account.sid in at.error[0].value


def test_edit_changes_pace_and_countries(twilio: FakeTwilio, session: Session) -> None:
    """Saving the edit form stores the new calls per second and countries."""
    account = twilio.add_account(numbers=(NUMBER,))
    at = fill_and_add(open_channels(), account)
    channel = session.exec(select(Channel)).one()

    at.number_input(key=f"channels_edit_cps_{channel.id}").set_value(5.0)
    at.multiselect(key=f"channels_edit_countries_{channel.id}").set_value(["US", "CA"])
    [save] = [b for b in at.button if b.label == "Save changes"]
    save.click().run()

    session.refresh(channel)
    assert (channel.calls_per_second, channel.allowed_countries) == (5.0, "CA,US")
    assert "Saved" in at.success[0].value


def test_remove_asks_then_removes(twilio: FakeTwilio, session: Session) -> None:
    """Remove asks for confirmation, then deletes the channel."""
    account = twilio.add_account(numbers=(NUMBER,))
    at = fill_and_add(open_channels(), account)

    [remove] = [b for b in at.button if b.label == "Remove…"]
    remove.click().run()
    assert len(session.exec(select(Channel)).all()) == 1
    [yes] = [b for b in at.button if b.label == "Yes, remove it"]
    yes.click().run()

    assert session.exec(select(Channel)).all() == []
    assert "removed" in at.success[0].value


def test_a_channel_with_campaigns_cannot_be_removed(twilio: FakeTwilio, session: Session) -> None:
    """Removing a channel a scheduled campaign uses is refused, naming the campaign."""
    account = twilio.add_account(numbers=(NUMBER,))
    at = fill_and_add(open_channels(), account)
    channel = session.exec(select(Channel)).one()
    make_campaign(session, channel_id=channel.id, name="Spring promo")
    at.run()

    [remove] = [b for b in at.button if b.label == "Remove…"]
    remove.click().run()
    [yes] = [b for b in at.button if b.label == "Yes, remove it"]
    yes.click().run()

    assert "Spring promo" in at.error[0].value
    assert len(session.exec(select(Channel)).all()) == 1
