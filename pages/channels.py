"""Channels: the Twilio accounts and numbers campaigns call from.

Add (verified with Twilio before it is stored), verify again, change the pace, the allowed
countries or the auth token, and remove. The auth token is write-only here: it is typed into
a password field, stored encrypted, and shown back only as its last four characters.
"""

from __future__ import annotations

import streamlit as st

from bulkcall_core import channels, phones
from bulkcall_core.errors import BulkCallError
from bulkcall_core.models import Channel
from pages._common import format_time, page_header, session, settings, show_error, viewer_zone

ADD_FIELDS = ("name", "account_sid", "auth_token", "from_number", "calls_per_second", "countries")
ADD_KEYS = {field: f"channels_add_{field}" for field in ADD_FIELDS}
ADD_DEFAULTS = {"calls_per_second": channels.DEFAULT_CALLS_PER_SECOND, "countries": []}
RESET_KEY = "channels_reset_add"  # clear the add form on the next run (after a success)
MESSAGE_KEY = "channels_message"  # (channel id or "add", "success"|"error", text)
REMOVE_KEY = "channels_confirm_remove"  # channel id while its removal is being confirmed
# Where an error about each core field is shown in the add form.
FIELD_SLOTS = {"allowed_countries": "countries"}


@st.cache_data(max_entries=1, show_spinner=False)
def _countries() -> dict[str, str]:
    return dict(phones.country_options())


def _say(where: object, kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = (where, kind, text)


def _show_message(where: object) -> None:
    message = st.session_state.get(MESSAGE_KEY)
    if message and message[0] == where:
        if message[1] == "success":
            st.success(message[2], icon=":material/check_circle:")
        elif message[1] == "warning":
            st.warning(message[2], icon=":material/warning:")
        else:
            st.error(message[2], icon=":material/error:")


# --------------------------------------------------------------------------- adding


def _add_form() -> None:
    # Values live in session_state only (no widget defaults), so that after an addition they
    # can be reset by assignment: deleting the keys would leave the token in the browser's box.
    reset = st.session_state.pop(RESET_KEY, False)
    for field, key in ADD_KEYS.items():
        if reset or key not in st.session_state:
            st.session_state[key] = ADD_DEFAULTS.get(field, "")
    countries = _countries()
    with st.form("channels_add_form", border=True):
        st.markdown("**Add a channel**")
        st.caption(
            "A Twilio account and one of its voice numbers. The Account SID and auth token "
            "are on the Twilio console's account dashboard; the token is stored encrypted "
            "and never shown again."
        )
        slots = {}
        left, right = st.columns(2)
        with left:
            st.text_input("Name", key=ADD_KEYS["name"], placeholder="e.g. Sales US")
            slots["name"] = st.empty()
            st.text_input(
                "Account SID", key=ADD_KEYS["account_sid"], placeholder="AC…", max_chars=34
            )
            slots["account_sid"] = st.empty()
            st.text_input("Auth token", key=ADD_KEYS["auth_token"], type="password")
            slots["auth_token"] = st.empty()
        with right:
            st.text_input("From number", key=ADD_KEYS["from_number"], placeholder="+14155550100")
            slots["from_number"] = st.empty()
            st.number_input(
                "Calls per second",
                key=ADD_KEYS["calls_per_second"],
                min_value=channels.MIN_CALLS_PER_SECOND,
                max_value=channels.MAX_CALLS_PER_SECOND,
                step=1.0,
                help="Twilio allows 1 call per second per account unless you bought more.",
            )
            slots["calls_per_second"] = st.empty()
            st.multiselect(
                "Allowed destination countries",
                list(countries),
                key=ADD_KEYS["countries"],
                format_func=countries.get,
                placeholder="Any country",
                help="Numbers in other countries are rejected before a campaign starts.",
            )
            slots["countries"] = st.empty()
        submitted = st.form_submit_button("Verify with Twilio and add", type="primary")
        general = st.empty()
    if submitted:
        _add(slots, general)
    _show_message("add")


def _add(slots: dict[str, object], general: object) -> None:
    state = st.session_state
    try:
        with session() as db, st.spinner("Checking the account with Twilio…"):
            channel = channels.add_channel(
                session=db,
                settings=settings(),
                name=state[ADD_KEYS["name"]],
                account_sid=state[ADD_KEYS["account_sid"]],
                auth_token=state[ADD_KEYS["auth_token"]],
                from_number=state[ADD_KEYS["from_number"]],
                calls_per_second=state[ADD_KEYS["calls_per_second"]],
                allowed_countries=state[ADD_KEYS["countries"]],
            )
            db.commit()
    except BulkCallError as exc:
        slot = slots.get(FIELD_SLOTS.get(exc.field or "", exc.field or ""), general)
        show_error(exc, slot)
        return
    text = f"Channel “{channel.name}” added: Twilio confirmed {channel.from_number}."
    _say(channel.id, "success", text)
    st.session_state[RESET_KEY] = True
    st.rerun()


# --------------------------------------------------------------------------- the list


def _channel_card(channel: Channel, masked: str) -> None:
    countries = channels.allowed_country_set(channel)
    with st.container(border=True):
        info, actions = st.columns([3, 1])
        with info:
            st.markdown(f"#### {channel.name}")
            st.markdown(
                f"**{channel.from_number}** · account `{channel.account_sid}` · "
                f"token `{masked}`  \n"
                f"{channel.calls_per_second:g} call(s) per second · "
                + ("calls " + ", ".join(sorted(countries)) if countries else "calls any country")
            )
            _channel_state(channel)
        with actions:
            if st.button("Verify again", key=f"channels_verify_{channel.id}", width="stretch"):
                _verify(channel.id)
            if st.button("Remove…", key=f"channels_remove_{channel.id}", width="stretch"):
                st.session_state[REMOVE_KEY] = channel.id
                st.rerun()
        _show_message(channel.id)
        _edit_form(channel)


def _channel_state(channel: Channel) -> None:
    if channel.verified_at is None:
        st.warning("Not verified: verify it before a campaign can use it.")
    else:
        st.caption(f"Verified with Twilio {format_time(channel.verified_at, viewer_zone())}")
    if not channel.voice_capable:
        st.warning("This number cannot make voice calls: campaigns cannot use it.")
    if channel.is_trial:
        st.warning(
            f"{channels.TRIAL_WARNING} Paid account required to call unverified numbers.",
            icon=":material/warning:",
        )


def _verify(channel_id: int) -> None:
    try:
        with session() as db, st.spinner("Checking with Twilio…"):
            channel = channels.verify_channel(
                session=db, settings=settings(), channel_id=channel_id
            )
            db.commit()
    except BulkCallError as exc:
        _say(channel_id, "error", exc.message)
        return
    _say(channel_id, "success", f"Twilio confirmed {channel.from_number} of “{channel.name}”.")


def _edit_form(channel: Channel) -> None:
    countries = _countries()
    with st.expander("Change pace, countries or auth token"):
        with st.form(f"channels_edit_{channel.id}", border=False):
            cps = st.number_input(
                "Calls per second",
                min_value=channels.MIN_CALLS_PER_SECOND,
                max_value=channels.MAX_CALLS_PER_SECOND,
                value=float(channel.calls_per_second),
                step=1.0,
                key=f"channels_edit_cps_{channel.id}",
            )
            chosen = st.multiselect(
                "Allowed destination countries",
                list(countries),
                default=sorted(channels.allowed_country_set(channel) or ()),
                format_func=countries.get,
                placeholder="Any country",
                key=f"channels_edit_countries_{channel.id}",
            )
            token = st.text_input(
                "New auth token (leave blank to keep the current one)",
                type="password",
                key=f"channels_edit_token_{channel.id}",
            )
            if st.form_submit_button("Save changes"):
                _update(channel.id, cps, chosen, token)


def _update(channel_id: int, cps: float, countries: list[str], token: str) -> None:
    try:
        with session() as db:
            channel = channels.update_channel(
                session=db,
                channel_id=channel_id,
                calls_per_second=cps,
                allowed_countries=countries,
                auth_token=token or None,
                settings=settings(),
            )
            db.commit()
    except BulkCallError as exc:
        _say(channel_id, "error", exc.message)
    else:
        _say(channel_id, "success", f"Saved the changes to “{channel.name}”.")
    st.rerun()


@st.dialog("Remove channel?")
def _confirm_remove() -> None:
    channel_id = st.session_state[REMOVE_KEY]
    st.write(
        "Remove this channel? Its stored auth token is deleted. Channels that placed "
        "campaigns are kept, so that History keeps them."
    )
    left, right = st.columns(2)
    if left.button("Yes, remove it", type="primary", key="channels_remove_yes"):
        try:
            with session() as db:
                name = channels.get_channel(session=db, channel_id=channel_id).name
                channels.remove_channel(session=db, channel_id=channel_id)
                db.commit()
        except BulkCallError as exc:
            _say(channel_id, "error", exc.message)
        else:
            _say("add", "success", f"Channel “{name}” removed.")
        st.session_state.pop(REMOVE_KEY, None)
        st.rerun()
    if right.button("No, keep it", key="channels_remove_no"):
        st.session_state.pop(REMOVE_KEY, None)
        st.rerun()


def main() -> None:
    page_header("Channels", "The Twilio accounts and numbers campaigns call from.")
    try:
        with session() as db:
            listed = channels.list_channels(session=db)
            masks = {c.id: channels.masked_token(c, settings()) for c in listed}
    except BulkCallError as exc:
        show_error(exc)
        return
    if not listed:
        st.info("No channel yet: add your Twilio account and number below.")
    for channel in listed:
        _channel_card(channel, masks[channel.id])
    if st.session_state.get(REMOVE_KEY):
        _confirm_remove()
    _add_form()


main()
