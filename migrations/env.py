"""Alembic environment: runs on the connection handed over by bulkcall_core.database.migrate,
or on DATABASE_URL (through the product's settings) when called from the alembic command."""

from alembic import context
from sqlmodel import SQLModel

import bulkcall_core.models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from bulkcall_core.database import make_engine
        from bulkcall_core.settings import get_settings

        with make_engine(get_settings().sqlalchemy_url).begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
