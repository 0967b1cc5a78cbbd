"""The dashboard's entry point: page set-up, the access gate, then the page the user chose.

Run with `streamlit run streamlit_app.py` (or `python -m bulkcall_core serve`, which also
starts the worker and the web hooks). Everything shown lives in `pages/`; every action is a
call into `bulkcall_core`.
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path

import streamlit as st

from pages._common import (
    LOCAL_NOTICE,
    PASSWORD_USER_KEY,
    access_mode,
    current_user,
    is_remote_client,
    oidc_provider,
    settings,
)

# A wrong password waits this long before it is answered, so guessing is slow; short enough
# that a typo costs nothing.
WRONG_PASSWORD_DELAY_SECONDS = 0.5

APP_DIR = Path(__file__).resolve().parent
PAGES = [
    ("pages/bulk_calling.py", "Bulk calling", ":material/campaign:"),
    ("pages/history.py", "History", ":material/history:"),
    ("pages/contacts.py", "Contacts", ":material/contacts:"),
    ("pages/channels.py", "Channels", ":material/settings_phone:"),
]


def _oidc_gate() -> None:
    if st.user.get("is_logged_in"):
        return
    st.title("bulkcall")
    st.write("Sign in with your organisation's account to use the dashboard.")
    provider = oidc_provider() or None
    st.button("Sign in", type="primary", on_click=st.login, args=(provider,) if provider else ())
    st.stop()


def _password_gate() -> None:
    if st.session_state.get(PASSWORD_USER_KEY):
        return
    st.title("bulkcall")
    with st.form("access_password_form", enter_to_submit=True):
        name = st.text_input(
            "Your name", key="access_name", help="Recorded on the campaigns you create."
        )
        password = st.text_input("Dashboard password", type="password", key="access_password")
        submitted = st.form_submit_button("Sign in", type="primary")
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
    # st.context.ip_address is None for a loopback connection. The launcher also binds the
    # dashboard to 127.0.0.1 in this mode; this check covers a manual `streamlit run`.
    if not is_remote_client(st.context.ip_address):
        return
    st.title("bulkcall")
    st.error(LOCAL_NOTICE, icon=":material/lock:")
    st.stop()


def _sidebar() -> None:
    with st.sidebar:
        mode = access_mode()
        if mode == "local":
            st.caption("Open access: this computer only.")
            return
        st.caption(f"Signed in as **{current_user()}**")
        if st.button("Sign out", key="access_sign_out"):
            if mode == "oidc":
                st.logout()
            st.session_state.pop(PASSWORD_USER_KEY, None)
            st.rerun()


def _pages() -> list[st.Page]:
    # TODO(dashboard): while the pages are being written in parallel, a missing file is left
    # out of the menu instead of failing every page.
    return [
        st.Page(path, title=title, icon=icon)
        for path, title, icon in PAGES
        if (APP_DIR / path).is_file()
    ]


st.set_page_config(page_title="bulkcall", page_icon=":material/campaign:", layout="wide")
settings()  # a bad setting stops here, naming the variable, before any page runs
{"oidc": _oidc_gate, "password": _password_gate, "local": _local_gate}[access_mode()]()
_sidebar()
st.navigation(_pages()).run()
