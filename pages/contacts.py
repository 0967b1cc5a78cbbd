"""Contacts: saved contact lists (create, rename, delete, import a file, browse, add, edit and
delete contacts) and the do-not-call list that every campaign skips.

Imports use the same upload, mapping, preview and validation as the Bulk calling form
(pages/_contact_file.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st
from sqlmodel import Session

from bulkcall_core import channels, contacts
from bulkcall_core.errors import BulkCallError
from pages import _contact_file as contact_file
from pages._common import format_time, page_header, session, show_error

T = TypeVar("T")
# Contacts shown per page of the browser: a screenful, and a small payload for the browser.
PAGE_SIZE = 100
# Do-not-call entries shown at once; search narrows the rest.
DNC_SHOWN = 500
TAB_LISTS = "Contact lists"
TAB_DNC = "Do not call"
VIEW_BROWSE = "Browse and edit"
VIEW_ADD = "Add a contact"
VIEW_IMPORT = "Import from file"


def _flash(message: str) -> None:
    """A success message shown once, after the rerun that an action causes."""
    st.session_state["contacts_flash"] = message


def _reset_next_run(values: dict[str, Any]) -> None:
    """Widget values to set at the start of the next run (a widget drawn in this run cannot
    be changed any more): clears a form after it succeeded, closes a popover."""
    st.session_state.setdefault("contacts_reset", {}).update(values)


def _apply_resets() -> None:
    for key, value in st.session_state.pop("contacts_reset", {}).items():
        st.session_state[key] = value


def _show_flash() -> None:
    message = st.session_state.pop("contacts_flash", None)
    if message:
        st.success(message, icon=":material/check_circle:")


def run_action(action: Callable[[Session], T]) -> T | None:
    """`action(db)` in a new session, committed; a core error is shown where the page is and
    gives None (nothing is committed then)."""
    try:
        with session() as db:
            result = action(db)
            db.commit()
            return result
    except BulkCallError as exc:
        show_error(exc)
        return None


def search_box(label: str, key: str, placeholder: str) -> str:
    """A search field that keeps its text across page visits."""
    return st.text_input(label, key=key, placeholder=placeholder, persist_state="session")


def _default_country() -> str:
    """The region of the first channel's number: the likeliest country of typed numbers."""
    with session() as db:
        available = channels.eligible_channels(session=db)
    return channels.channel_region(available[0]) if available else "US"


def _country_field(key: str, default: str) -> str:
    labels = contact_file.country_labels()
    st.session_state.setdefault(key, default)
    return st.selectbox(
        "Country of numbers written without a country code",
        list(labels),
        format_func=lambda code: labels.get(code, code),
        key=key,
    )


# --------------------------------------------------------------------------------------------
# Lists


def list_picker() -> contacts.ListSummary | None:
    with session() as db:
        summaries = contacts.list_summaries(session=db)
    by_id = {summary.id: summary for summary in summaries}
    if st.session_state.get("contacts_list") not in by_id:
        st.session_state["contacts_list"] = summaries[0].id if summaries else None
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    with right.popover(
        "New list",
        icon=":material/add:",
        width="stretch",
        key="contacts_new_popover",
        on_change="rerun",
    ):
        new_list_form()
    if not summaries:
        left.info("No contact list yet: create one with **New list**.", icon=":material/info:")
        return None
    chosen = left.selectbox(
        "Contact list",
        list(by_id),
        format_func=lambda list_id: f"{by_id[list_id].name} ({by_id[list_id].size:,} contacts)",
        key="contacts_list",
    )
    return by_id.get(chosen)


def new_list_form() -> None:
    with st.form("contacts_new_list_form", clear_on_submit=False, border=False):
        name = st.text_input("Name of the new list", key="contacts_new_name", max_chars=200)
        if not st.form_submit_button("Create", type="primary"):
            return
    created = run_action(lambda db: contacts.create_list(session=db, name=name))
    if created is None:
        return
    st.session_state["contacts_list"] = created.id
    _reset_next_run({"contacts_new_name": "", "contacts_new_popover": False})
    _flash(f"List '{created.name}' created. Import a file or add contacts to it.")
    st.rerun()


def list_actions(summary: contacts.ListSummary) -> None:
    st.caption(
        f"**{summary.name}** · {summary.size:,} contacts · created "
        f"{format_time(summary.created_at)} · changed {format_time(summary.updated_at)}"
    )
    actions = st.container(horizontal=True)
    with actions.popover(
        "Rename",
        icon=":material/edit:",
        key="contacts_rename_popover",
        on_change="rerun",
    ):
        with st.form("contacts_rename_form", border=False):
            name = st.text_input(
                "New name", value=summary.name, key=f"contacts_rename_name_{summary.id}"
            )
            submitted = st.form_submit_button("Rename", type="primary")
        if submitted:
            _rename(summary, name)
    with actions.popover(
        "Delete",
        icon=":material/delete:",
        key="contacts_delete_popover",
        on_change="rerun",
    ):
        st.warning(
            f"Delete '{summary.name}' and its {summary.size:,} contacts? Campaigns already "
            "created from it keep their calls.",
        )
        sure = st.checkbox("Yes, delete this list", key="contacts_delete_sure")
        if st.button("Delete list", key="contacts_delete", type="primary", disabled=not sure):
            _delete(summary)


def _rename(summary: contacts.ListSummary, name: str) -> None:
    renamed = run_action(lambda db: contacts.rename_list(session=db, list_id=summary.id, name=name))
    if renamed is None:
        return
    _reset_next_run({"contacts_rename_popover": False})
    _flash(f"List renamed to '{renamed.name}'.")
    st.rerun()


def _delete(summary: contacts.ListSummary) -> None:
    if run_action(lambda db: contacts.delete_list(session=db, list_id=summary.id) or True) is None:
        return
    st.session_state.pop("contacts_list", None)
    _reset_next_run({"contacts_delete_sure": False, "contacts_delete_popover": False})
    _flash(f"List '{summary.name}' deleted.")
    st.rerun()


# --------------------------------------------------------------------------------------------
# Contacts of one list


def contacts_frame(rows: list[Any]) -> pd.DataFrame:
    """Contacts as the editor shows them: id (hidden), name, phone, other fields, delete."""
    return pd.DataFrame(
        [
            {
                "id": row.id,
                "Name": row.name or "",
                "Phone": row.phone,
                "Other fields": ", ".join(f"{k}: {v}" for k, v in (row.fields or {}).items()),
                "Delete": False,
            }
            for row in rows
        ],
        columns=["id", "Name", "Phone", "Other fields", "Delete"],
    )


def browse(summary: contacts.ListSummary, country: str) -> None:
    search = search_box("Search", "contacts_search", "Part of a name or of a number")
    with session() as db:
        _, total = contacts.contacts_page(
            session=db, list_id=summary.id, search=search, limit=1, offset=0
        )
    pages = max(1, -(-total // PAGE_SIZE))
    page = 1
    if pages > 1:
        page = st.pagination(pages, key=f"contacts_page_{summary.id}_{search}")
    with session() as db:
        rows, total = contacts.contacts_page(
            session=db,
            list_id=summary.id,
            search=search,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
        )
    if not total:
        st.info("No contact matches." if search else "This list is empty.", icon=":material/info:")
        return
    first = (page - 1) * PAGE_SIZE + 1
    st.caption(f"Contacts {first:,}–{first + len(rows) - 1:,} of {total:,}")
    original = contacts_frame(rows)
    edited = st.data_editor(
        original,
        key=f"contacts_editor_{summary.id}_{page}_{search}",
        hide_index=True,
        disabled=["id", "Other fields"],
        column_config={
            "id": None,
            "Name": st.column_config.TextColumn("Name"),
            "Phone": st.column_config.TextColumn("Phone", required=True),
            "Delete": st.column_config.CheckboxColumn("Delete", width="small"),
        },
        num_rows="fixed",
    )
    if st.button("Save changes", key="contacts_save", type="primary"):
        _save_edits(original, edited, country)


def changed_contacts(original: pd.DataFrame, edited: pd.DataFrame) -> tuple[list, list]:
    """(edits as (id, name, phone), ids to delete) between the editor's input and output."""
    updates, deletions = [], []
    for (_, before), (_, after) in zip(original.iterrows(), edited.iterrows(), strict=True):
        if bool(after["Delete"]):
            deletions.append(int(before["id"]))
        elif (before["Name"], before["Phone"]) != (after["Name"], after["Phone"]):
            updates.append((int(before["id"]), after["Name"], after["Phone"]))
    return updates, deletions


def _save_edits(original: pd.DataFrame, edited: pd.DataFrame, country: str) -> None:
    updates, deletions = changed_contacts(original, edited)
    if not updates and not deletions:
        st.info("Nothing changed.", icon=":material/info:")
        return
    errors = []
    with session() as db:
        for contact_id, name, phone in updates:
            try:
                with db.begin_nested():
                    contacts.update_contact(
                        session=db,
                        contact_id=contact_id,
                        name=name or None,
                        phone=str(phone or ""),
                        country=country,
                    )
            except BulkCallError as exc:
                errors.append(f"{name or phone}: {exc.message}")
        for contact_id in deletions:
            contacts.delete_contact(session=db, contact_id=contact_id)
        db.commit()
    done = len(updates) - len(errors)
    _flash(f"Saved {done:,} change(s), deleted {len(deletions):,} contact(s).")
    if errors:
        st.session_state["contacts_edit_errors"] = errors
    st.rerun()


def add_contact_form(summary: contacts.ListSummary, country: str) -> None:
    with st.form("contacts_add_form", border=False):
        left, right = st.columns(2)
        name = left.text_input("Name (optional)", key="contacts_add_name")
        phone = right.text_input("Phone number", key="contacts_add_phone")
        country = _country_field("contacts_add_country", country)
        has_cc = st.checkbox("The number starts with its country code", key="contacts_add_has_cc")
        submitted = st.form_submit_button("Add contact", type="primary")
    if not submitted:
        return
    contact = run_action(
        lambda db: contacts.add_contact(
            session=db,
            list_id=summary.id,
            phone=phone,
            name=name or None,
            country=country,
            has_country_code=has_cc,
        )
    )
    if contact is None:
        return
    _reset_next_run({"contacts_add_name": "", "contacts_add_phone": ""})
    _flash(f"{contact.name or contact.phone} ({contact.phone}) added to '{summary.name}'.")
    st.rerun()


def import_into(summary: contacts.ListSummary, country: str) -> None:
    outcome = contact_file.contact_file(
        "contacts_import", default_country=country, duplicates_option=False
    )
    if outcome.plan is None or outcome.problems:
        return
    label = f"Import {outcome.plan.to_call:,} contacts into '{summary.name}'"
    if not st.button(label, key="contacts_import_go", type="primary"):
        return
    plan = outcome.plan
    with st.spinner(f"Importing {plan.to_call:,} contacts…"):
        result = run_action(
            lambda db: contacts.import_plan(session=db, list_id=summary.id, plan=plan)
        )
    if result is None:
        return
    contact_file.forget_file("contacts_import")
    _flash(
        f"Imported into '{summary.name}': {result.added:,} added, "
        f"{result.already_on_list:,} already on the list."
    )
    st.rerun()


def lists_tab(country: str) -> None:
    summary = list_picker()
    if summary is None:
        return
    list_actions(summary)
    for error in st.session_state.pop("contacts_edit_errors", []):
        st.error(error, icon=":material/error:")
    view = st.segmented_control(
        "View",
        [VIEW_BROWSE, VIEW_ADD, VIEW_IMPORT],
        key="contacts_view",
        label_visibility="collapsed",
        default=VIEW_BROWSE,
        persist_state="session",
    )
    if view == VIEW_ADD:
        add_contact_form(summary, country)
    elif view == VIEW_IMPORT:
        import_into(summary, country)
    else:
        browse(summary, country)


# --------------------------------------------------------------------------------------------
# Do not call


def dnc_frame(entries: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Phone": entry.phone,
                "Reason / note": entry.note,
                "Added": format_time(entry.created_at),
            }
            for entry in entries
        ],
        columns=["Phone", "Reason / note", "Added"],
    )


def dnc_add_form(country: str) -> None:
    with st.form("contacts_dnc_form", border=False):
        left, right = st.columns(2)
        phone = left.text_input("Phone number", key="contacts_dnc_add_phone")
        note = right.text_input(
            "Reason / note", key="contacts_dnc_add_note", placeholder="e.g. asked not to be called"
        )
        country = _country_field("contacts_dnc_add_country", country)
        has_cc = st.checkbox("The number starts with its country code", key="contacts_dnc_add_cc")
        submitted = st.form_submit_button("Add to do-not-call", type="primary")
    if not submitted:
        return
    entry = run_action(
        lambda db: contacts.add_do_not_call(
            session=db, phone=phone, note=note, country=country, has_country_code=has_cc
        )
    )
    if entry is None:
        return
    _reset_next_run({"contacts_dnc_add_phone": "", "contacts_dnc_add_note": ""})
    _flash(f"{entry.phone} is on the do-not-call list: no campaign will call it.")
    st.rerun()


def dnc_list() -> None:
    search = search_box(
        "Search the do-not-call list", "contacts_dnc_search", "Part of a number or of a note"
    )
    with session() as db:
        entries = contacts.list_do_not_call(session=db, search=search, limit=DNC_SHOWN + 1)
    if not entries:
        st.info("No number matches." if search else "The do-not-call list is empty.")
        return
    if len(entries) > DNC_SHOWN:
        st.caption(f"Showing the newest {DNC_SHOWN:,}; search to find others.")
        entries = entries[:DNC_SHOWN]
    state = st.dataframe(
        dnc_frame(entries),
        key="contacts_dnc_table",
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
    )
    chosen = [entries[i].phone for i in state.selection.rows if i < len(entries)]
    label = f"Remove {len(chosen)} selected" if chosen else "Remove selected"
    if st.button(label, key="contacts_dnc_remove", disabled=not chosen):

        def remove(db: Session) -> bool:
            for phone in chosen:
                contacts.remove_do_not_call(session=db, phone=phone, has_country_code=True)
            return True

        if run_action(remove) is None:
            return
        st.session_state.pop("contacts_dnc_table", None)
        _flash(f"Removed from the do-not-call list: {', '.join(chosen)}.")
        st.rerun()


def dnc_import(country: str) -> None:
    outcome = contact_file.contact_file(
        "contacts_dnc", default_country=country, duplicates_option=False, block_premium=False
    )
    if outcome.plan is None or outcome.problems:
        return
    note = st.text_input("Reason / note for these numbers", key="contacts_dnc_import_note")
    label = f"Add {outcome.plan.to_call:,} numbers to the do-not-call list"
    if not st.button(label, key="contacts_dnc_import_go", type="primary"):
        return
    plan = outcome.plan
    with st.spinner(f"Adding {plan.to_call:,} numbers…"):
        added = run_action(lambda db: contacts.import_do_not_call(session=db, plan=plan, note=note))
    if added is None:
        return
    contact_file.forget_file("contacts_dnc")
    _flash(f"{added:,} numbers added to the do-not-call list.")
    st.rerun()


def dnc_tab(country: str) -> None:
    st.caption(
        "Numbers on this list are never called, whatever the campaign; they are "
        "reported as skipped."
    )
    with st.expander("Add a number", expanded=True):
        dnc_add_form(country)
    with st.expander("Import numbers from a file"):
        dnc_import(country)
    dnc_list()


def main() -> None:
    page_header("Contacts", "Saved lists of people to call, and the numbers nobody may call.")
    _apply_resets()
    _show_flash()
    country = _default_country()
    tab_lists, tab_dnc = st.tabs([TAB_LISTS, TAB_DNC], key="contacts_tab", on_change="rerun")
    if tab_dnc.open:
        with tab_dnc:
            dnc_tab(country)
    else:
        with tab_lists:
            lists_tab(country)


main()
