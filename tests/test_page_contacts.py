"""The Contacts page (AppTest): contact lists (create, import a file, rename, delete, add and
edit contacts) and the do-not-call list (add, remove, import).

Cell edits in st.data_editor are seeded through its session-state edit state, as AppTest
allows; typing into the grid is covered by the browser test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from bulkcall_core import contacts
from bulkcall_core.models import Contact, ContactList, DoNotCall
from bulkcall_core.settings import get_settings
from tests.factories import make_channel, make_plan
from tests.test_page_bulk_calling import messages, metric, open_page, set_app_env, upload

PAGE = "pages/contacts.py"


@pytest.fixture
def app_env(monkeypatch, tmp_path, engine, database_url, redis_url) -> Iterator[None]:  # type: ignore[no-untyped-def]
    set_app_env(monkeypatch, tmp_path, database_url=database_url, redis_url=redis_url)
    yield
    get_settings.cache_clear()


def make_list(session: Session, name: str = "Customers", phones: tuple[str, ...] = ()) -> int:
    created = contacts.create_list(session=session, name=name)
    for index, phone in enumerate(phones):
        contacts.add_contact(
            session=session, list_id=created.id, phone=phone, name=f"Person {index}"
        )
    session.commit()
    return created.id


def submit(at: AppTest, label: str) -> AppTest:
    """Press the form submit button labelled `label`."""
    next(b for b in at.form_submit_button if b.label == label).click().run()
    return at


def dnc_tab(at: AppTest) -> AppTest:
    at.session_state["contacts_tab"] = "Do not call"
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_empty_page_invites_to_create_a_list(app_env) -> None:  # type: ignore[no-untyped-def]
    at = open_page(PAGE)
    assert any("No contact list yet" in str(info.value) for info in at.info)


def test_creating_a_list_selects_it(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    at = open_page(PAGE)
    at.text_input(key="contacts_new_name").input("Patients")
    submit(at, "Create")
    assert not at.exception, at.exception
    assert [c.name for c in session.exec(select(ContactList))] == ["Patients"]
    assert "Patients" in messages(at, "success")


def test_a_taken_name_is_refused_with_the_reason(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    make_list(session, "Patients")
    at = open_page(PAGE)
    at.text_input(key="contacts_new_name").input("patients")
    submit(at, "Create")
    assert "Patients" in messages(at)
    assert len(session.exec(select(ContactList)).all()) == 1


def test_importing_a_file_adds_its_valid_numbers_to_the_list(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    list_id = make_list(session)
    at = open_page(PAGE)
    at.session_state["contacts_view"] = "Import from file"
    at.run()
    csv = b"Full name,Cell\nAda,4155550101\nBob,not a number\nCy,(415) 555-0103\n"
    upload(at, "contacts_import_file", "people.csv", csv)
    assert at.selectbox(key="contacts_import_phone_col").value == "Cell"
    at.button(key="contacts_import_go").click().run()
    assert not at.exception, at.exception
    rows = session.exec(select(Contact).where(Contact.list_id == list_id)).all()
    assert sorted(c.phone for c in rows) == ["+14155550101", "+14155550103"]
    assert "2 added" in messages(at, "success")


def test_renaming_a_list(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    list_id = make_list(session)
    at = open_page(PAGE)
    at.text_input(key=f"contacts_rename_name_{list_id}").input("Clients")
    submit(at, "Rename")
    assert not at.exception, at.exception
    session.expire_all()
    assert session.get(ContactList, list_id).name == "Clients"


def test_deleting_a_list_needs_the_confirmation_box(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    make_list(session, phones=("+14155550101",))
    at = open_page(PAGE)
    assert at.button(key="contacts_delete").disabled
    at.checkbox(key="contacts_delete_sure").check().run()
    at.button(key="contacts_delete").click().run()
    assert not at.exception, at.exception
    session.expire_all()
    assert session.exec(select(ContactList)).all() == []
    assert session.exec(select(Contact)).all() == []


def test_adding_a_contact_by_hand(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    list_id = make_list(session)
    at = open_page(PAGE)
    at.session_state["contacts_view"] = "Add a contact"
    at.run()
    at.text_input(key="contacts_add_name").input("Dee")
    at.text_input(key="contacts_add_phone").input("415 555 0104")
    submit(at, "Add contact")
    assert not at.exception, at.exception
    (contact,) = session.exec(select(Contact).where(Contact.list_id == list_id)).all()
    assert (contact.name, contact.phone) == ("Dee", "+14155550104")


def test_adding_a_bad_number_says_why(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    make_list(session)
    at = open_page(PAGE)
    at.session_state["contacts_view"] = "Add a contact"
    at.run()
    at.text_input(key="contacts_add_phone").input("12")
    submit(at, "Add contact")
    assert "12" in messages(at)


def test_browsing_searches_names_and_numbers(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    make_list(session, phones=("+14155550101", "+14155550102"))
    at = open_page(PAGE)
    assert len(at.dataframe[0].value) == 2
    at.text_input(key="contacts_search").input("0102").run()
    table = at.dataframe[0].value
    assert list(table["Phone"]) == ["+14155550102"]


def test_a_long_list_is_shown_a_page_at_a_time(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    list_id = make_list(session)
    phones = [f"+1415555{index:04d}" for index in range(150)]
    contacts.import_plan(session=session, list_id=list_id, plan=make_plan(phones))
    session.commit()
    at = open_page(PAGE)
    assert len(at.dataframe[0].value) == 100
    assert "1–100 of 150" in " ".join(str(c.value) for c in at.caption)
    at.session_state[f"contacts_page_{list_id}_"] = 2
    at.run()
    assert len(at.dataframe[0].value) == 50


def test_editing_and_deleting_contacts_in_the_grid(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    list_id = make_list(session, phones=("+14155550101", "+14155550102"))
    at = open_page(PAGE)
    editor_key = next(key for key in at.session_state if str(key).startswith("contacts_editor_"))
    at.session_state[editor_key] = {
        "edited_rows": {0: {"Name": "Ada Lovelace"}, 1: {"Delete": True}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    at.button(key="contacts_save").click().run()
    assert not at.exception, at.exception
    session.expire_all()
    rows = session.exec(select(Contact).where(Contact.list_id == list_id)).all()
    assert [(c.name, c.phone) for c in rows] == [("Ada Lovelace", "+14155550101")]


def test_a_bad_number_typed_in_the_grid_is_reported_and_other_edits_are_saved(
    app_env, session: Session
) -> None:  # type: ignore[no-untyped-def]
    list_id = make_list(session, phones=("+14155550101", "+14155550102"))
    at = open_page(PAGE)
    editor_key = next(key for key in at.session_state if str(key).startswith("contacts_editor_"))
    at.session_state[editor_key] = {
        "edited_rows": {0: {"Phone": "12"}, 1: {"Name": "Bea"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    at.button(key="contacts_save").click().run()
    assert not at.exception, at.exception
    assert "'12'" in messages(at)
    session.expire_all()
    rows = session.exec(select(Contact).where(Contact.list_id == list_id)).all()
    assert sorted((c.name, c.phone) for c in rows) == [
        ("Bea", "+14155550102"),
        ("Person 0", "+14155550101"),
    ]


def test_adding_and_removing_a_do_not_call_number(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    at = dnc_tab(open_page(PAGE))
    at.text_input(key="contacts_dnc_add_phone").input("(415) 555-0101")
    at.text_input(key="contacts_dnc_add_note").input("asked not to be called")
    submit(at, "Add to do-not-call")
    assert not at.exception, at.exception
    entry = session.exec(select(DoNotCall)).one()
    assert (entry.phone, entry.note) == ("+14155550101", "asked not to be called")
    at.session_state["contacts_dnc_table"] = {
        "selection": {"rows": [0], "columns": [], "cells": []}
    }
    at.run()
    at.button(key="contacts_dnc_remove").click().run()
    assert not at.exception, at.exception
    session.expire_all()
    assert session.exec(select(DoNotCall)).all() == []


def test_importing_do_not_call_numbers_from_a_file(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    at = dnc_tab(open_page(PAGE))
    upload(at, "contacts_dnc_file", "optout.csv", b"Phone\n4155550101\n4155550102\n")
    at.button(key="contacts_dnc_import_go").click().run()
    assert not at.exception, at.exception
    phones = sorted(entry.phone for entry in session.exec(select(DoNotCall)))
    assert phones == ["+14155550101", "+14155550102"]


def test_the_do_not_call_list_reduces_a_contact_list_campaign(app_env, session: Session) -> None:  # type: ignore[no-untyped-def]
    """Bulk calling from a list: a number on the do-not-call list is counted apart."""
    make_channel(session)
    make_list(session, phones=("+14155550101", "+14155550102"))
    contacts.add_do_not_call(session=session, phone="+14155550101")
    session.commit()
    at = open_page("pages/bulk_calling.py")
    at.session_state["bulk_source"] = "Use contact list"
    at.run()
    at.selectbox(key="bulk_list").select_index(0).run()
    assert metric(at, "Do not call") == "1"
    assert metric(at, "To call") == "1"
