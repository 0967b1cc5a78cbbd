"""`python -m bulkcall_core channel ...` as real processes, against the fake Twilio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.fake_twilio import FakeTwilio
from tests.fake_twilio.fixtures import fake_twilio  # noqa: F401 - fixture

PROJECT = Path(__file__).resolve().parent.parent
FROM = "+14155550100"


@pytest.fixture
def fake(fake_twilio: FakeTwilio) -> FakeTwilio:  # noqa: F811 - the imported fixture
    return fake_twilio


@pytest.fixture
def account(fake: FakeTwilio):  # type: ignore[no-untyped-def]
    return fake.add_account(numbers=(FROM, "+14155550101"), trial=False)


@pytest.fixture
def run(tmp_path: Path, fake: FakeTwilio):  # type: ignore[no-untyped-def]
    """Run the command line with a private database, key and the fake's address."""
    database = {"url": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    key = Fernet.generate_key().decode()

    def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "BULKCALL_"))}
        env.update(
            DATABASE_URL=database["url"],
            DATA_DIR=str(tmp_path / "data"),
            BULKCALL_SECRET_KEY=key,
            TWILIO_API_BASE_URL=fake.base_url,
            TWILIO_TIMEOUT_SECONDS="5",
            BULKCALL_SECRETS_TOML=str(tmp_path / "none.toml"),
        )
        if token is not None:
            env["TWILIO_AUTH_TOKEN"] = token
        return subprocess.run(
            [sys.executable, "-m", "bulkcall_core", "channel", *args],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run.database = database  # type: ignore[attr-defined]
    return run


def _add_args(account, *extra: str) -> list[str]:  # type: ignore[no-untyped-def]
    return ["add", "--name", "Sales US", "--account-sid", account.sid, "--from", FROM, *extra]


def test_add_then_list_as_json_on_each_database(run, account, database_url, engine) -> None:
    """The whole round trip on SQLite and PostgreSQL; the token never printed."""
    run.database["url"] = database_url
    added = run(
        *_add_args(account, "--cps", "5", "--allowed-countries", "us,ca", "--json"),
        token=account.token,
    )
    assert added.returncode == 0, added.stderr
    channel = json.loads(added.stdout)
    assert channel["from"] == FROM and channel["calls_per_second"] == 5.0
    assert channel["allowed_countries"] == ["CA", "US"] and channel["verified_at"]
    listed = run("list", "--json")
    assert [c["name"] for c in json.loads(listed.stdout)] == ["Sales US"]
    assert json.loads(listed.stdout)[0]["auth_token"] == "••••••••" + account.token[-4:]
    for result in (added, listed):
        assert account.token not in result.stdout + result.stderr


def test_missing_token_variable_exits_2_with_what_to_set(run, account, fake) -> None:
    result = run(*_add_args(account))
    assert result.returncode == 2
    assert result.stderr.startswith("error: set TWILIO_AUTH_TOKEN")
    assert "Traceback" not in result.stderr
    assert fake.requests == []


def test_refused_credentials_exit_2_in_one_line(run, account) -> None:
    result = run(*_add_args(account), token="0" * 32)
    assert result.returncode == 2
    assert "20003" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_trial_account_warns_on_stderr(run, fake) -> None:
    trial = fake.add_account(numbers=(FROM,), trial=True)
    result = run(*_add_args(trial), token=trial.token)
    assert result.returncode == 0, result.stderr
    assert "trial account" in result.stdout and "paid account" in result.stderr


def test_list_without_channels_says_how_to_add_one(run) -> None:
    result = run("list")
    assert result.returncode == 0 and "channel add" in result.stdout


def test_update_verify_and_remove_by_name(run, account) -> None:
    assert run(*_add_args(account), token=account.token).returncode == 0
    updated = run("update", "Sales US", "--cps", "2", "--rename", "Sales", "--json")
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["calls_per_second"] == 2.0
    assert run("verify", "Sales").returncode == 0
    removed = run("remove", "Sales")
    assert removed.returncode == 0 and "Removed channel 'Sales'" in removed.stdout
    assert json.loads(run("list", "--json").stdout) == []


def test_unknown_channel_name_lists_the_existing_ones(run, account) -> None:
    run(*_add_args(account), token=account.token)
    result = run("remove", "Nope")
    assert result.returncode == 2
    assert "the channels are: Sales US" in result.stderr


def test_bad_cps_is_a_usage_error(run, account) -> None:
    result = run(*_add_args(account, "--cps", "fast"), token=account.token)
    assert result.returncode == 2 and "Traceback" not in result.stderr
