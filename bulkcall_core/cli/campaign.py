"""Commands: campaign create | status | cancel | pause | resume | stop.

`create` does what the dashboard's Confirm does: plan the file (same options as `plan`) or a
contact list, store the recording, store the campaign, hand it to the workers. Nothing is
stored when PUBLIC_BASE_URL is unset or any input is bad. If Redis is down after the campaign
is stored, it still runs: the workers' reconciler enqueues it from the database.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from sqlmodel import Session, select

from bulkcall_core import audio, campaigns, channels, contacts, scheduling
from bulkcall_core.cli.plan import (
    add_plan_options,
    existing_file,
    plan_options,
    read_contact_file,
)
from bulkcall_core.database import get_engine, new_session
from bulkcall_core.errors import CampaignError, ScheduleError
from bulkcall_core.models import Call, Campaign, Channel
from bulkcall_core.planning import Plan, plan_table
from bulkcall_core.settings import Settings, get_settings

ACTIONS = ("cancel", "pause", "resume", "stop")
SECONDS_PER_MINUTE = 60


def register(commands: argparse._SubParsersAction) -> None:  # noqa: SLF001
    """Add `campaign` and its sub-commands to the parser."""
    parser = commands.add_parser("campaign", help="create, inspect and control campaigns")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    _add_create(actions)
    status = actions.add_parser("status", help="status and counts per outcome")
    status.add_argument("id", type=int)
    status.add_argument("--json", action="store_true", help="one JSON object, with every call")
    status.set_defaults(run=run_status)
    for action in ACTIONS:
        command = actions.add_parser(action, help=f"{action} a campaign")
        command.add_argument("id", type=int)
        command.set_defaults(run=run_action, campaign_action=action)


def _add_create(actions: argparse._SubParsersAction) -> None:  # noqa: SLF001
    create = actions.add_parser(
        "create",
        help="create a campaign from a file or a contact list",
        description="Plan the recipients, store the recording and the campaign, and hand it "
        "to the workers (now, or at --at).",
    )
    create.add_argument("--name", required=True)
    create.add_argument("--channel", required=True, help="the channel's name")
    create.add_argument("--audio", required=True, help="MP3, WAV or AIFF file")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="CSV or Excel contact file")
    source.add_argument("--contact-list", help="name of a saved contact list")
    # The planning options, as `plan` names them; --phone-column is needed with --file only.
    add_plan_options(create, phone_required=False, country_help="the channel number's")
    create.add_argument("--at", help="ISO 8601 time with its offset (default: now)")
    create.add_argument("--voicemail-full-message", action="store_true")
    create.add_argument("--retries", type=int, default=0, help="extra attempts (busy etc.)")
    create.add_argument("--retry-interval", type=int, default=10, help="minutes between them")
    create.add_argument("--window", help="calling window in the recipient's time, 08:00-21:00")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=run_create)


def run_create(args: argparse.Namespace) -> int:
    """Create the campaign and print its id (or the JSON summary)."""
    settings = get_settings()
    audio.public_base_url(settings)  # refuse before storing anything
    scheduled_at = parse_at(args.at)
    window_start, window_end = parse_window(args.window)
    with new_session(get_engine(settings)) as session:
        channel = channels.get_channel_by_name(session=session, name=args.channel)
        plan, source = _plan(args, session, channel)
        recording = audio.store_recording(
            session=session,
            settings=settings,
            data=existing_file(args.audio),
            filename=Path(args.audio).name,
        )
        campaign = campaigns.create_campaign(
            session=session,
            plan=plan,
            name=args.name,
            channel_id=channel.id,  # type: ignore[arg-type]
            recording_id=recording.id,  # type: ignore[arg-type]
            scheduled_at=scheduled_at,
            time_zone=_zone_name(scheduled_at),
            created_by=_user(),
            voicemail_full_message=args.voicemail_full_message,
            retry_count=args.retries,
            retry_interval_seconds=args.retry_interval * SECONDS_PER_MINUTE,
            window_start=window_start,
            window_end=window_end,
            source=source,
            allow_duplicates=args.allow_duplicates,
        )
        session.commit()
        _submit(campaign, session, settings)
        _print_created(campaign, as_json=args.json)
    return 0


def parse_at(value: str | None) -> datetime | None:
    """--at as an aware datetime (None: now). Raises ScheduleError without an offset."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ScheduleError(
            f"--at {value!r} is not an ISO 8601 time; write it like 2026-12-24T09:30+01:00",
            field="at",
        ) from None
    if moment.utcoffset() is None:
        raise ScheduleError(
            f"--at {value!r} has no UTC offset; add yours, like {value}+01:00 (or Z for UTC)",
            field="at",
        )
    return moment


def parse_window(value: str | None) -> tuple[str | None, str | None]:
    """--window "08:00-21:00" as ("08:00", "21:00"); checked by campaigns.check_window."""
    if not value:
        return None, None
    start, dash, end = value.partition("-")
    if not dash:
        raise CampaignError(
            f"--window {value!r} needs a start and an end, like 08:00-21:00", field="window"
        )
    return campaigns.check_window(start.strip(), end.strip())


def _plan(args: argparse.Namespace, session: Session, channel: Channel) -> tuple[Plan, str]:
    """The recipients from --file or --contact-list, with the channel's allowed countries."""
    if args.file and not args.phone_column:
        raise CampaignError("--file needs --phone-column", field="phone_column")
    allowed = channels.allowed_country_set(channel) or None
    region = channels.channel_region(channel)
    if args.contact_list:
        options = plan_options(args, default_country=region, allowed_countries=allowed)
        contact_list = contacts.get_list_by_name(session=session, name=args.contact_list)
        plan = contacts.plan_contact_list(
            session=session,
            list_id=contact_list.id,  # type: ignore[arg-type]
            options=options,
        )
        return plan, f"contact list: {contact_list.name}"
    blocked = contacts.do_not_call_numbers(session=session)
    options = plan_options(
        args, default_country=region, allowed_countries=allowed, do_not_call=blocked
    )
    return plan_table(read_contact_file(args), options), Path(args.file).name


def _zone_name(moment: datetime | None) -> str:
    """The creator's zone for display: the --at offset as an IANA-style name, else UTC."""
    if moment is None or not moment.utcoffset():
        return "UTC"
    minutes = int(moment.utcoffset().total_seconds() // 60)  # type: ignore[union-attr]
    if minutes % 60:
        return "UTC"
    # Etc/GMT signs are inverted by POSIX convention: UTC+01:00 is Etc/GMT-1.
    return f"Etc/GMT{-minutes // 60:+d}"


def _user() -> str:
    try:
        return f"{getpass.getuser()} (command line)"
    except (KeyError, OSError):
        return "command line"


def _submit(campaign: Campaign, session: Session, settings: Settings) -> None:
    try:
        scheduling.submit(campaign.id, session=session, settings=settings)  # type: ignore[arg-type]
    except RedisError as exc:
        sys.stderr.write(
            f"warning: campaign {campaign.id} is stored but Redis did not answer "
            f"({type(exc).__name__}); a worker will start it once Redis is back\n"
        )


def _print_created(campaign: Campaign, *, as_json: bool) -> None:
    if as_json:
        payload = {"id": campaign.id, "to_call": campaign.to_call, "status": campaign.status}
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        sys.stdout.write(f"{campaign.id}\n")


def run_status(args: argparse.Namespace) -> int:
    """Print a campaign's status and counts (JSON: with every call)."""
    with new_session(get_engine(get_settings())) as session:
        campaign = campaigns.get_campaign(session=session, campaign_id=args.id)
        counts = campaigns.outcome_counts(session=session, campaign_id=args.id)
        if args.json:
            payload = _status_json(session, campaign, counts)
            sys.stdout.write(json.dumps(payload) + "\n")
        else:
            sys.stdout.writelines(line + "\n" for line in _status_lines(campaign, counts))
    return 0


COUNT_FIELDS = (
    "to_call",
    "pending",
    "dialing",
    "placed",
    "done",
    "skipped",
    "completed",
    "human",
    "voicemail",
    "busy",
    "no_answer",
    "failed",
    "canceled",
    "attempts",
)


def _status_json(session: Session, campaign: Campaign, counts: Any) -> dict[str, Any]:
    rows = session.execute(
        select(Call.phone, Call.name, Call.status, Call.sid, Call.attempts, Call.state)
        .where(Call.campaign_id == campaign.id)
        .order_by(Call.id)
    )
    calls = [
        {
            "phone": phone,
            "name": name,
            "status": status or state,
            "sid": sid,
            "attempts": attempts,
        }
        for phone, name, status, sid, attempts, state in rows
    ]
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "scheduled_at": campaign.scheduled_at.isoformat(),
        "last_error": campaign.last_error,
        "counts": {field: getattr(counts, field) for field in COUNT_FIELDS},
        "calls": calls,
    }


def _status_lines(campaign: Campaign, counts: Any) -> list[str]:
    lines = [
        f"Campaign {campaign.id} {campaign.name!r}: {campaign.status}",
        f"Scheduled at {campaign.scheduled_at:%Y-%m-%d %H:%M} UTC",
        "  ".join(f"{field}={getattr(counts, field)}" for field in COUNT_FIELDS),
    ]
    if campaign.last_error:
        lines.append(f"Last error: {campaign.last_error}")
    return lines


def run_action(args: argparse.Namespace) -> int:
    """cancel / pause / resume / stop; a resumed campaign is handed to the workers again."""
    settings = get_settings()
    with new_session(get_engine(settings)) as session:
        act = getattr(campaigns, f"{args.campaign_action}_campaign")
        campaign = act(session=session, campaign_id=args.id)
        session.commit()
        if args.campaign_action == "resume":
            _submit(campaign, session, settings)
        sys.stdout.write(f"Campaign {campaign.id} is {campaign.status}\n")
    return 0
