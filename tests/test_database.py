"""The schema is created by the migrations, on SQLite and PostgreSQL."""

from sqlalchemy import inspect

from bulkcall_core.database import migrate


def test_migrations_create_every_table_and_are_idempotent(engine):
    migrate(engine)  # a second upgrade is a no-op
    names = set(inspect(engine).get_table_names())
    assert {
        "campaign",
        "call",
        "channel",
        "contact",
        "contact_list",
        "do_not_call",
        "recording",
        "campaign_problem",
        "alembic_version",
    } <= names
