"""bulkcall_core.contacts: contact lists, their contacts, and the do-not-call list.

Every test runs on SQLite and on PostgreSQL (the `session` fixture).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from bulkcall_core.contacts import (
    KEEP,
    add_contact,
    add_do_not_call,
    contacts_page,
    create_list,
    delete_contact,
    delete_list,
    do_not_call_numbers,
    get_list,
    get_list_by_name,
    import_do_not_call,
    import_plan,
    list_do_not_call,
    list_summaries,
    plan_contact_list,
    remove_do_not_call,
    rename_list,
    update_contact,
)
from bulkcall_core.errors import ContactListError
from bulkcall_core.models import Contact, ContactList, DoNotCall
from bulkcall_core.planning import PlanOptions
from tests.factories import make_plan

OPTIONS = PlanOptions(phone_column="phone")


def contact_count(session: Session) -> int:
    return session.scalar(select(func.count(Contact.id))) or 0


def new_list(session: Session, name: str = "Customers", phones: list[str] | None = None) -> int:
    contact_list = create_list(session=session, name=name)
    for phone in phones or []:
        add_contact(session=session, list_id=contact_list.id, phone=phone, name=f"Name {phone}")
    session.commit()
    assert contact_list.id is not None
    return contact_list.id


# --------------------------------------------------------------------------- lists


def test_create_list_trims_its_name(session: Session) -> None:
    contact_list = create_list(session=session, name="  Customers ")
    session.commit()
    assert get_list(session=session, list_id=contact_list.id).name == "Customers"


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_list_name_is_refused(session: Session, name: str) -> None:
    with pytest.raises(ContactListError, match="Give the contact list a name"):
        create_list(session=session, name=name)


def test_too_long_list_name_is_refused(session: Session) -> None:
    with pytest.raises(ContactListError, match="201 characters long; keep it to 200"):
        create_list(session=session, name="x" * 201)


def test_list_name_taken_in_another_case_is_refused(session: Session) -> None:
    new_list(session, "Customers")
    with pytest.raises(ContactListError, match="'Customers' already exists"):
        create_list(session=session, name="CUSTOMERS")


def test_rename_list(session: Session) -> None:
    list_id = new_list(session, "Customers")
    rename_list(session=session, list_id=list_id, name="Clients")
    session.commit()
    assert get_list(session=session, list_id=list_id).name == "Clients"


def test_rename_to_own_name_in_another_case_is_allowed(session: Session) -> None:
    list_id = new_list(session, "customers")
    assert rename_list(session=session, list_id=list_id, name="Customers").name == "Customers"


def test_rename_to_another_lists_name_is_refused(session: Session) -> None:
    new_list(session, "Customers")
    list_id = new_list(session, "Leads")
    with pytest.raises(ContactListError, match="'Customers' already exists"):
        rename_list(session=session, list_id=list_id, name="customers")


def test_unknown_list_error_names_the_lists_that_exist(session: Session) -> None:
    new_list(session, "Leads")
    new_list(session, "customers")
    with pytest.raises(
        ContactListError, match="No contact list 999; the lists are: customers, Leads"
    ):
        get_list(session=session, list_id=999)


def test_unknown_list_when_there_are_none(session: Session) -> None:
    with pytest.raises(ContactListError, match="'VIP'; there are no contact lists yet"):
        get_list_by_name(session=session, name="VIP")


def test_get_list_by_name_ignores_case_and_spaces(session: Session) -> None:
    list_id = new_list(session, "Customers")
    assert get_list_by_name(session=session, name=" customers ").id == list_id


def test_delete_list_deletes_its_contacts_only(session: Session) -> None:
    doomed = new_list(session, "Old", ["+14155550101", "+14155550102"])
    kept = new_list(session, "New", ["+14155550101"])
    delete_list(session=session, list_id=doomed)
    session.commit()
    assert session.get(ContactList, doomed) is None
    assert contact_count(session) == 1
    assert contacts_page(session=session, list_id=kept)[1] == 1


def test_list_summaries_give_sizes_sorted_by_name(session: Session) -> None:
    new_list(session, "leads", ["+14155550101"])
    new_list(session, "Customers", ["+14155550101", "+14155550102"])
    new_list(session, "Empty")
    summaries = list_summaries(session=session)
    assert [(s.name, s.size) for s in summaries] == [("Customers", 2), ("Empty", 0), ("leads", 1)]


# --------------------------------------------------------------------------- contacts


def test_import_plan_adds_recipients_with_names_and_fields(session: Session) -> None:
    list_id = new_list(session)
    plan = make_plan(["(415) 555-0101", "12", "+1 415 555 0102"], names=["Ann", "Bob", None])
    result = import_plan(session=session, list_id=list_id, plan=plan)
    session.commit()
    assert (result.added, result.already_on_list) == (2, 0)
    rows, total = contacts_page(session=session, list_id=list_id)
    assert total == 2
    assert [(c.phone, c.name, c.fields) for c in rows] == [
        ("+14155550101", "Ann", {"note": "row 2"}),
        ("+14155550102", None, {"note": "row 4"}),
    ]


def test_import_plan_does_not_duplicate_numbers_already_on_the_list(session: Session) -> None:
    """A number on the list, written another way in the file, is kept once, as it was."""
    list_id = new_list(session, phones=["+14155550101"])
    plan = make_plan(["415.555.0101", "+14155550102"], names=["Other name", "Bob"])
    result = import_plan(session=session, list_id=list_id, plan=plan)
    session.commit()
    assert (result.added, result.already_on_list) == (1, 1)
    rows, _ = contacts_page(session=session, list_id=list_id)
    assert [(c.phone, c.name) for c in rows] == [
        ("+14155550101", "Name +14155550101"),
        ("+14155550102", "Bob"),
    ]


def test_import_plan_with_duplicates_allowed_keeps_each_number_once(session: Session) -> None:
    list_id = new_list(session)
    plan = make_plan(["+14155550101", "4155550101"], allow_duplicates=True)
    result = import_plan(session=session, list_id=list_id, plan=plan)
    assert (result.added, result.already_on_list) == (1, 1)
    assert contact_count(session) == 1


def test_import_plan_into_unknown_list_is_refused(session: Session) -> None:
    with pytest.raises(ContactListError, match="No contact list 5"):
        import_plan(session=session, list_id=5, plan=make_plan(["+14155550101"]))


def test_add_contact_stores_e164(session: Session) -> None:
    list_id = new_list(session)
    contact = add_contact(
        session=session, list_id=list_id, phone="020 7946 0018", name=" Ann ", country="GB"
    )
    assert (contact.phone, contact.name, contact.fields) == ("+442079460018", "Ann", {})


def test_add_contact_with_unusable_number_gives_the_reason(session: Session) -> None:
    list_id = new_list(session)
    with pytest.raises(ContactListError, match="'12' cannot be called: too short") as error:
        add_contact(session=session, list_id=list_id, phone="12")
    assert error.value.field == "phone"


def test_add_contact_with_premium_number_is_refused(session: Session) -> None:
    list_id = new_list(session)
    with pytest.raises(ContactListError, match="premium-rate"):
        add_contact(session=session, list_id=list_id, phone="+1 900 555 0100")


def test_add_contact_already_on_the_list_is_refused(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101"])
    with pytest.raises(ContactListError, match=r"already on the list 'Customers' \(as Name"):
        add_contact(session=session, list_id=list_id, phone="(415) 555-0101")


def test_same_number_may_be_on_two_lists(session: Session) -> None:
    new_list(session, "A", ["+14155550101"])
    other = new_list(session, "B")
    add_contact(session=session, list_id=other, phone="+14155550101")
    assert contact_count(session) == 2


def test_update_contact_changes_phone_and_keeps_name(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101"])
    contact = contacts_page(session=session, list_id=list_id)[0][0]
    updated = update_contact(session=session, contact_id=contact.id, phone="415-555-0109")
    assert (updated.phone, updated.name) == ("+14155550109", "Name +14155550101")


def test_update_contact_clears_name_and_replaces_fields(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101"])
    contact = contacts_page(session=session, list_id=list_id)[0][0]
    updated = update_contact(session=session, contact_id=contact.id, name="", fields={"a": "b"})
    assert (updated.phone, updated.name, updated.fields) == ("+14155550101", None, {"a": "b"})


def test_update_contact_keep_is_the_default(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101"])
    contact = contacts_page(session=session, list_id=list_id)[0][0]
    updated = update_contact(session=session, contact_id=contact.id, name=KEEP)
    assert updated.name == "Name +14155550101"


def test_update_contact_to_a_number_on_the_list_is_refused(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101", "+14155550102"])
    first = contacts_page(session=session, list_id=list_id)[0][0]
    with pytest.raises(ContactListError, match=r"\+14155550102 is already on the list"):
        update_contact(session=session, contact_id=first.id, phone="4155550102")


def test_update_contact_to_an_unusable_number_is_refused(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101"])
    contact = contacts_page(session=session, list_id=list_id)[0][0]
    with pytest.raises(ContactListError, match="'n/a' cannot be called"):
        update_contact(session=session, contact_id=contact.id, phone="n/a")


def test_delete_contact(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101", "+14155550102"])
    contact = contacts_page(session=session, list_id=list_id)[0][0]
    delete_contact(session=session, contact_id=contact.id)
    session.commit()
    rows, total = contacts_page(session=session, list_id=list_id)
    assert total == 1 and rows[0].phone == "+14155550102"


def test_delete_unknown_contact_is_refused(session: Session) -> None:
    with pytest.raises(ContactListError, match="No contact 31"):
        delete_contact(session=session, contact_id=31)


def test_contacts_page_pages_in_insertion_order(session: Session) -> None:
    phones = [f"+1415555{n:04d}" for n in range(101, 111)]
    list_id = new_list(session, phones=phones)
    rows, total = contacts_page(session=session, list_id=list_id, limit=3, offset=6)
    assert total == 10
    assert [c.phone for c in rows] == phones[6:9]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ann", ["+14155550101", "+14155550103"]),  # any case, part of the name
        ("(415) 555-0102", ["+14155550102"]),  # digits of the number, any writing
        ("5550103", ["+14155550103"]),
        ("n%", []),  # LIKE wildcards are literal
        ("_", []),
    ],
)
def test_contacts_page_search(session: Session, search: str, expected: list[str]) -> None:
    list_id = new_list(session)
    for phone, name in [
        ("+14155550101", "Ann"),
        ("+14155550102", "Bob"),
        ("+14155550103", "JoANNa"),
    ]:
        add_contact(session=session, list_id=list_id, phone=phone, name=name)
    rows, total = contacts_page(session=session, list_id=list_id, search=search)
    assert [c.phone for c in rows] == expected and total == len(expected)


# --------------------------------------------------------------------------- planning a list


def test_plan_contact_list_rows_are_positions_in_the_list(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101", "+14155550102"])
    plan = plan_contact_list(session=session, list_id=list_id, options=OPTIONS)
    assert [(r.row, r.phone, r.name) for r in plan.recipients] == [
        (1, "+14155550101", "Name +14155550101"),
        (2, "+14155550102", "Name +14155550102"),
    ]


def test_plan_contact_list_skips_do_not_call_with_its_reason(session: Session) -> None:
    """The do-not-call list in the database applies even when the options carry none."""
    list_id = new_list(session, phones=["+14155550101", "+14155550102"])
    add_do_not_call(session=session, phone="(415) 555-0102")
    plan = plan_contact_list(session=session, list_id=list_id, options=OPTIONS)
    assert [r.phone for r in plan.recipients] == ["+14155550101"]
    assert (plan.do_not_call, plan.to_call) == (1, 1)
    [problem] = plan.problems
    assert problem.row == 2 and "do-not-call" in problem.reason


def test_plan_contact_list_applies_allowed_countries(session: Session) -> None:
    list_id = new_list(session, phones=["+14155550101"])
    add_contact(session=session, list_id=list_id, phone="+442079460018")
    options = PlanOptions(phone_column="phone", allowed_countries=frozenset({"US"}))
    plan = plan_contact_list(session=session, list_id=list_id, options=options)
    assert [r.phone for r in plan.recipients] == ["+14155550101"]
    assert "allowed countries" in plan.problems[0].reason


def test_plan_contact_list_keeps_fields(session: Session) -> None:
    list_id = new_list(session)
    add_contact(session=session, list_id=list_id, phone="+14155550101", fields={"city": "Paris"})
    plan = plan_contact_list(session=session, list_id=list_id, options=OPTIONS)
    assert plan.recipients[0].fields == {"city": "Paris"}


# --------------------------------------------------------------------------- do-not-call


def test_do_not_call_number_is_one_entry_however_written(session: Session) -> None:
    first = add_do_not_call(session=session, phone="(415) 555-0100", note="asked twice")
    second = add_do_not_call(session=session, phone="+1 415 555 0100")
    session.commit()
    assert first.id == second.id and second.note == "asked twice"
    assert do_not_call_numbers(session=session) == frozenset({"+14155550100"})


def test_do_not_call_accepts_premium_numbers(session: Session) -> None:
    assert add_do_not_call(session=session, phone="+1 900 555 0100").phone == "+19005550100"


def test_do_not_call_with_unusable_number_gives_the_reason(session: Session) -> None:
    with pytest.raises(ContactListError, match="'1.41556E\\+10' is not a usable number: digits"):
        add_do_not_call(session=session, phone="1.41556E+10")


def test_do_not_call_national_number_of_another_country(session: Session) -> None:
    entry = add_do_not_call(session=session, phone="07911 123456", country="GB")
    assert entry.phone == "+447911123456"


def test_remove_do_not_call_in_another_writing(session: Session) -> None:
    add_do_not_call(session=session, phone="+14155550100")
    remove_do_not_call(session=session, phone="415.555.0100")
    assert do_not_call_numbers(session=session) == frozenset()


def test_remove_number_not_on_do_not_call_is_refused(session: Session) -> None:
    with pytest.raises(ContactListError, match=r"\+14155550100 is not on the do-not-call list"):
        remove_do_not_call(session=session, phone="4155550100")


def test_list_do_not_call_newest_first_and_search(session: Session) -> None:
    add_do_not_call(session=session, phone="+14155550101", note="Lawyer letter")
    add_do_not_call(session=session, phone="+14155550102")
    assert [e.phone for e in list_do_not_call(session=session)] == [
        "+14155550102",
        "+14155550101",
    ]
    assert [e.phone for e in list_do_not_call(session=session, search="lawyer")] == ["+14155550101"]
    assert [e.phone for e in list_do_not_call(session=session, search="555 0102")] == [
        "+14155550102"
    ]


def test_import_do_not_call_adds_only_new_numbers(session: Session) -> None:
    add_do_not_call(session=session, phone="+14155550101")
    plan = make_plan(["415 555 0101", "+14155550102", "4155550102", "12"], allow_duplicates=True)
    assert import_do_not_call(session=session, plan=plan, note="from opt-out.csv") == 1
    session.commit()
    numbers = session.scalars(select(DoNotCall.phone).order_by(DoNotCall.id))
    assert list(numbers) == ["+14155550101", "+14155550102"]
