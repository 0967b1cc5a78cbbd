"""Bulk calling: the product's form. Channel, name, recording, who to call (a file or a contact
list), when, options; Next opens a confirmation dialog with a test call; Confirm creates the
campaign and opens it in History.

Errors are shown beside their field. What is merely missing (no name yet, no file yet) is only
flagged once the user pressed Next, so a fresh form is not a wall of red.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import streamlit as st
from redis.exceptions import RedisError
from sqlmodel import Session

from bulkcall_core import (
    audio,
    campaigns,
    channels,
    contacts,
    dispatch,
    phones,
    planning,
    scheduling,
)
from bulkcall_core.errors import BulkCallError
from bulkcall_core.models import Campaign, Channel, Recording, utcnow
from pages import _contact_file as contact_file
from pages._common import current_user, page_header, session, settings, show_error, viewer_zone

LOG = logging.getLogger(__name__)
TAB_FILE = "Upload CSV/Excel"
TAB_LIST = "Use contact list"
# Default calling window, in the recipient's local time: usual "reasonable hours".
DEFAULT_WINDOW = (time(8, 0), time(21, 0))
DEFAULT_RETRY_MINUTES = 10
AUDIO_TYPES = ["mp3", "wav", "aiff", "aif"]
VOICEMAIL_HELP = (
    "When an answering machine picks up, wait for its greeting to end and the beep before "
    "playing the message, so the voicemail holds the whole message. Calls answered by a person "
    "start a few seconds later while Twilio listens."
)
RECORDING_TIPS = (
    "Say who is calling in the first sentence, keep it to 30-60 seconds, repeat the key "
    "information (a date, a number to call back), and record in a quiet room. MP3 or 8 kHz "
    "mono WAV is all a phone line carries."
)


@dataclass(frozen=True)
class Draft:
    """Everything the confirmation dialog shows and Confirm stores."""

    channel: Channel
    name: str
    recording: contact_file.StoredFile
    audio_info: audio.AudioInfo
    plan: planning.Plan
    source: str
    scheduled_at: datetime | None  # None: now
    time_zone: str
    voicemail_full_message: bool
    retry_count: int
    retry_interval_seconds: int
    window: tuple[str | None, str | None]
    allow_duplicates: bool


def duration_text(seconds: float) -> str:
    """12.3 -> '12 s'; 754 -> '12 min 34 s'; 7260 -> '2 h 1 min'; 185000 -> '2 days 3 h'."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24} days {hours % 24} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def channel_label(channel: Channel) -> str:
    cps = f"{channel.calls_per_second:g} call/s"
    return f"{channel.name} · {channel.from_number} · {cps}"


def _mark_tried() -> None:
    st.session_state["bulk_tried"] = True
    st.session_state["bulk_next_pending"] = True
    st.session_state.pop("bulk_launched", None)  # a new confirmation may launch again


def _close_confirm() -> None:
    st.session_state["bulk_confirm_open"] = False
    st.session_state.pop("bulk_test_result", None)


def _keep_source_tab() -> None:
    st.session_state["bulk_source_kept"] = st.session_state.get("bulk_source", TAB_FILE)


def _on_new_audio() -> None:
    contact_file.remember_upload("bulk_audio")
    st.session_state.pop("bulk_audio_info", None)


# --------------------------------------------------------------------------------------------
# Fields. Each draws itself with its errors and returns its value (None when unusable).


def channel_field(available: list[Channel], show_missing: bool) -> Channel | None:
    if not available:
        st.warning(
            "No channel can call yet. Add a Twilio account and one of its voice-capable numbers "
            "on the Channels page; once it is verified it appears here.",
            icon=":material/settings_phone:",
        )
        st.page_link("pages/channels.py", label="Add a channel", icon=":material/add_call:")
        return None
    by_id = {channel.id: channel for channel in available}
    if st.session_state.get("bulk_channel") not in by_id:
        st.session_state["bulk_channel"] = available[0].id
    chosen = st.selectbox(
        "Channel",
        list(by_id),
        format_func=lambda channel_id: channel_label(by_id[channel_id]),
        key="bulk_channel",
        persist_state="session",
        help="The Twilio number the calls come from. Add more on the Channels page.",
    )
    channel = by_id.get(chosen)
    if channel is not None and channel.is_trial:
        st.caption(
            ":orange[Trial account: Twilio only lets it call numbers verified in that account "
            "(paid account required to call anyone else).]"
        )
    if channel is None and show_missing:
        st.error("Pick the channel to call from.", icon=":material/error:")
    return channel


def name_field(show_missing: bool) -> str | None:
    if st.session_state.pop("bulk_reset_name", False):
        st.session_state["bulk_name"] = ""
    name = st.text_input(
        "Name",
        key="bulk_name",
        max_chars=200,
        placeholder="e.g. December appointment reminders",
        help="To easily identify the campaign later.",
        persist_state="session",
    ).strip()
    if not name and show_missing:
        st.error("Give the campaign a name, to easily identify it later.", icon=":material/error:")
    return name or None


def audio_field(show_missing: bool) -> tuple[contact_file.StoredFile, audio.AudioInfo] | None:
    st.file_uploader(
        "Audio file",
        type=AUDIO_TYPES,
        key="bulk_audio_file",
        max_upload_size=contact_file.MAX_UPLOAD_MB,
        on_change=_on_new_audio,
        help="The message played to each person who answers: MP3, WAV or AIFF, up to 100 MB.",
    )
    stored = contact_file.stored_file("bulk_audio")
    if stored is None:
        if show_missing:
            st.error("Upload the recording to play.", icon=":material/error:")
        st.caption(RECORDING_TIPS)
        return None
    if st.session_state.get("bulk_audio_file") is None:
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.caption(f"Using **{stored.name}**, uploaded earlier.")
        right.button(
            "Remove",
            key="bulk_audio_forget",
            on_click=contact_file.forget_file,
            args=("bulk_audio",),
        )
    try:
        info = _audio_info(stored)
    except BulkCallError as exc:
        show_error(exc)
        return None
    st.audio(stored.data, format=info.content_type)
    st.caption(
        f"**{stored.name}** · {duration_text(info.duration_seconds)} · "
        f"{info.extension.upper()}{f' · {info.encoding}' if info.encoding else ''}"
    )
    for hint in audio.recording_hints(info):
        st.caption(f":orange[{hint}]")
    return stored, info


def _audio_info(stored: contact_file.StoredFile) -> audio.AudioInfo:
    held = st.session_state.get("bulk_audio_info")
    if held is not None and held[0] == stored.digest:
        return held[1]
    info = audio.inspect_audio(stored.data, filename=stored.name)
    st.session_state["bulk_audio_info"] = (stored.digest, info)
    return info


def source_field(
    channel: Channel | None, dnc: frozenset[str], show_missing: bool
) -> tuple[planning.Plan, str, bool] | None:
    """The data-source tabs: (plan, source description, duplicates allowed) or None."""
    tab_file, tab_list = st.tabs(
        [TAB_FILE, TAB_LIST],
        key="bulk_source",
        on_change=_keep_source_tab,
        # Tabs have no persist_state: reopen the one chosen before a visit to another page.
        default=st.session_state.get("bulk_source_kept", TAB_FILE),
    )
    default_country = channels.channel_region(channel) if channel else "US"
    allowed = channels.allowed_country_set(channel) if channel else None
    if tab_file.open is not False:
        with tab_file:
            outcome = contact_file.contact_file(
                "bulk",
                default_country=default_country,
                allowed_countries=allowed,
                do_not_call=dnc,
                show_errors_for_missing=show_missing,
            )
            if outcome.plan is None or outcome.problems or outcome.file is None:
                return None
            allow_dupes = bool(st.session_state.get("bulk_allow_dupes"))
            return outcome.plan, outcome.file.name, allow_dupes
    with tab_list:
        return contact_list_source(allowed, dnc, show_missing)


def contact_list_source(
    allowed: frozenset[str] | None, dnc: frozenset[str], show_missing: bool
) -> tuple[planning.Plan, str, bool] | None:
    with session() as db:
        summaries = contacts.list_summaries(session=db)
    if not summaries:
        st.info("No contact list yet. Create one on the Contacts page.", icon=":material/info:")
        st.page_link("pages/contacts.py", label="Contacts", icon=":material/contacts:")
        return None
    by_id = {summary.id: summary for summary in summaries}
    chosen = st.selectbox(
        "Contact list",
        list(by_id),
        index=None,
        format_func=lambda list_id: f"{by_id[list_id].name} ({by_id[list_id].size:,} contacts)",
        key="bulk_list",
        placeholder="Pick a list",
        persist_state="session",
    )
    if chosen is None:
        if show_missing:
            st.error("Pick the contact list to call.", icon=":material/error:")
        return None
    summary = by_id[chosen]
    # Planned again only when the list, the channel's countries or the do-not-call list change.
    key = (chosen, summary.updated_at, summary.size, allowed, dnc)
    options = planning.PlanOptions(phone_column="phone", allowed_countries=allowed)

    def make() -> planning.Plan:
        with st.spinner(f"Checking the {summary.size:,} contacts of '{summary.name}'…"):
            with session() as db:
                return contacts.plan_contact_list(session=db, list_id=chosen, options=options)

    plan = contact_file.guarded(
        lambda: contact_file.cached("bulk_list", "plan", key, make), f"planning {summary.name}"
    )
    if plan is None:
        return None
    contact_file.show_summary(plan, key="bulk_list_problems_download")
    if not plan.to_call:
        st.error("Nobody on this list can be called.", icon=":material/error:")
        return None
    return plan, f"contact list: {by_id[chosen].name}", False


def schedule_field() -> tuple[datetime | None, str] | None:
    """(aware time or None for now, IANA zone) or None when the time is refused."""
    when = st.radio(
        "Execute on",
        ["Now", "Later"],
        key="bulk_when",
        horizontal=True,
        persist_state="session",
        help="Now, or a date and time up to 30 days ahead.",
    )
    browser_zone = viewer_zone().key
    if when == "Now":
        return None, browser_zone
    zones = sorted(available_timezones())
    st.session_state.setdefault("bulk_zone", browser_zone if browser_zone in zones else "UTC")
    zone_name = st.session_state["bulk_zone"]
    local_now = datetime.now(ZoneInfo(zone_name))
    st.session_state.setdefault("bulk_date", local_now.date())
    st.session_state.setdefault("bulk_time", _next_quarter(local_now))
    day_col, time_col, zone_col = st.columns([2, 1, 2])
    day = day_col.date_input(
        "Date",
        key="bulk_date",
        min_value=local_now.date() - timedelta(days=1),
        max_value=local_now.date() + timedelta(days=campaigns.MAX_DAYS_AHEAD + 1),
        format="YYYY-MM-DD",
        persist_state="session",
    )
    at_time = time_col.time_input("Time", key="bulk_time", step=300, persist_state="session")
    zone_col.selectbox(
        "Time zone",
        zones,
        key="bulk_zone",
        help="Your browser's time zone by default.",
        persist_state="session",
    )
    if not isinstance(day, date) or at_time is None:
        st.error("Pick a date and a time.", icon=":material/error:")
        return None
    at = datetime.combine(day, at_time, tzinfo=ZoneInfo(zone_name))
    try:
        campaigns.check_schedule(at, now=utcnow(), time_zone=zone_name)
    except BulkCallError as exc:
        show_error(exc)
        return None
    in_utc = "" if zone_name == "UTC" else f" ({at.astimezone(ZoneInfo('UTC')):%H:%M} UTC)"
    st.caption(f"Starts {at:%A %d %B %Y at %H:%M %Z}{in_utc}.")
    return at, zone_name


def _next_quarter(now: datetime) -> time:
    later = now + timedelta(minutes=75)
    return time(later.hour, (later.minute // 15) * 15)


def options_fields() -> tuple[bool, int, int, tuple[str | None, str | None]] | None:
    """(voicemail, retry count, retry interval s, window) or None when the window is refused."""
    voicemail = st.checkbox(
        "Voicemail: leave the whole message (wait for the beep)",
        key="bulk_voicemail",
        help=VOICEMAIL_HELP,
        persist_state="session",
    )
    retry_count, retry_interval = 0, DEFAULT_RETRY_MINUTES * 60
    if st.checkbox(
        "Retry busy, no-answer and failed calls",
        key="bulk_retry",
        persist_state="session",
        help="Call again the people who were busy, did not answer, or whose call failed.",
    ):
        left, right = st.columns(2)
        retry_count = left.number_input(
            "Extra attempts",
            min_value=1,
            max_value=campaigns.MAX_RETRY_COUNT,
            value=1,
            key="bulk_retry_count",
            persist_state="session",
        )
        minutes = right.number_input(
            "Minutes between attempts",
            min_value=campaigns.MIN_RETRY_INTERVAL_SECONDS // 60,
            max_value=24 * 60,
            value=DEFAULT_RETRY_MINUTES,
            key="bulk_retry_minutes",
            persist_state="session",
        )
        retry_interval = int(minutes) * 60
    window: tuple[str | None, str | None] = (None, None)
    if st.checkbox(
        "Only call within hours of the recipient's local time",
        key="bulk_window",
        persist_state="session",
        help="Each number's time zone comes from the number itself; calls outside the window "
        "wait for it to open.",
    ):
        left, right = st.columns(2)
        start = left.time_input(
            "From", value=DEFAULT_WINDOW[0], key="bulk_window_start", persist_state="session"
        )
        end = right.time_input(
            "Until", value=DEFAULT_WINDOW[1], key="bulk_window_end", persist_state="session"
        )
        try:
            window = campaigns.check_window(
                start.strftime("%H:%M") if start else None, end.strftime("%H:%M") if end else None
            )
        except BulkCallError as exc:
            show_error(exc)
            return None
    return voicemail, int(retry_count), retry_interval, window


# --------------------------------------------------------------------------------------------
# The confirmation dialog


def _estimate(plan: planning.Plan, channel: Channel) -> str:
    seconds = plan.to_call / max(channel.calls_per_second, 0.001)
    return duration_text(seconds)


def confirm_rows(draft: Draft) -> list[tuple[str, str]]:
    """What will happen, as (label, text) rows for the confirmation dialog."""
    when = (
        "now"
        if draft.scheduled_at is None
        else f"{draft.scheduled_at:%A %d %B %Y at %H:%M %Z} ({draft.time_zone})"
    )
    retries = (
        f"{draft.retry_count} extra attempt(s), {draft.retry_interval_seconds // 60} min apart"
        if draft.retry_count
        else "none"
    )
    window = "any time" if draft.window[0] is None else f"{draft.window[0]}–{draft.window[1]}"
    voicemail = (
        "waits for the beep, then leaves the whole message"
        if draft.voicemail_full_message
        else "plays as soon as the call is answered"
    )
    plan, channel = draft.plan, draft.channel
    seconds = draft.audio_info.duration_seconds
    return [
        ("Campaign", draft.name),
        ("Channel", channel_label(channel)),
        ("Numbers to call", f"{plan.to_call:,} (from {draft.source})"),
        ("Not called", f"{plan.rows - plan.to_call:,} rejected, duplicate or do-not-call rows"),
        ("Starts", when),
        ("Recording", f"{draft.recording.name}, {duration_text(seconds)}"),
        ("Voicemail", voicemail),
        ("Retries", retries),
        ("Calling hours", f"{window} (recipient's local time)"),
        (
            "Estimated time",
            f"about {_estimate(plan, channel)} at {channel.calls_per_second:g} call/s",
        ),
    ]


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@st.dialog("Ready to call?", width="large", on_dismiss=_close_confirm)
def confirm_dialog(draft: Draft, launch_problem: str | None) -> None:
    lines = ["| What | Details |", "|---|---|"]
    lines += [f"| **{label}** | {_markdown_cell(text)} |" for label, text in confirm_rows(draft)]
    st.markdown("\n".join(lines))
    if launch_problem:
        st.error(launch_problem, icon=":material/public_off:")
    _test_call_section(draft, launch_problem is not None)
    left, right = st.columns(2)
    if left.button("Cancel", key="bulk_cancel", width="stretch"):
        _close_confirm()
        st.rerun()
    if right.button(
        "Confirm",
        key="bulk_confirm",
        type="primary",
        width="stretch",
        disabled=launch_problem is not None,
    ):
        _launch(draft)


def _test_call_section(draft: Draft, disabled: bool) -> None:
    st.markdown("**Test call to yourself**")
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    left.text_input(
        "Your phone number",
        key="bulk_test_to",
        placeholder="+1 415 555 0100",
        persist_state="session",
        help="Rings this number now with the recording and the voicemail option above.",
    )
    if right.button("Test call", key="bulk_test_call", disabled=disabled, width="stretch"):
        st.session_state["bulk_test_result"] = _place_test_call(draft)
    result = st.session_state.get("bulk_test_result")
    if result:
        kind, message = result
        (st.success if kind == "ok" else st.error)(message)


def _place_test_call(draft: Draft) -> tuple[str, str]:
    raw = st.session_state.get("bulk_test_to", "")
    check = phones.normalize_phone(raw, country=phones.region_of(draft.channel.from_number) or "US")
    if check.phone is None:
        return "error", f"'{raw}' cannot be called: {check.reason}."
    try:
        with session() as db:
            recording = _stored_recording(db, draft)
            info = dispatch.place_test_call(
                session=db,
                settings=settings(),
                channel_id=draft.channel.id,
                recording_id=recording.id,
                to=check.phone,
                voicemail_full_message=draft.voicemail_full_message,
            )
            db.commit()
    except BulkCallError as exc:
        return "error", exc.message
    if info.error_code or info.status in ("failed", "canceled"):
        reason = info.error_message or info.status
        return "error", f"Test call to {check.phone} failed: {reason} (Twilio {info.error_code})."
    return "ok", f"Calling {check.phone}: Twilio says {info.status} (call {info.sid})."


def _stored_recording(db: Session, draft: Draft) -> Recording:
    return audio.store_recording(
        session=db, settings=settings(), data=draft.recording.data, filename=draft.recording.name
    )


def _draft_key(draft: Draft) -> tuple[Any, ...]:
    """What makes two confirmations the same campaign (the plan object is cached per file and
    options, so its identity stands for them)."""
    return (
        draft.name,
        draft.channel.id,
        draft.recording.digest,
        id(draft.plan),
        draft.scheduled_at,
    )


def _launch(draft: Draft) -> None:
    launched = st.session_state.get("bulk_launched")
    if launched and launched[0] == _draft_key(draft):
        # Confirm pressed again while the first press was finishing: never store it twice.
        _open_in_history(launched[1])
    bar = st.progress(0.0, text="Storing the campaign…")
    try:
        with session() as db:
            campaign = _create(db, draft, bar)
            db.commit()
            st.session_state["bulk_launched"] = (_draft_key(draft), campaign.id)
            try:
                scheduling.submit(campaign.id, session=db, settings=settings())
            except RedisError:
                # Stored is enough: every worker's reconciler starts what the database says
                # is due once Redis answers again.
                LOG.warning(
                    "Campaign %s stored; Redis unreachable, left to the reconciler", campaign.id
                )
    except BulkCallError as exc:
        bar.empty()
        show_error(exc)
        return
    _open_in_history(campaign.id)


def _open_in_history(campaign_id: int) -> None:
    _close_confirm()
    st.session_state["bulk_reset_name"] = True
    st.session_state["history_campaign_id"] = campaign_id
    st.switch_page("pages/history.py")


def _create(db: Session, draft: Draft, bar: Any) -> Campaign:
    recording = _stored_recording(db, draft)
    return campaigns.create_campaign(
        session=db,
        plan=draft.plan,
        name=draft.name,
        channel_id=draft.channel.id,
        recording_id=recording.id,
        scheduled_at=draft.scheduled_at,
        time_zone=draft.time_zone,
        created_by=current_user(),
        voicemail_full_message=draft.voicemail_full_message,
        retry_count=draft.retry_count,
        retry_interval_seconds=draft.retry_interval_seconds,
        window_start=draft.window[0],
        window_end=draft.window[1],
        source=draft.source,
        allow_duplicates=draft.allow_duplicates,
        progress=lambda fraction: bar.progress(
            fraction, text=f"Storing the campaign… {fraction:.0%}"
        ),
    )


# --------------------------------------------------------------------------------------------
# The page


def launch_problem() -> str | None:
    """Why no campaign can be launched from this install, or None."""
    try:
        audio.public_base_url(settings())
    except BulkCallError as exc:
        return f"Campaigns cannot be launched: {exc.message}. The form still previews files."
    return None


def main() -> None:
    page_header("Bulk calling", "Call a list of people with a recorded message.")
    blocked = launch_problem()
    if blocked:
        st.warning(blocked, icon=":material/public_off:")
    show_missing = bool(st.session_state.get("bulk_tried"))
    with session() as db:
        available = channels.eligible_channels(session=db)
        dnc = contacts.do_not_call_numbers(session=db)

    st.subheader("Campaign", divider="gray")
    channel = channel_field(available, show_missing)
    name = name_field(show_missing)
    st.subheader("Recording", divider="gray")
    recorded = audio_field(show_missing)
    st.subheader("Who to call", divider="gray")
    source = source_field(channel, dnc, show_missing)
    st.subheader("When and how", divider="gray")
    schedule = schedule_field()
    options = options_fields()

    st.button("Next", key="bulk_next", type="primary", on_click=_mark_tried)
    fields = {
        "channel": channel,
        "name": name,
        "recording": recorded,
        "who to call": source,
        "execute on": schedule,
        "options": options,
    }
    needed = [label for label, value in fields.items() if value is None]
    ready = not needed
    if st.session_state.pop("bulk_next_pending", False):
        if ready:
            st.session_state["bulk_confirm_open"] = True
        else:
            st.error(
                f"Check {', '.join(needed)}: see the messages beside them above.",
                icon=":material/error:",
            )
    if not ready:
        st.session_state["bulk_confirm_open"] = False
        return
    if st.session_state.get("bulk_confirm_open"):
        plan, source_name, allow_dupes = source
        scheduled_at, zone = schedule
        voicemail, retry_count, retry_interval, window = options
        draft = Draft(
            channel=channel,
            name=name,
            recording=recorded[0],
            audio_info=recorded[1],
            plan=plan,
            source=source_name,
            scheduled_at=scheduled_at,
            time_zone=zone,
            voicemail_full_message=voicemail,
            retry_count=retry_count,
            retry_interval_seconds=retry_interval,
            window=window,
            allow_duplicates=allow_dupes,
        )
        confirm_dialog(draft, blocked)


main()
