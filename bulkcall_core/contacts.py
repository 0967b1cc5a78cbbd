"""Saved contact lists and the do-not-call list.

A contact list is the second data source of a campaign: contacts (name, E.164 phone, the
file's other fields) imported from a planned file or added one by one, each number at most once
per list. Planning a list goes through `planning.plan_records`, so the do-not-call list, allowed
countries and duplicates apply exactly as they do to an uploaded file.

The do-not-call list holds numbers nobody may call, whatever the campaign; planning skips them
with their own reason.

Every function takes the session as a keyword; the caller owns the transaction and commits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bulkcall_core.campaigns import bulk_insert, dump_json
from bulkcall_core.errors import ContactListError
from bulkcall_core.models import Contact, ContactList, DoNotCall, utcnow
from bulkcall_core.phones import normalize_phone

if TYPE_CHECKING:
    from bulkcall_core.planning import Plan, PlanOptions

# ContactList.name's column width.
LIST_NAME_MAX_LENGTH = 200
# Contacts read per round trip when planning a list: flat memory on a million contacts.
PLAN_FETCH_SIZE = 50_000
# Existing list names shown in an error, at most (the rest are summarised).
NAMES_SHOWN = 10


class _Keep(Enum):
    KEEP = "keep"


# `update_contact(..., name=KEEP)`: leave the name as it is (None clears it).
KEEP = _Keep.KEEP


@dataclass(frozen=True)
class ListSummary:
    """One contact list as the Contacts page and the campaign form show it."""

    id: int
    name: str
    size: int  # contacts on the list
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ImportResult:
    """What importing a plan into a list did."""

    added: int  # new contacts
    already_on_list: int  # recipients whose number the list already had (kept as they were)


# --------------------------------------------------------------------------- lists


def create_list(*, session: Session, name: str) -> ContactList:
    """A new, empty contact list named `name` (trimmed). Returns it flushed (id set).

    Raises `ContactListError` when the name is blank, too long, or already taken by a list
    (ignoring case).
    """
    contact_list = ContactList(name=_free_name(session, name))
    session.add(contact_list)
    _flush_name(session, contact_list.name)
    return contact_list


def rename_list(*, session: Session, list_id: int, name: str) -> ContactList:
    """Rename list `list_id` to `name` (trimmed); renaming to its own name in another case
    is allowed. Raises `ContactListError` when the list is unknown or the name unusable."""
    contact_list = get_list(session=session, list_id=list_id)
    contact_list.name = _free_name(session, name, allow_id=list_id)
    contact_list.updated_at = utcnow()
    _flush_name(session, contact_list.name)
    return contact_list


def delete_list(*, session: Session, list_id: int) -> None:
    """Delete list `list_id` and every contact on it (campaigns already created from it keep
    their calls). Raises `ContactListError` when the list is unknown."""
    contact_list = get_list(session=session, list_id=list_id)
    session.execute(delete(Contact).where(Contact.list_id == list_id))
    session.delete(contact_list)
    session.flush()


def get_list(*, session: Session, list_id: int) -> ContactList:
    """List `list_id`. Raises `ContactListError` naming the lists that exist when unknown."""
    contact_list = session.get(ContactList, list_id)
    if contact_list is None:
        raise ContactListError(f"No contact list {list_id}; {_existing(session)}.", field="list")
    return contact_list


def get_list_by_name(*, session: Session, name: str) -> ContactList:
    """The list called `name`, ignoring case and surrounding spaces. Raises
    `ContactListError` naming the lists that exist when there is none."""
    wanted = name.strip().casefold()
    for contact_list in session.scalars(select(ContactList)):
        if contact_list.name.casefold() == wanted:
            return contact_list
    raise ContactListError(f"No contact list '{name}'; {_existing(session)}.", field="list")


def list_summaries(*, session: Session) -> list[ListSummary]:
    """Every contact list with its size, by name (case-insensitive)."""
    size = (
        select(func.count(Contact.id))
        .where(Contact.list_id == ContactList.id)
        .correlate(ContactList)
        .scalar_subquery()
    )
    query = select(
        ContactList.id, ContactList.name, size, ContactList.created_at, ContactList.updated_at
    )
    summaries = [ListSummary(*row) for row in session.execute(query)]
    return sorted(summaries, key=lambda summary: summary.name.casefold())


def _free_name(session: Session, name: str, *, allow_id: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ContactListError("Give the contact list a name.", field="name")
    if len(name) > LIST_NAME_MAX_LENGTH:
        raise ContactListError(
            f"The list name is {len(name)} characters long; keep it to {LIST_NAME_MAX_LENGTH}.",
            field="name",
        )
    for other in session.scalars(select(ContactList)):
        if other.id != allow_id and other.name.casefold() == name.casefold():
            raise ContactListError(
                f"A contact list named '{other.name}' already exists; pick another name.",
                field="name",
            )
    return name


def _flush_name(session: Session, name: str) -> None:
    """Flush; a list of that name created meanwhile by someone else becomes a clear error
    (the session's transaction is then rolled back, as after any failed flush)."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise ContactListError(
            f"A contact list named '{name}' already exists; pick another name.", field="name"
        ) from exc


def _existing(session: Session) -> str:
    names = sorted(session.scalars(select(ContactList.name)), key=str.casefold)
    if not names:
        return "there are no contact lists yet"
    shown = ", ".join(names[:NAMES_SHOWN])
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"the lists are: {shown}{more}"


def _touch(contact_list: ContactList) -> None:
    contact_list.updated_at = utcnow()


# --------------------------------------------------------------------------- contacts


def import_plan(*, session: Session, list_id: int, plan: Plan) -> ImportResult:
    """Add every recipient of `plan` (a planned file) to list `list_id`, in bulk. A number the
    list already has, or that the plan repeats (duplicates allowed), is not added again: the
    first contact keeps its name and fields. Returns the counts; raises `ContactListError`
    when the list is unknown."""
    contact_list = get_list(session=session, list_id=list_id)
    seen = set(session.scalars(select(Contact.phone).where(Contact.list_id == list_id)))
    total = 0

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        nonlocal total
        for batch in plan.recipient_batches():
            total += len(batch)
            yield [
                (r["name"], r["phone"], dump_json(r["fields"] or {}))
                for r in batch
                if _first_time(r["phone"], seen)
            ]

    added = bulk_insert(
        session,
        Contact.__table__,
        ("name", "phone", "fields"),
        batches(),
        constants={"list_id": list_id, "created_at": utcnow()},
    )
    _touch(contact_list)
    session.flush()
    return ImportResult(added=added, already_on_list=total - added)


def add_contact(
    *,
    session: Session,
    list_id: int,
    phone: str,
    name: str | None = None,
    fields: dict[str, Any] | None = None,
    country: str = "US",
    has_country_code: bool = False,
) -> Contact:
    """Add one contact to list `list_id`; `phone` is read like a file's phone column with
    `country` and `has_country_code`, and stored as E.164. Returns the flushed contact.

    Raises `ContactListError` when the list is unknown, the number is unusable (with the
    reason), or the list already has that number.
    """
    contact_list = get_list(session=session, list_id=list_id)
    e164 = _contact_phone(phone, country, has_country_code)
    _check_not_on_list(session, list_id, e164, contact_list.name)
    contact = Contact(list_id=list_id, phone=e164, name=_clean_name(name), fields=fields or {})
    session.add(contact)
    _touch(contact_list)
    session.flush()
    return contact


def update_contact(
    *,
    session: Session,
    contact_id: int,
    phone: str | None = None,
    name: str | None | _Keep = KEEP,
    fields: dict[str, Any] | None = None,
    country: str = "US",
    has_country_code: bool = False,
) -> Contact:
    """Change contact `contact_id`: a new `phone` (checked like `add_contact`), a new `name`
    (None or blank clears it; `KEEP` leaves it), new `fields` (None leaves them). Returns the
    contact; raises `ContactListError` when it is unknown, the number unusable, or another
    contact on its list has the number."""
    contact = _get_contact(session, contact_id)
    contact_list = get_list(session=session, list_id=contact.list_id)
    if phone is not None:
        e164 = _contact_phone(phone, country, has_country_code)
        if e164 != contact.phone:
            _check_not_on_list(session, contact.list_id, e164, contact_list.name)
            contact.phone = e164
    if name is not KEEP:
        contact.name = _clean_name(name)
    if fields is not None:
        contact.fields = dict(fields)
    _touch(contact_list)
    session.flush()
    return contact


def delete_contact(*, session: Session, contact_id: int) -> None:
    """Remove contact `contact_id` from its list. Raises `ContactListError` when unknown."""
    contact = _get_contact(session, contact_id)
    _touch(get_list(session=session, list_id=contact.list_id))
    session.delete(contact)
    session.flush()


def contacts_page(
    *,
    session: Session,
    list_id: int,
    search: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Contact], int]:
    """One page of list `list_id` in the order contacts were added, and how many match in
    all. `search` matches a part of the name (any case) or of the number (digits only are
    compared, so "415 555" finds +14155550100). Raises `ContactListError` when unknown."""
    get_list(session=session, list_id=list_id)
    condition = Contact.list_id == list_id
    if search and search.strip():
        condition = condition & _search(Contact.name, Contact.phone, search)
    total = session.scalar(select(func.count(Contact.id)).where(condition)) or 0
    query = select(Contact).where(condition).order_by(Contact.id).limit(limit).offset(offset)
    return list(session.scalars(query)), total


def plan_contact_list(*, session: Session, list_id: int, options: PlanOptions) -> Plan:
    """Plan a campaign over list `list_id` through `planning.plan_records`, so duplicates,
    allowed countries and blocked numbers apply as they do to a file. The do-not-call list in
    the database is always added to `options.do_not_call`. A recipient's row is its 1-based
    position in the list (the Contacts page order). Raises `ContactListError` when unknown."""
    from bulkcall_core.planning import plan_records

    get_list(session=session, list_id=list_id)
    blocked = options.do_not_call | do_not_call_numbers(session=session)
    options = dataclasses.replace(options, do_not_call=frozenset(blocked))
    query = (
        select(Contact.phone, Contact.name, Contact.fields)
        .where(Contact.list_id == list_id)
        .order_by(Contact.id)
        .execution_options(yield_per=PLAN_FETCH_SIZE)
    )
    records = (
        (position, phone, name, fields or {})
        for position, (phone, name, fields) in enumerate(session.execute(query), start=1)
    )
    return plan_records(records, options)


def _get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ContactListError(f"No contact {contact_id}; it may have been deleted.")
    return contact


def _contact_phone(phone: str, country: str, has_country_code: bool) -> str:
    check = normalize_phone(phone, country=country, has_country_code=has_country_code)
    if check.phone is None:
        raise ContactListError(f"'{phone}' cannot be called: {check.reason}.", field="phone")
    return check.phone


def _check_not_on_list(session: Session, list_id: int, phone: str, list_name: str) -> None:
    query = select(Contact.name).where(Contact.list_id == list_id, Contact.phone == phone)
    existing = session.execute(query).first()
    if existing is not None:
        who = f" (as {existing.name})" if existing.name else ""
        raise ContactListError(
            f"{phone} is already on the list '{list_name}'{who}; edit that contact instead.",
            field="phone",
        )


def _clean_name(name: str | None) -> str | None:
    return (name or "").strip() or None


def _search(name_column: Any, phone_column: Any, search: str) -> Any:
    """A condition matching `search` in a name (any case) or, by its digits, in a phone."""
    text = search.strip()
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    matches = [func.lower(name_column).like(pattern + "%", escape="\\")]
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits:
        matches.append(phone_column.like(f"%{digits}%"))
    return or_(*matches)


# --------------------------------------------------------------------------- do-not-call


def add_do_not_call(
    *,
    session: Session,
    phone: str,
    note: str = "",
    country: str = "US",
    has_country_code: bool = False,
) -> DoNotCall:
    """Put `phone` (read like a file's phone column, stored E.164) on the do-not-call list.
    A number already there is returned as it is. Premium-rate numbers are accepted (blocking
    them harms no one). Raises `ContactListError` with the reason when it is not a number."""
    e164 = _do_not_call_phone(phone, country, has_country_code)
    existing = session.scalars(select(DoNotCall).where(DoNotCall.phone == e164)).first()
    if existing is not None:
        return existing
    entry = DoNotCall(phone=e164, note=note.strip())
    session.add(entry)
    session.flush()
    return entry


def remove_do_not_call(
    *, session: Session, phone: str, country: str = "US", has_country_code: bool = False
) -> None:
    """Take `phone` (any writing of it) off the do-not-call list. Raises `ContactListError`
    when it is not a number or not on the list."""
    e164 = _do_not_call_phone(phone, country, has_country_code)
    result = session.execute(delete(DoNotCall).where(DoNotCall.phone == e164))
    if result.rowcount == 0:
        raise ContactListError(f"{e164} is not on the do-not-call list.", field="phone")


def list_do_not_call(
    *, session: Session, search: str | None = None, limit: int | None = None, offset: int = 0
) -> list[DoNotCall]:
    """Do-not-call entries, newest first; `search` matches digits of the number or a part of
    the note (any case); `limit` None means all."""
    query = select(DoNotCall).order_by(DoNotCall.id.desc()).offset(offset).limit(limit)
    if search and search.strip():
        query = query.where(_search(DoNotCall.note, DoNotCall.phone, search))
    return list(session.scalars(query))


def do_not_call_numbers(*, session: Session) -> frozenset[str]:
    """Every E.164 number on the do-not-call list, for `PlanOptions.do_not_call`."""
    return frozenset(session.scalars(select(DoNotCall.phone)))


def import_do_not_call(*, session: Session, plan: Plan, note: str = "") -> int:
    """Put every recipient of `plan` (a planned file) on the do-not-call list in bulk;
    numbers already there are left as they are. Returns how many were added."""
    seen = set(do_not_call_numbers(session=session))
    batches = (
        [(r["phone"], note.strip()) for r in batch if _first_time(r["phone"], seen)]
        for batch in plan.recipient_batches()
    )
    return bulk_insert(
        session, DoNotCall.__table__, ("phone", "note"), batches, constants={"created_at": utcnow()}
    )


def _first_time(phone: str, seen: set[str]) -> bool:
    """True when `phone` is not in `seen` yet; it is then added."""
    if phone in seen:
        return False
    seen.add(phone)
    return True


def _do_not_call_phone(phone: str, country: str, has_country_code: bool) -> str:
    check = normalize_phone(
        phone, country=country, has_country_code=has_country_code, block_premium=False
    )
    if check.phone is None:
        raise ContactListError(f"'{phone}' is not a usable number: {check.reason}.", field="phone")
    return check.phone
