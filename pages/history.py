"""History: every campaign, its calls and outcomes, actions, downloads and charts.

The campaigns table and the chosen campaign's status refresh themselves every
`LIVE_REFRESH_SECONDS` while a campaign runs (a fragment timer, only then). The call list is
paged in the database: the browser receives one page, never a whole campaign.
"""

from __future__ import annotations

import io
import time
from datetime import datetime
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from redis.exceptions import RedisError

from bulkcall_core import audio, campaigns, history, scheduling
from bulkcall_core.database import new_session
from bulkcall_core.errors import BulkCallError
from bulkcall_core.models import Campaign, CampaignStatus, Recording
from pages._common import (
    engine,
    format_time,
    page_header,
    session,
    settings,
    show_error,
    viewer_zone,
)

# How often the campaigns table refreshes while a campaign runs: "live" without hammering
# the database (each refresh is one count query per campaign on the page).
LIVE_REFRESH_SECONDS = 2
# Campaigns offered in the campaign picker: the most recent ones (plus the one asked for).
CAMPAIGN_CHOICES = 500
# Campaigns compared in the comparison chart: the most recent ones.
COMPARED_CAMPAIGNS = 10

# Writing .xlsx (openpyxl, streamed) managed about 250,000 calls a minute on a busy 2-core
# machine; above LARGE_EXCEL_CALLS the page says how long the Excel download will take.
EXCEL_CALLS_PER_MINUTE = 250_000
LARGE_EXCEL_CALLS = 100_000
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
COUNTS_KEY = "history_counts"  # {campaign id: (monotonic time, seconds it took, counts)}
# A live campaign's counts are recounted at most every this many times what counting took.
COUNT_COST_FACTOR = 5
CAMPAIGN_KEY = "history_campaign_id"  # set by Bulk calling before switching here: keep it
CONFIRM_KEY = "history_confirm"  # {"action": "stop"|"cancel", "campaign_id": id} while asked
MESSAGE_KEY = "history_action_message"  # (campaign_id, "success"|"error", text)
AUDIO_CHECK_KEY = "history_audio_check"  # (campaign_id, ok, text)

STATUS_ICONS = {
    CampaignStatus.SCHEDULED: ":material/schedule:",
    CampaignStatus.RUNNING: ":material/call:",
    CampaignStatus.PAUSED: ":material/pause_circle:",
    CampaignStatus.COMPLETED: ":material/check_circle:",
    CampaignStatus.CANCELED: ":material/cancel:",
    CampaignStatus.STOPPED: ":material/stop_circle:",
}
ACTIONS = {
    "cancel": (campaigns.cancel_campaign, "canceled"),
    "pause": (campaigns.pause_campaign, "paused"),
    "resume": (campaigns.resume_campaign, "resumed"),
    "stop": (campaigns.stop_campaign, "stopped"),
}
OUTCOME_COLORS = {
    history.OUTCOME_HUMAN: "#2e7d32",
    history.OUTCOME_VOICEMAIL: "#1565c0",
    history.OUTCOME_ANSWERED: "#00897b",
    history.OUTCOME_BUSY: "#ef6c00",
    history.OUTCOME_NO_ANSWER: "#f9a825",
    history.OUTCOME_FAILED: "#c62828",
    history.OUTCOME_CANCELED: "#6d4c41",
    history.OUTCOME_SKIPPED: "#9e9e9e",
    history.OUTCOME_CALLING: "#8e24aa",
    history.OUTCOME_RETRYING: "#ffcc80",
    history.OUTCOME_PENDING: "#cfd8dc",
}


CHART_HEIGHT = 260
# How stale a running campaign's charts may be.
CHART_REFRESH_SECONDS = 30
# Counts are whole numbers: no 0.5 ticks.
COUNT_AXIS = alt.Axis(format="d", tickMinStep=1)

# --------------------------------------------------------------------------- campaigns table


def _campaign_rows(page: history.CampaignPage) -> pd.DataFrame:
    zone = viewer_zone()
    rows = []
    for item in page.items:
        c = item.campaign
        n = _counts(c)
        rows.append(
            {
                "Name": f"{c.name} (#{c.id})",
                "Channel": item.channel_name,
                "Created by": c.created_by,
                "Created": _short_time(c.created_at, zone),
                "Scheduled": _short_time(c.scheduled_at, zone),
                "Status": c.status,
                "To call": n.to_call,
                "Done": n.finished,
                "Human": n.human,
                "Voicemail": n.voicemail,
                "Busy": n.busy,
                "No answer": n.no_answer,
                "Failed": n.failed,
                "Progress": n.progress,
            }
        )
    return pd.DataFrame(rows)


def _short_time(moment: Any, zone: Any) -> str:
    # The zone is named once, in the column header, to keep the table narrow.
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


COUNT_COLUMNS = ("To call", "Done", "Human", "Voicemail", "Busy", "No answer", "Failed")


def _campaigns_table() -> None:
    offset = st.session_state.get("history_campaigns_offset", 0)
    with session() as db:
        page = history.list_campaigns(session=db, offset=offset, with_counts=False)
    if not page.total:
        st.info("No campaign yet: start one on Bulk calling; it will show here.")
        st.page_link("pages/bulk_calling.py", label="Start a campaign", icon=":material/campaign:")
        return
    zone_label = datetime.now(viewer_zone()).strftime("%Z")
    st.dataframe(
        _campaign_rows(page),
        hide_index=True,
        width="stretch",
        column_config={
            **{name: st.column_config.NumberColumn(width=70) for name in COUNT_COLUMNS},
            "Created": st.column_config.TextColumn(f"Created ({zone_label})"),
            "Scheduled": st.column_config.TextColumn(f"Scheduled ({zone_label})"),
            "Status": st.column_config.TextColumn(width=90),
            "Progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent", width=110
            ),
        },
        key="history_campaigns_table",
    )
    _pager("history_campaigns_offset", page.total, history.CAMPAIGNS_PAGE_SIZE, "campaigns")


@st.cache_data(max_entries=1_000, show_spinner=False)
def _final_counts(_database: str, campaign_id: int, _finished_at: str) -> campaigns.OutcomeCounts:
    # A finished campaign's calls no longer change: counted once per database, campaign and
    # finish time (all three in the key: cache_data hashes underscored arguments too).
    with session() as db:
        return campaigns.outcome_counts(session=db, campaign_id=campaign_id)


def _counts(campaign: Campaign) -> campaigns.OutcomeCounts:
    """The campaign's counts per outcome. A live campaign's are recounted when older than
    LIVE_REFRESH_SECONDS, or COUNT_COST_FACTOR times what the last count took: a million
    calls take seconds to count on SQLite, and the table must stay responsive meanwhile."""
    if campaign.status in history.FINAL_STATUSES:
        return _final_counts(settings().sqlalchemy_url, campaign.id, str(campaign.finished_at))
    cache = st.session_state.setdefault(COUNTS_KEY, {})
    kept = cache.get(campaign.id)
    now = time.monotonic()
    if kept and now - kept[0] < max(LIVE_REFRESH_SECONDS, COUNT_COST_FACTOR * kept[1]):
        return kept[2]
    with session() as db:
        counts = campaigns.outcome_counts(session=db, campaign_id=campaign.id)
    cache[campaign.id] = (now, time.monotonic() - now, counts)
    return counts


def _pager(state_key: str, total: int, size: int, noun: str) -> None:
    """Previous / Next over `total` items, `size` a page; `noun` is plural ("calls")."""
    offset = min(st.session_state.get(state_key, 0), max(total - 1, 0) // size * size)
    shown = f"{offset + 1:,}–{min(offset + size, total):,}" if total else "0"
    if total <= size:
        st.caption(f"{total:,} {noun if total != 1 else noun.removesuffix('s')}")
        return
    row = st.container(horizontal=True, vertical_alignment="center")
    if row.button("Previous", key=f"{state_key}_prev", disabled=offset == 0):
        st.session_state[state_key] = max(offset - size, 0)
        st.rerun()
    if row.button("Next", key=f"{state_key}_next", disabled=offset + size >= total):
        st.session_state[state_key] = offset + size
        st.rerun()
    row.caption(f"Showing {shown} of {total:,} {noun}")


# --------------------------------------------------------------------------- one campaign


def _pick_campaign() -> int | None:
    with session() as db:
        choices = history.list_campaigns(
            session=db, limit=CAMPAIGN_CHOICES, with_counts=False
        ).items
    options = {s.campaign.id: s.campaign for s in choices}
    wanted = st.session_state.get(CAMPAIGN_KEY)
    if wanted is not None and wanted not in options:
        with session() as db:
            extra = db.get(Campaign, wanted)
        if extra is not None:
            options[extra.id] = extra
    if not options:
        return None
    ids = list(options)
    index = ids.index(wanted) if wanted in options else 0
    picked = st.selectbox(
        "Campaign",
        ids,
        index=index,
        format_func=lambda i: (
            f"{options[i].name} (#{i}), created "
            + format_time(options[i].created_at, viewer_zone())
        ),
        key=f"history_pick_{index}_{len(ids)}",
    )
    st.session_state[CAMPAIGN_KEY] = picked
    return picked


def _status_panel(campaign_id: int) -> None:
    zone = viewer_zone()
    with session() as db:
        campaign = campaigns.get_campaign(session=db, campaign_id=campaign_id)
    counts = _counts(campaign)
    status = CampaignStatus(campaign.status)
    st.subheader(f"{campaign.name}", anchor=False)
    st.markdown(
        f"{STATUS_ICONS.get(status, '')} **{status.value.capitalize()}** · scheduled "
        f"{format_time(campaign.scheduled_at, zone)} · created by {campaign.created_by or '—'}"
        f" · source: {campaign.source or '—'}"
    )
    st.progress(
        counts.progress,
        text=f"{counts.finished:,} of {counts.to_call:,} calls finished"
        + (f" · {counts.in_progress:,} in progress" if counts.in_progress else ""),
    )
    columns = st.columns(7)
    figures = [
        ("To call", counts.to_call),
        ("Human", counts.human),
        ("Voicemail", counts.voicemail),
        ("Busy", counts.busy),
        ("No answer", counts.no_answer),
        ("Failed", counts.failed),
        ("Skipped", counts.skipped),
    ]
    for column, (label, value) in zip(columns, figures, strict=True):
        column.metric(label, f"{value:,}")
    if campaign.last_error:
        st.warning(campaign.last_error, icon=":material/warning:")
    _actions(campaign)


def _actions(campaign: Campaign) -> None:
    status = campaign.status
    available = {
        CampaignStatus.SCHEDULED: ["pause", "cancel"],
        CampaignStatus.RUNNING: ["pause", "stop"],
        CampaignStatus.PAUSED: ["resume", "stop"],
    }.get(CampaignStatus(status), [])
    labels = {"pause": "Pause", "resume": "Resume", "stop": "Stop…", "cancel": "Cancel…"}
    row = st.container(horizontal=True)
    for action in available:
        if row.button(labels[action], key=f"history_action_{action}"):
            if action in ("stop", "cancel"):
                st.session_state[CONFIRM_KEY] = {"action": action, "campaign_id": campaign.id}
                st.rerun()
            _run_action(action, campaign.id)
            st.rerun()
    message = st.session_state.get(MESSAGE_KEY)
    if message and message[0] == campaign.id:
        (st.success if message[1] == "success" else st.error)(message[2])


def _run_action(action: str, campaign_id: int) -> None:
    function, done = ACTIONS[action]
    try:
        with session() as db:
            campaign = function(session=db, campaign_id=campaign_id)
            db.commit()
    except BulkCallError as exc:
        st.session_state[MESSAGE_KEY] = (campaign_id, "error", exc.message)
        return
    text = f"Campaign “{campaign.name}” {done}; it is now {campaign.status}."
    if action == "resume":
        text += _hand_to_scheduler(campaign_id)
    st.session_state[MESSAGE_KEY] = (campaign_id, "success", text)


def _hand_to_scheduler(campaign_id: int) -> str:
    """Queue a resumed campaign for a dispatcher; a note when that has to wait."""
    try:
        with session() as db:
            scheduling.submit(campaign_id, session=db, settings=settings())
    except BulkCallError as exc:
        return f" It cannot be dispatched yet: {exc.message}"
    except RedisError:
        # The campaign is stored as due: the workers' reconciler queues it once Redis is back.
        return " The queue is unreachable right now; the workers will pick it up once it is."
    return ""


@st.dialog("Please confirm")
def _confirm_dialog() -> None:
    request = st.session_state[CONFIRM_KEY]
    action, campaign_id = request["action"], request["campaign_id"]
    if action == "stop":
        st.write(
            "Stop this campaign for good? Nobody else will be called; calls already ringing "
            "finish. A stopped campaign cannot be resumed (use Pause to hold it)."
        )
    else:
        st.write("Cancel this scheduled campaign? Nobody will be called.")
    left, right = st.columns(2)
    if left.button(f"Yes, {action} it", type="primary", key="history_confirm_yes"):
        _run_action(action, campaign_id)
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()
    if right.button("No, keep it", key="history_confirm_no"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


def _audio_check(campaign_id: int) -> None:
    with st.expander("Can Twilio fetch the recording?", icon=":material/graphic_eq:"):
        st.caption(
            "Twilio downloads the recording from its public address when each call is "
            "answered. This fetches it the same way, from this server."
        )
        if st.button("Check the recording's address", key="history_audio_check_button"):
            try:
                with session() as db:
                    campaign = campaigns.get_campaign(session=db, campaign_id=campaign_id)
                    recording = db.get(Recording, campaign.recording_id)
                url = audio.recording_url(recording, settings())
            except BulkCallError as exc:
                st.session_state[AUDIO_CHECK_KEY] = (campaign_id, False, exc.message)
            else:
                with st.spinner(f"Fetching {url} …"):
                    check = audio.check_public_url(url)
                st.session_state[AUDIO_CHECK_KEY] = (campaign_id, check.ok, check.message)
        result = st.session_state.get(AUDIO_CHECK_KEY)
        if result and result[0] == campaign_id:
            (st.success if result[1] else st.error)(result[2])


# --------------------------------------------------------------------------- calls and rows


def _calls(campaign_id: int) -> None:
    left, right = st.columns([2, 1])
    outcomes = left.multiselect(
        "Outcome", history.OUTCOMES, key="history_outcomes", placeholder="All outcomes"
    )
    search = right.text_input(
        "Search name or number", key="history_search", placeholder="e.g. Alice or 555 0101"
    )
    offset_key = "history_calls_offset"
    filters = (campaign_id, tuple(outcomes), search)
    if st.session_state.get("history_calls_filters") != filters:
        st.session_state["history_calls_filters"] = filters
        st.session_state[offset_key] = 0
    try:
        with session() as db:
            page = history.list_calls(
                session=db,
                campaign_id=campaign_id,
                outcomes=outcomes,
                search=search,
                offset=st.session_state[offset_key],
            )
    except BulkCallError as exc:
        show_error(exc)
        return
    if not page.total:
        st.info("No call matches." if (outcomes or search) else "This campaign has no calls.")
        return
    st.dataframe(
        _call_frame(page.items),
        hide_index=True,
        width="stretch",
        column_config={
            "Row": st.column_config.NumberColumn(width="small", help="Row in the file"),
            "Duration (s)": st.column_config.NumberColumn(width="small"),
            "Attempts": st.column_config.NumberColumn(width="small"),
        },
        key="history_calls_table",
    )
    _pager(offset_key, page.total, history.CALLS_PAGE_SIZE, "calls")


def _call_frame(items: list[history.CallRow]) -> pd.DataFrame:
    zone = viewer_zone()
    return pd.DataFrame(
        [
            {
                "Row": c.row or None,
                "Name": c.name,
                "Number": c.phone,
                "Outcome": c.outcome,
                "Status": c.status or "",
                "Answered by": c.answered_by or "",
                "Duration (s)": c.duration_seconds,
                "Attempts": c.attempts,
                f"Called ({zone.key})": _short_time(c.placed_at, zone),
                "Error": c.error or "",
            }
            for c in items
        ]
    )


def _problems(campaign_id: int) -> None:
    offset_key = "history_problems_offset"
    with session() as db:
        page = history.list_problems(
            session=db, campaign_id=campaign_id, offset=st.session_state.get(offset_key, 0)
        )
    if not page.total:
        st.success("Every row of the file was callable.", icon=":material/check:")
        return
    st.caption("Rows of the file that were not called, and why.")
    frame = pd.DataFrame([{"Row": p.row, "Value": p.value, "Reason": p.reason} for p in page.items])
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key="history_problems_table",
        column_config={
            "Row": st.column_config.NumberColumn(width="small", help="Row in the file"),
            "Value": st.column_config.TextColumn(width="medium"),
            "Reason": st.column_config.TextColumn(width="large"),
        },
    )
    _pager(offset_key, page.total, history.CALLS_PAGE_SIZE, "rejected rows")


def _downloads(campaign: Campaign) -> None:
    bound_engine = engine()  # captured: the download runs on a thread without Streamlit

    def export(writer: Any) -> bytes:
        # Streamlit keeps the file in memory to serve it; one export is tens of MB at most
        # for a million calls.
        out = io.BytesIO()
        with new_session(bound_engine) as db:
            writer(session=db, campaign_id=campaign.id, out=out)
        return out.getvalue()

    formats = [
        ("CSV", history.write_csv, "csv", "text/csv"),
        ("Excel", history.write_xlsx, "xlsx", XLSX_MIME),
    ]
    row = st.container(horizontal=True)
    for label, writer, extension, mime in formats:
        row.download_button(
            f"Download {label}",
            data=lambda writer=writer: export(writer),
            file_name=f"campaign-{campaign.id}.{extension}",
            mime=mime,
            on_click="ignore",
            icon=":material/download:",
            key=f"history_download_{extension}",
        )
    if campaign.to_call > LARGE_EXCEL_CALLS:
        minutes = max(1, round(campaign.to_call / EXCEL_CALLS_PER_MINUTE))
        st.caption(
            f"Excel files of {campaign.to_call:,} calls take about {minutes} minute(s) to "
            "prepare after the click; the CSV is several times faster."
        )
    st.caption(
        "Every call and every rejected row, with the file's other columns. Cells that a "
        "spreadsheet would run as a formula start with an apostrophe."
    )


# --------------------------------------------------------------------------- charts


@st.cache_data(ttl=3600, max_entries=50, show_spinner="Adding up the calls…")
def _chart_data(
    database: str, campaign_id: int, version: str
) -> tuple[pd.DataFrame, pd.DataFrame, history.HourlyAnswerRate]:
    # `database` and `version` key the cache: a finished campaign's figures are kept, a live
    # one's are recomputed every CHART_REFRESH_SECONDS (aggregating a million calls takes
    # seconds).
    with session() as db:
        return (
            history.outcome_breakdown(session=db, campaign_id=campaign_id),
            history.calls_over_time(session=db, campaign_id=campaign_id),
            history.answer_rate_by_local_hour(session=db, campaign_ids=[campaign_id]),
        )


def _charts(campaign: Campaign) -> None:
    if campaign.status in history.FINAL_STATUSES:
        version = f"final {campaign.finished_at}"
    else:
        version = f"live {int(time.time() // CHART_REFRESH_SECONDS)}"
    breakdown, over_time, hourly = _chart_data(settings().sqlalchemy_url, campaign.id, version)
    left, right = st.columns(2)
    with left:
        st.markdown("**Outcomes**")
        if breakdown.empty:
            st.caption("No calls yet.")
        else:
            st.altair_chart(
                alt.Chart(breakdown, height=CHART_HEIGHT)
                .mark_bar()
                .encode(
                    x=alt.X("calls:Q", title="Calls", axis=COUNT_AXIS),
                    y=alt.Y("outcome:N", sort=list(history.OUTCOMES), title=None),
                    color=alt.Color("outcome:N", scale=_colors(breakdown["outcome"]), legend=None),
                    tooltip=["outcome", "calls"],
                ),
                width="stretch",
            )
    with right:
        st.markdown(f"**Calls over time** ({viewer_zone().key})")
        if over_time.empty:
            st.caption("No call placed yet.")
        else:
            frame = over_time.assign(time=over_time["time"].dt.tz_convert(viewer_zone().key))
            st.altair_chart(
                alt.Chart(frame, height=CHART_HEIGHT)
                .mark_bar()
                .encode(
                    x=alt.X("time:T", title=None),
                    y=alt.Y("sum(calls):Q", title="Calls", axis=COUNT_AXIS),
                    color=alt.Color("outcome:N", scale=_colors(frame["outcome"]), title="Outcome"),
                    tooltip=["time:T", "outcome", "calls"],
                ),
                width="stretch",
            )
    _hourly_chart(hourly)


def _colors(outcomes: pd.Series) -> alt.Scale:
    """The outcome colours, for the outcomes present only (so the legend lists those)."""
    present = [name for name in OUTCOME_COLORS if name in set(outcomes)]
    return alt.Scale(domain=present, range=[OUTCOME_COLORS[name] for name in present])


def _hourly_chart(hourly: history.HourlyAnswerRate) -> None:
    st.markdown("**Answer rate by hour of the recipient's day**")
    frame = hourly.frame[hourly.frame["calls"] > 0]
    if frame.empty:
        st.caption("No call has reached anyone yet.")
        return
    st.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "hour:O", title="Recipient's local hour", scale=alt.Scale(domain=list(range(24)))
            ),
            y=alt.Y("answer_rate:Q", title="Answered", axis=alt.Axis(format="%")),
            tooltip=[
                "hour",
                "calls",
                "answered",
                alt.Tooltip("answer_rate:Q", format=".0%"),
            ],
        ),
        width="stretch",
    )
    if hourly.unknown_zone:
        st.caption(f"{hourly.unknown_zone:,} calls left out: their number's time zone is unknown.")


def _comparison() -> None:
    with session() as db:
        recent = history.list_campaigns(
            session=db, limit=COMPARED_CAMPAIGNS, with_counts=False
        ).items
        frame = history.compare_campaigns(session=db, campaign_ids=[s.campaign.id for s in recent])
    if frame.empty or frame["answer_rate"].isna().all():
        st.caption("Campaigns are compared once some of their calls have finished.")
        return
    shares = frame.melt(
        id_vars=["campaign"],
        value_vars=[
            history.OUTCOME_HUMAN,
            history.OUTCOME_VOICEMAIL,
            history.OUTCOME_BUSY,
            history.OUTCOME_NO_ANSWER,
            history.OUTCOME_FAILED,
        ],
        var_name="outcome",
        value_name="share",
    ).dropna()
    st.altair_chart(
        alt.Chart(shares)
        .mark_bar()
        .encode(
            y=alt.Y("campaign:N", title=None, sort=None),
            x=alt.X("share:Q", title="Share of finished calls", axis=alt.Axis(format="%")),
            color=alt.Color("outcome:N", scale=_colors(shares["outcome"]), title="Outcome"),
            tooltip=["campaign", "outcome", alt.Tooltip("share:Q", format=".1%")],
        ),
        width="stretch",
    )


# --------------------------------------------------------------------------- the page


def _live_part(campaign_id: int | None, live: bool) -> None:
    _campaigns_table()
    if campaign_id is not None:
        st.divider()
        _status_panel(campaign_id)
    with session() as db:
        still_live = history.needs_live_refresh(session=db)
    if still_live != live:
        st.rerun()  # start or stop the timer: it is fixed when the fragment is defined


def main() -> None:
    page_header("History", f"Every campaign and every call. Times are in {viewer_zone().key}.")
    with session() as db:
        live = history.needs_live_refresh(session=db)
    campaign_id = _pick_campaign()
    st.fragment(_live_part, run_every=LIVE_REFRESH_SECONDS if live else None)(campaign_id, live)
    if st.session_state.get(CONFIRM_KEY):
        _confirm_dialog()
    if campaign_id is None:
        return
    with session() as db:
        campaign = campaigns.get_campaign(session=db, campaign_id=campaign_id)
    _audio_check(campaign_id)
    calls_tab, problems_tab, charts_tab, compare_tab = st.tabs(
        ["Calls", "Rejected rows", "Charts", "Compare campaigns"],
        key="history_tab",
        on_change="rerun",  # only the open tab runs its queries
    )
    if calls_tab.open:
        with calls_tab:
            _calls(campaign_id)
            _downloads(campaign)
    if problems_tab.open:
        with problems_tab:
            _problems(campaign_id)
    if charts_tab.open:
        with charts_tab:
            _charts(campaign)
    if compare_tab.open:
        with compare_tab:
            _comparison()


main()
