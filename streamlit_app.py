"""The dashboard's entry point: page set-up, the access gate, then the page the user chose.

Run with `streamlit run streamlit_app.py` (or `python -m bulkcall_core serve`, which also
starts the worker and the web hooks). Everything shown lives in `pages/`; every action is a
call into `bulkcall_core`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages._common import access_sidebar, require_access, settings

APP_DIR = Path(__file__).resolve().parent
PAGES = [
    ("pages/bulk_calling.py", "Bulk calling", ":material/campaign:"),
    ("pages/history.py", "History", ":material/history:"),
    ("pages/contacts.py", "Contacts", ":material/contacts:"),
    ("pages/channels.py", "Channels", ":material/settings_phone:"),
]


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
require_access()
access_sidebar()
# Pages across the top: the tables of History need the width a sidebar would take.
st.navigation(_pages(), position="top").run()
