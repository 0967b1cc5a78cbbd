"""What every page shares: settings, the database, who is signed in, headers and errors.

Pages import these instead of reaching for the core's factories themselves, so that a bad
setting, the access notice and the engine cache behave the same on every page.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st
from sqlalchemy import Engine
from sqlmodel import Session
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.runtime.pages_manager import PagesManager

from bulkcall_core import database
from bulkcall_core.errors import BulkCallError
from bulkcall_core.settings import Settings, get_settings

AccessMode = Literal["oidc", "password", "local"]
# A wrong password waits this long before it is answered, so guessing is slow; short enough
# that a typo costs nothing.
WRONG_PASSWORD_DELAY_SECONDS = 0.5
# session_state flag: streamlit_app.py has run in this session.
APP_RAN_KEY = "app_main_script_ran"
# session_state key holding the name of whoever signed in with the shared password.
PASSWORD_USER_KEY = "access_password_user"
LOCAL_NOTICE = (
    "No login is configured, so this dashboard answers only on the computer it runs on "
    "(localhost). To share it, set DASHBOARD_PASSWORD or an OIDC provider in "
    "`.streamlit/secrets.toml` (see `.streamlit/secrets.toml.example`)."
)


def settings() -> Settings:
    """The product's settings; a bad value stops the page with a message naming the variable."""
    try:
        return get_settings()
    except BulkCallError as exc:
        st.error(exc.message, icon=":material/settings:")
        st.stop()
        raise  # unreachable: st.stop() raises; keeps type checkers honest


@st.cache_resource(max_entries=4, show_spinner=False)
def _engine_for(url: str, _settings: Settings) -> Engine:
    # Keyed on the URL so that a settings change (tests, a new DATABASE_URL) gets its own engine.
    return database.get_engine(_settings)


def engine() -> Engine:
    """The process-wide engine of the configured database (migrated on first use)."""
    current = settings()
    return _engine_for(current.sqlalchemy_url, current)


@contextmanager
def session() -> Iterator[Session]:
    """A database session for one piece of page work; the page commits what it changes."""
    with database.new_session(engine()) as db_session:
        yield db_session


def oidc_provider() -> str | None:
    """The OIDC provider to pass to `st.login` ("" for the default one), or None if none.

    A provider is configured by an `[auth]` section in secrets.toml: either with
    `server_metadata_url` directly in it (the default provider), or with named sub-sections
    (`[auth.google]`); the first named one is used.
    """
    auth = _auth_section()
    if not auth:
        return None
    if auth.get("server_metadata_url") and auth.get("client_id"):
        return ""
    for name, value in auth.items():
        if isinstance(value, Mapping) and value.get("client_id"):
            return str(name)
    return None


def _auth_section() -> Mapping[str, Any] | None:
    try:
        section = st.secrets.get("auth")
    except (StreamlitSecretNotFoundError, FileNotFoundError):
        return None
    return section if isinstance(section, Mapping) else None


def access_mode() -> AccessMode:
    """How people get in: an OIDC login, the shared password, or localhost only."""
    if oidc_provider() is not None:
        return "oidc"
    if settings().dashboard_password:
        return "password"
    return "local"


def is_remote_client(ip_address: object) -> bool:
    """True when `st.context.ip_address` names a client on another machine.

    Streamlit reports None for 127.0.0.1 and ::1; other loopback forms (127.0.0.2,
    ::ffff:127.0.0.1) are local too. Anything that is not an address string (no client) is not
    a remote client; the launcher's 127.0.0.1 binding is what keeps other machines out.
    """
    if not isinstance(ip_address, str):
        return False
    try:
        address = ipaddress.ip_address(ip_address.split("%", 1)[0])
    except ValueError:
        return True  # unreadable: refuse rather than guess
    mapped = getattr(address, "ipv4_mapped", None)
    return not (address.is_loopback or (mapped is not None and mapped.is_loopback))


def current_user() -> str:
    """Who is using the dashboard, as recorded in `Campaign.created_by`."""
    mode = access_mode()
    if mode == "oidc":
        return str(st.user.get("email") or st.user.get("name") or "signed-in user")
    if mode == "password":
        return str(st.session_state.get(PASSWORD_USER_KEY) or "password user")
    return "local"


def access_granted() -> bool:
    """Whether this visitor may see the pages (draws nothing)."""
    mode = access_mode()
    if mode == "oidc":
        return bool(st.user.get("is_logged_in"))
    if mode == "password":
        return bool(st.session_state.get(PASSWORD_USER_KEY))
    # st.context.ip_address is None for a loopback connection. The launcher also binds the
    # dashboard to 127.0.0.1 in this mode; this check covers a manual `streamlit run`.
    return not is_remote_client(st.context.ip_address)


def require_access() -> None:
    """Let the visitor through, or show the sign-in (or the localhost refusal) and stop.

    Called by streamlit_app.py before the navigation and again by every page's header, so a
    page can never be shown around the gate (for example when a page file is run directly).
    """
    if access_granted():
        return
    {"oidc": _oidc_gate, "password": _password_gate, "local": _local_gate}[access_mode()]()


def _oidc_gate() -> None:
    st.title("bulkcall")
    st.write("Sign in with your organisation's account to use the dashboard.")
    provider = oidc_provider() or None
    st.button("Sign in", type="primary", on_click=st.login, args=(provider,) if provider else ())
    st.stop()


def _password_gate() -> None:
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("bulkcall")
        st.caption("Bulk voice calls through Twilio. Sign in with the team's password.")
        with st.form("access_password_form", enter_to_submit=True):
            name = st.text_input(
                "Your name", key="access_name", help="Recorded on the campaigns you create."
            )
            password = st.text_input("Dashboard password", type="password", key="access_password")
            submitted = st.form_submit_button("Sign in", type="primary", key="access_sign_in")
        if not submitted:
            st.stop()
        expected = settings().dashboard_password or ""
        if hmac.compare_digest(password.encode(), expected.encode()):
            st.session_state[PASSWORD_USER_KEY] = name.strip() or "password user"
            st.rerun()
        time.sleep(WRONG_PASSWORD_DELAY_SECONDS)
        st.error("Wrong password. Try again, or ask whoever runs the dashboard for it.")
    st.stop()


def _local_gate() -> None:
    st.title("bulkcall")
    st.error(LOCAL_NOTICE, icon=":material/lock:")
    st.stop()


def _sign_out() -> None:
    st.session_state.pop(PASSWORD_USER_KEY, None)
    if access_mode() == "oidc":
        st.logout()


def show_error(exc: BulkCallError, where: Any = None) -> None:
    """Show a core error's message (never a traceback) in `where` (a container) or the page."""
    (where if where is not None else st).error(exc.message, icon=":material/error:")


def _leave_folder_mode() -> None:
    """Rerun through streamlit_app.py when Streamlit ran this page file on its own.

    Until some run in the process has called st.navigation, Streamlit treats `pages/` as an
    old-style page folder: a first visit to /history runs pages/history.py directly, with a
    sidebar listing every file there. Clearing that process-wide flag and rerunning makes
    this and every later run go through streamlit_app.py (its navigation and access gate).
    """
    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    # Rerun only a session's first run (a page load): a later run carries a click that a
    # rerun would drop. (AppTest resets the flag before each of its runs.)
    if not st.session_state.get(APP_RAN_KEY):
        st.rerun()


def page_header(title: str, caption: str | None = None) -> None:
    """The access check, the title every page starts with, and the localhost notice when
    access is open."""
    _leave_folder_mode()
    require_access()
    st.title(title)
    if caption:
        st.caption(caption)
    if access_mode() == "local":
        st.info(LOCAL_NOTICE, icon=":material/lock_open:")
        return
    row = st.container(horizontal=True, vertical_alignment="center")
    row.caption(f"Signed in as **{current_user()}**")
    row.button("Sign out", key="access_sign_out", type="tertiary", on_click=_sign_out)


def viewer_zone() -> ZoneInfo:
    """The browser's time zone (UTC when the browser did not say or named an unknown zone)."""
    name = st.context.timezone or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_time(moment: datetime | None, zone: ZoneInfo | None = None) -> str:
    """`moment` in the viewer's zone, with the zone's abbreviation: "2026-12-04 09:30 PST"."""
    if moment is None:
        return ""
    local = moment.astimezone(zone or viewer_zone())
    return local.strftime("%Y-%m-%d %H:%M %Z")
