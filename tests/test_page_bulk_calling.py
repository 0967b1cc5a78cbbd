"""The Bulk calling page (AppTest, through streamlit_app.py so navigation and the access gate
run as in production): every validation path of the form, the confirmation dialog (cancel,
test call against the fake Twilio, confirm), and the do-not-call count in the summary.

AppTest cannot click a dataframe column (picking columns by clicking is covered by the browser
test), fire fragment timers or enforce the upload size limit.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from bulkcall_core import contacts
from bulkcall_core.models import Call, Campaign, Channel, utcnow
from bulkcall_core.queueing import get_queue
from bulkcall_core.settings import get_settings
from tests.conftest import FERNET_TEST_KEY
from tests.factories import make_channel
from tests.fake_twilio import FakeTwilio

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
# The first run imports pandas, phonenumbers, the Twilio SDK...: generous, never asserted on.
RUN_TIMEOUT = 60
CONTACTS_CSV = b"Name,Mobile,City\nAda,(415) 555-0101,SF\nBob,+1 415 555 0102,LA\n"


# --------------------------------------------------------------------------------------------
# helpers (also used by tests/test_page_contacts.py)


def set_app_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    database_url: str,
    redis_url: str,
    twilio_base_url: str | None = None,
    public_base_url: str | None = "https://calls.example.com",
) -> None:
    """Point the dashboard's settings at this test's database, Redis and fake Twilio."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BULKCALL_SECRET_KEY", FERNET_TEST_KEY)
    monkeypatch.setenv("BULKCALL_SECRETS_TOML", str(tmp_path / "no-secrets.toml"))
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    if twilio_base_url:
        monkeypatch.setenv("TWILIO_API_BASE_URL", twilio_base_url)
    if public_base_url:
        monkeypatch.setenv("PUBLIC_BASE_URL", public_base_url)
    else:
        monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    get_settings.cache_clear()


def open_page(page: str) -> AppTest:
    """The dashboard (navigation, access gate) showing `page`, e.g. "pages/contacts.py"."""
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A silent mono 16-bit PCM WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


def messages(at: AppTest, kind: str = "error") -> str:
    """Every st.error (or warning, success...) text on the page, joined."""
    return "\n".join(str(element.value) for element in getattr(at, kind))


def metric(at: AppTest, label: str) -> str:
    for element in at.metric:
        if element.label == label:
            return str(element.value)
    raise KeyError(f"no metric {label!r}; have {[m.label for m in at.metric]}")


def upload(at: AppTest, key: str, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=key).set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(speed=0.01) as server:
        yield server


@pytest.fixture
def app_env(monkeypatch, tmp_path, engine, database_url, redis_url, fake) -> Iterator[None]:  # type: ignore[no-untyped-def]
    set_app_env(
        monkeypatch,
        tmp_path,
        database_url=database_url,
        redis_url=redis_url,
        twilio_base_url=fake.base_url,
    )
    yield
    get_settings.cache_clear()


@pytest.fixture
def channel(app_env, session: Session) -> Channel:  # type: ignore[no-untyped-def]
    return make_channel(session, name="Main line", calls_per_second=2.0)


def filled_form(name: str = "Reminders", contacts_csv: bytes = CONTACTS_CSV) -> AppTest:
    """The page with every field valid: a name, a recording and a two-person file."""
    at = open_page("pages/bulk_calling.py")
    at.text_input(key="bulk_name").input(name).run()
    upload(at, "bulk_audio_file", "message.wav", wav_bytes())
    upload(at, "bulk_file", "people.csv", contacts_csv)
    return at


def click_next(at: AppTest) -> AppTest:
    at.button(key="bulk_next").click().run()
    assert not at.exception, at.exception
    return at


# --------------------------------------------------------------------------------------------
# the form


def test_without_a_channel_the_page_says_how_to_add_one(app_env) -> None:  # type: ignore[no-untyped-def]
    """No eligible channel: a warning explains, and a link leads to Channels."""
    at = open_page("pages/bulk_calling.py")
    assert "Add a Twilio account" in messages(at, "warning")
    assert any("channels" in str(link.proto.page) for link in at.get("page_link"))


def test_a_filled_form_previews_and_counts_the_file(channel) -> None:  # type: ignore[no-untyped-def]
    """Upload suggests the phone and name columns and shows rows / to-call counts."""
    at = filled_form()
    assert at.selectbox(key="bulk_phone_col").value == "Mobile"
    assert at.selectbox(key="bulk_name_col").value == "Name"
    assert metric(at, "Rows") == "2"
    assert metric(at, "To call") == "2"
    preview = at.dataframe(key="bulk_preview").value
    assert list(preview.columns) == ["Name", "Mobile", "City"]


def test_next_without_a_name_flags_the_name_and_keeps_the_rest(channel) -> None:  # type: ignore[no-untyped-def]
    """A missing name is flagged beside the field after Next; uploads are kept."""
    at = filled_form(name="")
    click_next(at)
    assert "Give the campaign a name" in messages(at)
    assert not at.session_state["bulk_confirm_open"]
    assert metric(at, "To call") == "2"


def test_the_form_survives_a_visit_to_another_page(channel) -> None:  # type: ignore[no-untyped-def]
    """Name, options, recording and file are still there after going to Contacts and back."""
    at = filled_form()
    at.checkbox(key="bulk_voicemail").check().run()
    at.switch_page("pages/contacts.py").run()
    at.switch_page("pages/bulk_calling.py").run()
    assert not at.exception, at.exception
    assert at.text_input(key="bulk_name").value == "Reminders"
    assert at.checkbox(key="bulk_voicemail").value
    assert at.get("audio")
    assert metric(at, "To call") == "2"
    assert any("uploaded earlier" in str(caption.value) for caption in at.caption)


def test_changing_the_phone_field_highlights_that_column_in_the_preview(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form()
    at.selectbox(key="bulk_phone_col").set_value("City").run()
    assert at.session_state["bulk_preview"]["selection"]["columns"] == ["City"]


def test_next_on_an_empty_form_lists_what_is_missing(channel) -> None:  # type: ignore[no-untyped-def]
    """Nothing is shown in red until Next; then each missing field says so."""
    at = open_page("pages/bulk_calling.py")
    assert not at.error
    click_next(at)
    errors = messages(at)
    assert "Give the campaign a name" in errors
    assert "Upload the recording" in errors
    assert "Upload a contact file" in errors


def test_a_file_that_is_not_audio_is_refused_beside_the_uploader(channel) -> None:  # type: ignore[no-untyped-def]
    """Text named .mp3 gets the audio module's message; no player is shown."""
    at = open_page("pages/bulk_calling.py")
    upload(at, "bulk_audio_file", "message.mp3", b"this is not a recording at all\n" * 20)
    assert "message.mp3" in messages(at)
    assert not at.get("audio")


def test_an_accepted_recording_plays_with_its_duration(channel) -> None:  # type: ignore[no-untyped-def]
    at = open_page("pages/bulk_calling.py")
    upload(at, "bulk_audio_file", "message.wav", wav_bytes(seconds=2.0))
    assert at.get("audio")
    assert any("2 s" in str(caption.value) for caption in at.caption)


def test_a_latin_1_file_with_semicolons_reads_with_its_accents(channel) -> None:  # type: ignore[no-untyped-def]
    people = "Nom;Téléphone\nZoë;4155550101\nJosé;4155550102\n".encode("latin-1")
    at = filled_form(contacts_csv=people)
    assert at.selectbox(key="bulk_phone_col").value == "Téléphone"
    assert list(at.dataframe(key="bulk_preview").value["Nom"]) == ["Zoë", "José"]
    assert metric(at, "To call") == "2"


def workbook_bytes() -> bytes:
    """Two sheets: a cover sheet first, then contacts whose phones are numeric cells."""
    workbook = openpyxl.Workbook()
    workbook.active.title = "Cover"
    workbook.active.append(["Exported contacts"])
    sheet = workbook.create_sheet("People")
    sheet.append(["Name", "Phone"])
    sheet.append(["Ada", 4155550101])
    sheet.append(["Bob", None])
    sheet.append(["Cy", 4155550103])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_a_workbook_sheet_can_be_picked_and_numeric_phones_read_as_digits(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form(contacts_csv=b"unused,header\n")
    upload(at, "bulk_file", "people.xlsx", workbook_bytes())
    assert at.selectbox(key="bulk_sheet").options == ["Cover", "People"]
    at.selectbox(key="bulk_sheet").set_value("People").run()
    assert at.selectbox(key="bulk_phone_col").value == "Phone"
    phones = list(at.dataframe(key="bulk_preview").value["Phone"])
    assert phones[0] == "4155550101" and phones[2] == "4155550103"
    assert metric(at, "Invalid") == "1"  # the blank cell
    assert metric(at, "To call") == "2"


def test_junk_named_xlsx_is_an_error_not_a_traceback(channel) -> None:  # type: ignore[no-untyped-def]
    at = open_page("pages/bulk_calling.py")
    upload(at, "bulk_file", "people.xlsx", b"\x00\x01junk" * 100)
    assert at.error
    assert "people.xlsx" in messages(at) or "xlsx" in messages(at).lower()
    assert not at.dataframe


def test_an_empty_file_is_an_error(channel) -> None:  # type: ignore[no-untyped-def]
    at = open_page("pages/bulk_calling.py")
    upload(at, "bulk_file", "people.csv", b"")
    assert at.error


def test_no_phone_column_found_asks_for_one_after_next(channel) -> None:  # type: ignore[no-untyped-def]
    """A file whose columns give no hint: the user is asked to pick the phone column."""
    at = filled_form(contacts_csv=b"a,b\nx,y\n")
    assert at.selectbox(key="bulk_phone_col").value is None
    click_next(at)
    assert "Pick the phone number column" in messages(at)


def test_no_header_with_the_wrong_number_of_headers_states_both_counts(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form(contacts_csv=b"Ada,4155550101,SF\nBob,4155550102,LA\n")
    at.checkbox(key="bulk_no_header").check().run()
    at.text_input(key="bulk_headers").input("Name, Phone").run()
    errors = messages(at)
    assert "2" in errors and "3" in errors


def test_no_header_with_headers_given_reads_the_first_row_as_data(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form(contacts_csv=b"Ada,4155550101,SF\nBob,4155550102,LA\n")
    at.checkbox(key="bulk_no_header").check().run()
    at.text_input(key="bulk_headers").input("Name, Phone, City").run()
    at.selectbox(key="bulk_phone_col").set_value("Phone").run()
    assert metric(at, "Rows") == "2"
    assert metric(at, "To call") == "2"


UK_WITH_CODE = b"Name,Phone\n" + b"".join(f"P{i},4479111234{i:02d}\n".encode() for i in range(10))


def test_numbers_that_need_the_other_country_code_setting_are_warned_about(channel) -> None:  # type: ignore[no-untyped-def]
    """UK numbers with their 44 prefix read as US national numbers: a warning with counts."""
    at = filled_form(contacts_csv=UK_WITH_CODE)
    assert "10 of 10 numbers" in messages(at, "warning")
    assert metric(at, "To call") == "0"


def test_checking_the_country_code_box_makes_those_numbers_callable(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form(contacts_csv=UK_WITH_CODE)
    at.checkbox(key="bulk_has_cc").check().run()
    assert metric(at, "To call") == "10"
    assert not at.warning


def test_the_do_not_call_list_is_counted_in_the_summary(channel, session: Session) -> None:  # type: ignore[no-untyped-def]
    contacts.add_do_not_call(session=session, phone="+14155550102", note="asked")
    session.commit()
    at = filled_form()
    assert metric(at, "Do not call") == "1"
    assert metric(at, "To call") == "1"


def test_duplicates_are_called_once_unless_allowed(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form(contacts_csv=b"Name,Phone\nA,4155550101\nB,(415) 555-0101\n")
    assert metric(at, "Duplicates") == "1"
    assert metric(at, "To call") == "1"
    at.checkbox(key="bulk_allow_dupes").check().run()
    assert metric(at, "To call") == "2"


def test_a_time_in_the_past_is_refused_beside_the_field(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form()
    at.radio(key="bulk_when").set_value("Later").run()
    at.selectbox(key="bulk_zone").set_value("UTC").run()
    yesterday = utcnow() - timedelta(days=1)
    at.date_input(key="bulk_date").set_value(yesterday.date()).run()
    assert "in the past" in messages(at)
    click_next(at)
    assert not at.session_state["bulk_confirm_open"]


def test_a_time_beyond_30_days_is_refused(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form()
    at.radio(key="bulk_when").set_value("Later").run()
    at.selectbox(key="bulk_zone").set_value("UTC").run()
    at.date_input(key="bulk_date").set_value((utcnow() + timedelta(days=31)).date()).run()
    assert "30 days" in messages(at)


def test_a_calling_window_that_ends_before_it_starts_is_refused(channel) -> None:  # type: ignore[no-untyped-def]
    at = filled_form()
    at.checkbox(key="bulk_window").check().run()
    at.time_input(key="bulk_window_start").set_value(time(21, 0)).run()
    at.time_input(key="bulk_window_end").set_value(time(8, 0)).run()
    assert "calling window" in messages(at).lower()


def test_without_public_base_url_launch_is_impossible_and_said(
    monkeypatch, tmp_path, engine, database_url, redis_url, session: Session
) -> None:  # type: ignore[no-untyped-def]
    set_app_env(
        monkeypatch, tmp_path, database_url=database_url, redis_url=redis_url, public_base_url=None
    )
    make_channel(session)
    at = filled_form()
    assert "PUBLIC_BASE_URL" in messages(at, "warning")
    assert metric(at, "To call") == "2"  # the form still previews
    click_next(at)
    assert at.button(key="bulk_confirm").disabled
    assert at.button(key="bulk_test_call").disabled


# --------------------------------------------------------------------------------------------
# the dialog


def test_next_opens_the_dialog_with_what_will_happen(channel) -> None:  # type: ignore[no-untyped-def]
    at = click_next(filled_form())
    assert at.session_state["bulk_confirm_open"]
    summary = "\n".join(str(m.value) for m in at.markdown)
    assert "Main line" in summary and "Numbers to call" in summary
    assert "about 1 s at 2 call/s" in summary


def test_cancel_closes_the_dialog_and_keeps_everything(channel) -> None:  # type: ignore[no-untyped-def]
    at = click_next(filled_form())
    at.button(key="bulk_cancel").click().run()
    assert not at.session_state["bulk_confirm_open"]
    assert at.text_input(key="bulk_name").value == "Reminders"
    assert metric(at, "To call") == "2"
    assert at.get("audio")


def test_a_test_call_rings_the_number_through_twilio_and_shows_the_outcome(
    app_env, session: Session, fake: FakeTwilio
) -> None:  # type: ignore[no-untyped-def]
    account = fake.add_account(numbers=("+14155550100",))
    add_verified_channel(session, account)
    at = click_next(filled_form())
    at.text_input(key="bulk_test_to").input("(415) 555-0199").run()
    at.button(key="bulk_test_call").click().run()
    assert not at.exception, at.exception
    assert "+14155550199" in messages(at, "success")
    assert [call.to for call in fake.calls] == ["+14155550199"]


def test_a_test_call_to_a_bad_number_says_why(channel) -> None:  # type: ignore[no-untyped-def]
    at = click_next(filled_form())
    at.text_input(key="bulk_test_to").input("12").run()
    at.button(key="bulk_test_call").click().run()
    assert "cannot be called" in messages(at)


def test_confirm_creates_the_campaign_and_opens_it_in_history(channel, session: Session) -> None:  # type: ignore[no-untyped-def]
    at = click_next(filled_form())
    at.button(key="bulk_confirm").click().run()
    assert not at.exception, at.exception
    campaign = session.exec(select(Campaign)).one()
    assert campaign.name == "Reminders" and campaign.to_call == 2
    phones = sorted(call.phone for call in session.exec(select(Call)))
    assert phones == ["+14155550101", "+14155550102"]
    assert at.session_state["history_campaign_id"] == campaign.id
    assert not at.session_state["bulk_confirm_open"]
    assert get_queue(get_settings()).count == 1  # handed to the workers


def test_a_later_time_is_taken_in_the_chosen_zone_and_stored_in_utc(
    channel, session: Session
) -> None:  # type: ignore[no-untyped-def]
    at = filled_form()
    at.radio(key="bulk_when").set_value("Later").run()
    at.selectbox(key="bulk_zone").set_value("Asia/Tokyo").run()  # UTC+9, no daylight saving
    tomorrow = (utcnow() + timedelta(days=1)).date()
    at.date_input(key="bulk_date").set_value(tomorrow).run()
    at.time_input(key="bulk_time").set_value(time(9, 30)).run()
    click_next(at)
    assert "Asia/Tokyo" in "\n".join(str(m.value) for m in at.markdown)
    at.button(key="bulk_confirm").click().run()
    assert not at.exception, at.exception
    campaign = session.exec(select(Campaign)).one()
    expected = datetime.combine(tomorrow, time(0, 30), tzinfo=UTC)
    assert campaign.scheduled_at == expected
    assert campaign.time_zone == "Asia/Tokyo"


def add_verified_channel(session: Session, account) -> Channel:  # type: ignore[no-untyped-def]
    from bulkcall_core import crypto

    token = crypto.encrypt_secret(get_settings(), account.token)
    return make_channel(
        session, name="Fake account", account_sid=account.sid, auth_token_encrypted=token
    )
