"""The environment a dashboard test runs the app in: this test's database and Redis, a private
data directory, a fixed secret key, and no developer's secrets.toml or password.

`app_env` sets the environment variables the settings read and clears the cached settings
before and after, so that the app (AppTest in this process, or a server started by the test)
reads exactly these.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bulkcall_core.settings import get_settings
from tests.conftest import FERNET_TEST_KEY

# Settings a developer may have exported; a test must not inherit them.
CLEARED = (
    "DASHBOARD_PASSWORD",
    "PUBLIC_BASE_URL",
    "TWILIO_API_BASE_URL",
    "WEBHOOK_HOST",
    "WEBHOOK_PORT",
    "QUEUE_NAME",
)


@pytest.fixture
def app_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str,
    redis_url: str,
    engine: Engine,
) -> Iterator[dict[str, str]]:
    """Environment variables for the app under test (also returned, for subprocesses).

    Takes `engine` so that the database is migrated before and emptied after each test, even
    when the test itself never opens a session.
    """
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    values = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp_path / "app-data"),
        "BULKCALL_SECRET_KEY": FERNET_TEST_KEY,
        "BULKCALL_SECRETS_TOML": str(tmp_path / "no-secrets.toml"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()
