"""Who gets into the dashboard (AppTest on streamlit_app.py): an OIDC login when configured,
else the shared password, else localhost only with a notice on every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bulkcall_core.settings import get_settings
from pages._common import LOCAL_NOTICE, is_remote_client
from tests.e2e.app_env import app_env  # noqa: F401 (fixture)

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = ("pages/bulk_calling.py", "pages/history.py", "pages/contacts.py", "pages/channels.py")
PASSWORD = "correct horse battery staple"
OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-some-length",
    "client_id": "bulkcall",
    "client_secret": "s3cret",
    "server_metadata_url": "https://login.example.com/.well-known/openid-configuration",
}

pytestmark = pytest.mark.usefixtures("app_env")


@pytest.fixture
def with_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_PASSWORD", PASSWORD)
    get_settings.cache_clear()


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def sign_in(at: AppTest, password: str, name: str = "") -> AppTest:
    # AppTest runs a page file directly after its first run (it resets Streamlit's
    # navigation mode before each run), so the sign-in happens on the History page; the
    # browser test signs in through streamlit_app.py itself.
    run(at)
    at.switch_page("pages/history.py")
    run(at)
    at.text_input(key="access_name").input(name)
    at.text_input(key="access_password").input(password)
    [submit] = [b for b in at.button if b.label == "Sign in"]
    submit.click()
    return run(at)


@pytest.mark.parametrize("page", PAGES)
def test_open_access_says_localhost_only_on_every_page(page: str) -> None:
    """With no login configured, every page says it is served on this computer only."""
    at = run(AppTest.from_file(APP, default_timeout=60))
    at.switch_page(page)
    run(at)
    assert LOCAL_NOTICE in [info.value for info in at.info]


def test_password_gate_shows_nothing_before_sign_in(with_password: None) -> None:
    """With DASHBOARD_PASSWORD set, only the sign-in form shows."""
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert [t.value for t in at.title] == ["bulkcall"]
    assert [t.label for t in at.text_input] == ["Your name", "Dashboard password"]
    assert not at.dataframe


def test_wrong_password_is_refused_and_keeps_the_name(with_password: None) -> None:
    """A wrong password says so; the typed name stays; no page shows."""
    at = sign_in(AppTest.from_file(APP, default_timeout=60), "guess", name="Ann")
    assert at.error[0].value.startswith("Wrong password")
    assert at.text_input(key="access_name").value == "Ann"
    assert [t.value for t in at.title] == ["bulkcall"]


def test_right_password_lets_in_and_records_the_name(with_password: None) -> None:
    """The right password opens the dashboard; the name is who creates campaigns."""
    at = sign_in(AppTest.from_file(APP, default_timeout=60), PASSWORD, name="Ann Lee")
    assert at.title[0].value == "History"
    assert "Signed in as **Ann Lee**" in [c.value for c in at.caption]
    assert LOCAL_NOTICE not in [info.value for info in at.info]


def test_pages_are_gated_even_when_run_directly(with_password: None) -> None:
    """A page reached without the main script (AppTest runs page files directly, as a
    pages/ URL might) still shows the sign-in form, not the page."""
    at = run(AppTest.from_file(APP, default_timeout=60))
    at.switch_page("pages/history.py")
    run(at)
    assert [t.value for t in at.title] == ["bulkcall"]
    assert [t.label for t in at.text_input] == ["Your name", "Dashboard password"]


def test_sign_out_returns_to_the_password_form(with_password: None) -> None:
    """Sign out forgets the login."""
    at = sign_in(AppTest.from_file(APP, default_timeout=60), PASSWORD)
    [sign_out] = [b for b in at.button if b.label == "Sign out"]
    sign_out.click()
    run(at)
    assert [t.label for t in at.text_input] == ["Your name", "Dashboard password"]


def test_oidc_configured_asks_to_sign_in(with_password: None) -> None:
    """An [auth] provider in secrets wins over the password: a Sign in button, no page."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = OIDC
    run(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.text_input


def test_oidc_signed_in_user_is_recorded(with_password: None) -> None:
    """A signed-in OIDC user sees the pages, named by e-mail."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = OIDC
    at.user = {"is_logged_in": True, "email": "ann@example.com", "name": "Ann"}
    run(at)
    assert at.title[0].value == "Bulk calling"
    assert "Signed in as **ann@example.com**" in [c.value for c in at.caption]


def test_a_bad_setting_stops_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad setting shows a message naming the variable instead of a traceback."""
    monkeypatch.setenv("WEBHOOK_PORT", "eighty")
    get_settings.cache_clear()
    at = run(AppTest.from_file(APP, default_timeout=60))
    assert "WEBHOOK_PORT" in at.error[0].value


@pytest.mark.parametrize(
    ("address", "remote"),
    [
        (None, False),
        ("127.0.0.2", False),
        ("::ffff:127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", True),
        ("192.168.1.20", True),
        ("2001:db8::1", True),
        ("not an address", True),
    ],
)
def test_is_remote_client(address: str | None, remote: bool) -> None:
    """Loopback clients are local; any other address is remote; garbage is refused."""
    assert is_remote_client(address) is remote
