"""The database engine and schema upgrades.

SQLite (the zero-set-up default) runs in WAL mode with a busy timeout so that the dashboard,
the web hooks and several worker processes can share the file; PostgreSQL is used as is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from bulkcall_core.settings import PROJECT_ROOT, Settings

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
# How long a SQLite writer waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """An engine for `url` with the pragmas this product relies on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema at `engine` up to the newest migration (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic announces its dialect on every start of every process: noise in the logs.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


_engines: dict[str, Engine] = {}


def get_engine(settings: Settings) -> Engine:
    """The process-wide engine for the configured database, migrated on first use."""
    url = settings.sqlalchemy_url
    if url not in _engines:
        engine = make_engine(url)
        migrate(engine)
        _engines[url] = engine
    return _engines[url]


def new_session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit (callers own the transaction)."""
    return Session(engine, expire_on_commit=False)
