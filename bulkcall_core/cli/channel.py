"""Commands: channel add | list | verify | update | remove.

The auth token is read from the environment variable TWILIO_AUTH_TOKEN, never from the
command line (argv is visible to every user of the machine and kept in shell histories), and
is never printed: `list` shows its last four characters at most.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from bulkcall_core import channels
from bulkcall_core.database import get_engine, new_session
from bulkcall_core.errors import ChannelError
from bulkcall_core.models import Channel
from bulkcall_core.settings import Settings, get_settings

TOKEN_VARIABLE = "TWILIO_AUTH_TOKEN"


def register(commands: argparse._SubParsersAction) -> None:  # noqa: SLF001
    """Add `channel` and its sub-commands to the parser."""
    parser = commands.add_parser("channel", help="Twilio channels: add, list, verify, remove")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))

    add = actions.add_parser(
        "add",
        help="add a channel, verified with Twilio (token from TWILIO_AUTH_TOKEN)",
        description=f"The auth token is read from the environment variable {TOKEN_VARIABLE}.",
    )
    add.add_argument("--name", required=True)
    add.add_argument("--account-sid", required=True, help="AC followed by 32 hex characters")
    add.add_argument("--from", dest="from_number", required=True, help="the number, +E.164")
    add.add_argument("--cps", type=float, default=channels.DEFAULT_CALLS_PER_SECOND)
    add.add_argument("--allowed-countries", default="", help="ISO codes, e.g. US,CA; default any")
    add.add_argument("--json", action="store_true", help="print the channel as JSON")
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="list the channels (tokens masked)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)

    verify = actions.add_parser("verify", help="check a channel with Twilio again")
    verify.add_argument("name")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(run=run_verify)

    update = actions.add_parser(
        "update",
        help="change pace, countries or name; --new-token reads TWILIO_AUTH_TOKEN",
    )
    update.add_argument("name")
    update.add_argument("--cps", type=float)
    update.add_argument("--allowed-countries", help="ISO codes; an empty value allows any")
    update.add_argument("--rename")
    update.add_argument("--new-token", action="store_true", help=f"store {TOKEN_VARIABLE}")
    update.add_argument("--json", action="store_true")
    update.set_defaults(run=run_update)

    remove = actions.add_parser("remove", help="remove a channel no campaign uses")
    remove.add_argument("name")
    remove.set_defaults(run=run_remove)


def run_add(args: argparse.Namespace) -> int:
    token = _token_from_environment()

    def add(session: Session, settings: Settings) -> Channel:
        return channels.add_channel(
            session=session,
            settings=settings,
            name=args.name,
            account_sid=args.account_sid,
            auth_token=token,
            from_number=args.from_number,
            calls_per_second=args.cps,
            allowed_countries=args.allowed_countries,
        )

    return _change_and_show(args, "Added", add)


def run_list(args: argparse.Namespace) -> int:
    settings = get_settings()
    with new_session(get_engine(settings)) as session:
        found = channels.list_channels(session=session)
        if args.json:
            print(json.dumps([channel_json(c, settings) for c in found], indent=2))
        elif not found:
            print("No channels yet; add one with: python -m bulkcall_core channel add ...")
        else:
            for channel in found:
                print(_summary(channel, settings))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    def verify(session: Session, settings: Settings) -> Channel:
        channel = channels.get_channel_by_name(session=session, name=args.name)
        return channels.verify_channel(session=session, settings=settings, channel_id=channel.id)

    return _change_and_show(args, "Verified", verify)


def run_update(args: argparse.Namespace) -> int:
    token = _token_from_environment() if args.new_token else None

    def update(session: Session, settings: Settings) -> Channel:
        channel = channels.get_channel_by_name(session=session, name=args.name)
        return channels.update_channel(
            session=session,
            channel_id=channel.id,
            calls_per_second=args.cps,
            allowed_countries=args.allowed_countries,
            name=args.rename,
            auth_token=token,
            settings=settings,
        )

    return _change_and_show(args, "Updated", update)


def run_remove(args: argparse.Namespace) -> int:
    settings = get_settings()
    with new_session(get_engine(settings)) as session:
        channel = channels.get_channel_by_name(session=session, name=args.name)
        channels.remove_channel(session=session, channel_id=channel.id)
        session.commit()
    print(f"Removed channel {channel.name!r}")
    return 0


def _change_and_show(
    args: argparse.Namespace, verb: str, change: Callable[[Session, Settings], Channel]
) -> int:
    """Run `change` in one transaction, commit, and print the channel it returns."""
    settings = get_settings()
    with new_session(get_engine(settings)) as session:
        channel = change(session, settings)
        session.commit()
        _print_one(channel, settings, args.json, verb=verb)
    return 0


def channel_json(channel: Channel, settings: Settings) -> dict[str, Any]:
    """What the command line shows of a channel: everything but the token, which is masked."""
    return {
        "id": channel.id,
        "name": channel.name,
        "account_sid": channel.account_sid,
        "from": channel.from_number,
        "calls_per_second": channel.calls_per_second,
        "allowed_countries": sorted(channels.allowed_country_set(channel) or ()),
        "is_trial": channel.is_trial,
        "voice_capable": channel.voice_capable,
        "verified_at": channel.verified_at.isoformat() if channel.verified_at else None,
        "auth_token": channels.masked_token(channel, settings),
    }


def _token_from_environment() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise ChannelError(
            f"set {TOKEN_VARIABLE} to the account's auth token (it is never read from the "
            "command line), e.g. read -s TWILIO_AUTH_TOKEN && export TWILIO_AUTH_TOKEN",
            field=TOKEN_VARIABLE,
        )
    return token


def _print_one(channel: Channel, settings: Settings, as_json: bool, *, verb: str) -> None:
    if as_json:
        print(json.dumps(channel_json(channel, settings), indent=2))
        return
    print(f"{verb} channel {_summary(channel, settings)}")
    if channel.is_trial:
        print(f"warning: {channels.TRIAL_WARNING}", file=sys.stderr)


def _summary(channel: Channel, settings: Settings) -> str:
    countries = ",".join(sorted(channels.allowed_country_set(channel) or ())) or "any country"
    state = "verified" if channel.verified_at else "not verified"
    trial = ", trial account" if channel.is_trial else ""
    voice = "" if channel.voice_capable else ", no voice"
    return (
        f"{channel.name!r} (id {channel.id}): {channel.from_number} on {channel.account_sid}, "
        f"{channel.calls_per_second:g} call(s)/s, {countries}, {state}{trial}{voice}, "
        f"token {channels.masked_token(channel, settings)}"
    )
