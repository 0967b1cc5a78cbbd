"""Twilio channels: an account plus one of its numbers, from which campaigns call.

Adding a channel checks what can be checked here (name, Account SID format, E.164 number,
calls per second, countries), then verifies it with Twilio (`telephony.check_account`): the
credentials work, the number is the account's and can make voice calls. The auth token is
stored encrypted (`crypto`) and only decrypted to build a client. Trial accounts are kept but
flagged: Twilio lets them call only verified numbers ("paid account required").

Persistence functions take the session as a keyword and leave the commit to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from sqlalchemy import func
from sqlmodel import Session, col, select
from twilio.rest import Client

from bulkcall_core import crypto, phones, telephony
from bulkcall_core.errors import ChannelError, PlanError, SettingsError
from bulkcall_core.models import Campaign, CampaignStatus, Channel, utcnow
from bulkcall_core.settings import Settings

# Twilio's default is 1 call per second per account; more is bought from Twilio. Below 1, one
# call every 1/cps seconds (0.1 = one call each 10 s) for gentle trials.
DEFAULT_CALLS_PER_SECOND = 1.0
MIN_CALLS_PER_SECOND = 0.1
# Far above what Twilio sells self-serve; a typo like 10000 is refused rather than obeyed.
MAX_CALLS_PER_SECOND = 1000.0
MAX_NAME_LENGTH = 100  # the column's length
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
# Campaigns that still need their channel: removing it would strand them.
ACTIVE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED)
TRIAL_WARNING = (
    "Trial account: Twilio lets it call only the numbers verified on the account; upgrade to "
    "a paid account to call anyone else."
)


def add_channel(
    *,
    session: Session,
    settings: Settings,
    name: str,
    account_sid: str,
    auth_token: str,
    from_number: str,
    calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
    allowed_countries: Iterable[str] | str = (),
) -> Channel:
    """Validate, verify with Twilio and add a channel (not committed). Returns it.

    Raises ChannelError naming the bad field: blank or taken name, malformed Account SID,
    blank token, a number that is not E.164, calls per second out of range, unknown
    countries, the same account and number already a channel, or what Twilio refused.
    """
    name = _check_name(session, name)
    account_sid = _check_account_sid(account_sid)
    auth_token = _check_token(auth_token)
    from_number = normalize_from_number(from_number)
    cps = check_calls_per_second(calls_per_second)
    countries = parse_countries(allowed_countries)
    _check_not_added(session, account_sid, from_number)
    found = telephony.check_account(
        account_sid=account_sid, auth_token=auth_token, from_number=from_number, settings=settings
    )
    channel = Channel(
        name=name,
        account_sid=account_sid,
        from_number=from_number,
        auth_token_encrypted=crypto.encrypt_secret(settings, auth_token),
        calls_per_second=cps,
        allowed_countries=",".join(countries),
        is_trial=found.is_trial,
        voice_capable=found.voice_capable,
        verified_at=utcnow(),
    )
    session.add(channel)
    session.flush()
    return channel


def verify_channel(*, session: Session, settings: Settings, channel_id: int) -> Channel:
    """Check the stored channel with Twilio again and record the result (not committed).

    Raises ChannelError (unknown channel, or what Twilio refused) or SettingsError (the
    secret key changed since the token was stored).
    """
    channel = get_channel(session=session, channel_id=channel_id)
    found = telephony.check_account(
        account_sid=channel.account_sid,
        auth_token=crypto.decrypt_secret(settings, channel.auth_token_encrypted),
        from_number=channel.from_number,
        settings=settings,
    )
    channel.is_trial = found.is_trial
    channel.voice_capable = found.voice_capable
    channel.verified_at = utcnow()
    session.add(channel)
    session.flush()
    return channel


def update_channel(
    *,
    session: Session,
    channel_id: int,
    calls_per_second: float | None = None,
    allowed_countries: Iterable[str] | str | None = None,
    name: str | None = None,
    auth_token: str | None = None,
    settings: Settings | None = None,
) -> Channel:
    """Change a channel's pace, destinations, name or auth token (not committed).

    None leaves a value as is; an empty allowed_countries allows every country. A new auth
    token (needs `settings`) is verified with Twilio before it is stored.
    Raises ChannelError for a bad value or an unknown channel.
    """
    channel = get_channel(session=session, channel_id=channel_id)
    if name is not None and name.strip() != channel.name:
        channel.name = _check_name(session, name)
    if calls_per_second is not None:
        channel.calls_per_second = check_calls_per_second(calls_per_second)
    if allowed_countries is not None:
        channel.allowed_countries = ",".join(parse_countries(allowed_countries))
    if auth_token is not None:
        _replace_token(channel, auth_token, settings)
    session.add(channel)
    session.flush()
    return channel


def _replace_token(channel: Channel, auth_token: str, settings: Settings | None) -> None:
    if settings is None:
        raise ValueError("update_channel needs settings to store a new auth token")
    token = _check_token(auth_token)
    found = telephony.check_account(
        account_sid=channel.account_sid,
        auth_token=token,
        from_number=channel.from_number,
        settings=settings,
    )
    channel.auth_token_encrypted = crypto.encrypt_secret(settings, token)
    channel.is_trial = found.is_trial
    channel.voice_capable = found.voice_capable
    channel.verified_at = utcnow()


def remove_channel(*, session: Session, channel_id: int) -> None:
    """Remove a channel (not committed).

    A channel no campaign ever used is deleted. One whose campaigns are kept in History is
    archived instead: renamed "NAME (removed YYYY-MM-DD)" so the name is free again, gone from
    every list and lookup by name, and never used again; History still names it.
    Raises ChannelError naming the scheduled, running or paused campaigns that still need it.
    """
    channel = get_channel(session=session, channel_id=channel_id)
    using = session.exec(
        select(Campaign).where(Campaign.channel_id == channel.id).order_by(col(Campaign.id))
    ).all()
    active = [c for c in using if c.status in ACTIVE_STATUSES]
    if active:
        names = ", ".join(f"{c.name!r} ({c.status})" for c in active)
        raise ChannelError(
            f"Channel {channel.name!r} is used by campaign {names}; cancel or stop it first",
            field="channel",
        )
    if not using:
        session.delete(channel)
    elif channel.archived_at is None:
        now = utcnow()
        channel.archived_at = now
        channel.name = f"{channel.name} (removed {now:%Y-%m-%d %H:%M})"[:100]
        session.add(channel)
    session.flush()


def list_channels(*, session: Session) -> list[Channel]:
    """Every channel not removed, by name."""
    query = select(Channel).where(col(Channel.archived_at).is_(None)).order_by(col(Channel.name))
    return list(session.exec(query).all())


def eligible_channels(*, session: Session) -> list[Channel]:
    """The channels a campaign can use now: verified and voice-capable, by name."""
    query = (
        select(Channel)
        .where(
            col(Channel.verified_at).is_not(None),
            col(Channel.voice_capable).is_(True),
            col(Channel.archived_at).is_(None),
        )
        .order_by(col(Channel.name))
    )
    return list(session.exec(query).all())


def get_channel(*, session: Session, channel_id: int) -> Channel:
    """The channel with this id; raises ChannelError when there is none."""
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise ChannelError(f"No channel with id {channel_id}", field="channel")
    return channel


def get_channel_by_name(*, session: Session, name: str) -> Channel:
    """The channel named `name` (case-insensitive); ChannelError listing the names there are."""
    wanted = (name or "").strip()
    query = select(Channel).where(
        func.lower(Channel.name) == wanted.lower(), col(Channel.archived_at).is_(None)
    )
    channel = session.exec(query).first()
    if channel is None:
        names = ", ".join(c.name for c in list_channels(session=session)) or "none yet"
        raise ChannelError(
            f"No channel named {wanted!r}; the channels are: {names}", field="channel"
        )
    return channel


def channel_client(channel: Channel, settings: Settings) -> Client:
    """A Twilio client for the channel's account (decrypts its token).

    Raises SettingsError when the secret key is not the one the token was stored with.
    """
    token = crypto.decrypt_secret(settings, channel.auth_token_encrypted)
    return telephony.make_client(
        account_sid=channel.account_sid, auth_token=token, settings=settings
    )


def masked_token(channel: Channel, settings: Settings) -> str:
    """'••••••••1234' for display; says so when the token cannot be decrypted."""
    try:
        return crypto.mask_secret(crypto.decrypt_secret(settings, channel.auth_token_encrypted))
    except SettingsError:
        return "unreadable (BULKCALL_SECRET_KEY changed)"


def allowed_country_set(channel: Channel) -> frozenset[str] | None:
    """The ISO codes the channel may call, or None when it may call any country."""
    codes = frozenset(code for code in channel.allowed_countries.split(",") if code)
    return codes or None


def channel_region(channel: Channel) -> str:
    """The region of the channel's own number ("US" for +1 415...): the default country of
    the numbers in a file. Falls back to the main region of its calling code, then US."""
    region = phones.region_of(channel.from_number)
    if region:
        return region
    try:
        code = phonenumbers.parse(channel.from_number).country_code
    except phonenumbers.NumberParseException:
        return "US"
    main = phonenumbers.region_code_for_country_code(code)
    return main if main in phonenumbers.SUPPORTED_REGIONS else "US"


# -- checks -------------------------------------------------------------------------------


def normalize_from_number(value: str) -> str:
    """A channel number as E.164 ('+1 (415) 555-0100' -> '+14155550100'); ChannelError if it
    is not an international number (with + and country code) of a possible length."""
    text = (value or "").strip()
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ChannelError(
            f"From number {value!r} is not a phone number in international form; write it "
            "with + and the country code, as Twilio shows it (e.g. +14155550100)",
            field="from_number",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_calls_per_second(value: float | str) -> float:
    """The pace as a float within range; ChannelError otherwise."""
    try:
        cps = float(value)
    except (TypeError, ValueError):
        cps = float("nan")
    if not MIN_CALLS_PER_SECOND <= cps <= MAX_CALLS_PER_SECOND:
        raise ChannelError(
            f"Calls per second {value!r} is out of range; use {MIN_CALLS_PER_SECOND:g} to "
            f"{MAX_CALLS_PER_SECOND:g} (Twilio's default is 1 per account; more is bought "
            "from Twilio)",
            field="calls_per_second",
        )
    return cps


def parse_countries(value: Iterable[str] | str) -> list[str]:
    """ISO alpha-2 codes ('us, CA' or ['US', 'ca']) as a sorted list without repeats."""
    items = value.split(",") if isinstance(value, str) else list(value)
    codes = set()
    for item in items:
        if not item or not item.strip():
            continue
        try:
            codes.add(phones.parse_country(item, field="allowed_countries"))
        except PlanError as exc:
            raise ChannelError(f"Allowed countries: {exc.message}", field=exc.field) from None
    return sorted(codes)


def _check_name(session: Session, name: str) -> str:
    clean = (name or "").strip()
    if not clean:
        raise ChannelError("Give the channel a name, such as 'Sales US'", field="name")
    if len(clean) > MAX_NAME_LENGTH:
        raise ChannelError(
            f"Channel name is {len(clean)} characters; use at most {MAX_NAME_LENGTH}", field="name"
        )
    taken = session.exec(select(Channel).where(func.lower(Channel.name) == clean.lower())).first()
    if taken is not None:
        raise ChannelError(
            f"A channel named {taken.name!r} exists already; pick another name", field="name"
        )
    return clean


def _check_account_sid(value: str) -> str:
    sid = (value or "").strip()
    if not ACCOUNT_SID.match(sid):
        raise ChannelError(
            f"Account SID {value!r} is not a Twilio Account SID (AC followed by 32 hex "
            "characters); copy it from the Twilio console's account dashboard",
            field="account_sid",
        )
    return sid


def _check_token(value: str) -> str:
    token = (value or "").strip()
    if not token or any(ch.isspace() for ch in token):
        raise ChannelError(
            "The auth token is missing or has spaces in it; copy it from the Twilio console",
            field="auth_token",
        )
    return token


def _check_not_added(session: Session, account_sid: str, from_number: str) -> None:
    query = select(Channel).where(
        Channel.account_sid == account_sid,
        Channel.from_number == from_number,
        col(Channel.archived_at).is_(None),
    )
    existing = session.exec(query).first()
    if existing is not None:
        raise ChannelError(
            f"{from_number} of account {account_sid} is channel {existing.name!r} already",
            field="from_number",
        )
