"""The schema is created by the migrations, on SQLite and PostgreSQL."""

import secrets

import pytest
from sqlalchemy import create_engine, inspect, text

from bulkcall_core.database import migrate
from tests.conftest import DATABASES, POSTGRES_URL, _pg


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


def test_migrations_match_the_models(engine):
    """A model changed without a migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


@pytest.fixture(params=DATABASES)
def empty_database_url(request, tmp_path):
    """A database with no schema at all (the shared test database is already at head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = f"bulkcall_upgrade_{secrets.token_hex(4)}"
    admin = create_engine(_pg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield _pg(f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_keeps_existing_campaigns_and_contacts(empty_database_url):
    """Data stored under the first schema is still there after upgrading to the newest."""
    database_url = empty_database_url
    from alembic import command
    from alembic.config import Config

    from bulkcall_core.database import MIGRATIONS_DIR, make_engine

    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contact_list (id, name, created_at, updated_at) "
                "VALUES (1, 'Clients', '2026-01-01', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO contact (list_id, name, phone, fields, created_at) "
                "VALUES (1, 'Ann', '+14155550100', '{}', '2026-01-01')"
            )
        )
    migrate(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name, phone FROM contact")).all()
    assert [tuple(r) for r in rows] == [("Ann", "+14155550100")]
    engine.dispose()
