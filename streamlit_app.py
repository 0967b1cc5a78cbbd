"""The dashboard's entry point: page set-up, the access gate, then the page the user chose.

Run with `streamlit run streamlit_app.py` (or `python -m bulkcall_core serve`, which also
starts the worker and the web hooks). Everything shown lives in `pages/`; every action is a
call into `bulkcall_core`.
"""

from __future__ import annotations

import streamlit as st

from bulkcall_core.errors import BulkCallError
from bulkcall_core.settings import get_settings
from pages._common import APP_RAN_KEY, access_granted, require_access, settings

PAGES = [
    st.Page("pages/bulk_calling.py", title="Bulk calling", icon=":material/campaign:"),
    st.Page("pages/history.py", title="History", icon=":material/history:"),
    st.Page("pages/contacts.py", title="Contacts", icon=":material/contacts:"),
    st.Page("pages/channels.py", title="Channels", icon=":material/settings_phone:"),
]


def _may_enter() -> bool:
    try:
        get_settings()
    except BulkCallError:
        return False  # settings() below shows which variable is wrong
    return access_granted()


st.set_page_config(page_title="bulkcall", page_icon=":material/campaign:", layout="wide")
# st.navigation must run on every run, before anything can stop the script: until a process
# has run it once, Streamlit serves the files in pages/ directly (its older multipage mode).
# Pages go across the top (the tables of History need the width a sidebar would take), and
# stay hidden until the visitor is let in.
page = st.navigation(PAGES, position="top" if _may_enter() else "hidden")
st.session_state[APP_RAN_KEY] = True
settings()  # a bad setting stops here, naming the variable, before any page runs
require_access()
page.run()
