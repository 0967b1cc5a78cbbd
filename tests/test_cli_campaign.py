"""`python -m bulkcall_core campaign ...`, run as a subprocess the way an operator runs it,
on SQLite and PostgreSQL with a real Redis."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bulkcall_core import contacts
from bulkcall_core.models import Call, Campaign, CampaignStatus, utcnow
from bulkcall_core.settings import PROJECT_ROOT
from tests.conftest import FERNET_TEST_KEY
from tests.factories import make_channel

QUEUE = "bulkcall-cli-test"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A contact CSV (one bad row, one duplicate) and a one-second WAV recording."""
    contacts_csv = tmp_path / "people.csv"
    contacts_csv.write_text(
        "Name,Mobile\nAda,(212) 555-0101\nBob,212 555 0102\nBad,12\nAda again,+1 212-555-0101\n"
    )
    recording = tmp_path / "message.wav"
    with wave.open(str(recording), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<h", 0) * 8000)
    return {"csv": contacts_csv, "audio": recording}


@pytest.fixture
def channel_name(engine: Engine) -> str:
    with Session(engine) as session:
        return make_channel(session, name="Main line").name


@pytest.fixture
def cli(database_url: str, redis_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the CLI with this test's database and Redis; returns the CompletedProcess."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": "https://calls.example.com",
        "BULKCALL_SECRET_KEY": FERNET_TEST_KEY,
        "DATA_DIR": str(tmp_path / "data"),
        "QUEUE_NAME": QUEUE,
        "BULKCALL_SECRETS_TOML": str(tmp_path / "none.toml"),
    }

    def run(*args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bulkcall_core", "campaign", *args],
            env={**env, **overrides},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def create_args(files: dict[str, Path], channel: str, *extra: str) -> list[str]:
    return [
        "create",
        "--name",
        "Spring reminder",
        "--channel",
        channel,
        "--audio",
        str(files["audio"]),
        "--file",
        str(files["csv"]),
        "--phone-column",
        "Mobile",
        "--name-column",
        "Name",
        *extra,
    ]


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def campaign_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count(Campaign.id))).scalar() or 0)


def test_create_from_a_file_prints_the_id_and_queues_the_campaign(
    cli, files, channel_name: str, engine: Engine, redis_url: str
) -> None:  # type: ignore[no-untyped-def]
    done = cli(*create_args(files, channel_name, "--json"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["to_call"] == 2 and result["status"] == "scheduled"
    with Session(engine) as session:
        phones = session.execute(
            select(Call.phone).where(Call.campaign_id == result["id"]).order_by(Call.id)
        ).scalars()
        assert list(phones) == ["+12125550101", "+12125550102"]
    queued = Queue(QUEUE, connection=Redis.from_url(redis_url)).get_jobs()
    assert [job.args[0] for job in queued] == [result["id"]]


def test_create_without_json_prints_only_the_id(cli, files, channel_name: str) -> None:  # type: ignore[no-untyped-def]
    done = cli(*create_args(files, channel_name))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().isdigit()


def test_a_later_time_is_scheduled_at_that_time(
    cli, files, channel_name: str, engine: Engine, redis_url: str
) -> None:  # type: ignore[no-untyped-def]
    at = (utcnow() + timedelta(days=2)).astimezone().replace(microsecond=0)
    done = cli(*create_args(files, channel_name, "--at", at.isoformat(), "--json"))
    assert done.returncode == 0, done.stderr
    campaign_id = json.loads(done.stdout)["id"]
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.scheduled_at == at
    registry = ScheduledJobRegistry(QUEUE, connection=Redis.from_url(redis_url))
    assert len(registry.get_job_ids()) == 1


def test_a_time_without_offset_is_refused_and_nothing_stored(
    cli, files, channel_name: str, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    done = cli(*create_args(files, channel_name, "--at", "2030-01-01T09:00"))
    assert "no UTC offset" in one_error_line(done)
    assert campaign_count(engine) == 0


def test_a_time_beyond_30_days_is_refused(cli, files, channel_name: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    at = (utcnow() + timedelta(days=31)).isoformat()
    done = cli(*create_args(files, channel_name, "--at", at))
    assert "30 days" in one_error_line(done)
    assert campaign_count(engine) == 0


def test_launching_needs_public_base_url(cli, files, channel_name: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    done = cli(*create_args(files, channel_name), PUBLIC_BASE_URL="")
    assert "Set PUBLIC_BASE_URL" in one_error_line(done)
    assert campaign_count(engine) == 0


def test_an_unknown_channel_is_named(cli, files, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    done = cli(*create_args(files, "Nope"))
    assert "Nope" in one_error_line(done)
    assert campaign_count(engine) == 0


def test_retries_and_window_are_stored(cli, files, channel_name: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    args = create_args(files, channel_name, "--retries", "2", "--retry-interval", "15")
    done = cli(*args, "--window", "08:00-21:00", "--voicemail-full-message", "--json")
    assert done.returncode == 0, done.stderr
    with Session(engine) as session:
        campaign = session.get(Campaign, json.loads(done.stdout)["id"])
        assert campaign is not None
        assert (campaign.retry_count, campaign.retry_interval_seconds) == (2, 900)
        assert (campaign.window_start, campaign.window_end) == ("08:00", "21:00")
        assert campaign.voicemail_full_message


def test_create_from_a_contact_list(cli, files, channel_name: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        people = contacts.create_list(session=session, name="Customers")
        contacts.add_contact(session=session, list_id=people.id, name="Cy", phone="+12125550103")
        session.commit()
    args = ["create", "--name", "From list", "--channel", channel_name]
    args += ["--audio", str(files["audio"]), "--contact-list", "Customers", "--json"]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["to_call"] == 1


def test_status_json_lists_every_call(cli, files, channel_name: str) -> None:  # type: ignore[no-untyped-def]
    campaign_id = json.loads(cli(*create_args(files, channel_name, "--json")).stdout)["id"]
    done = cli("status", str(campaign_id), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["status"] == "scheduled"
    assert status["counts"]["pending"] == 2
    assert status["calls"][0] == {
        "phone": "+12125550101",
        "name": "Ada",
        "status": "pending",
        "sid": None,
        "attempts": 0,
    }


def test_cancel_pause_and_resume_move_the_campaign(
    cli, files, channel_name: str, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    at = (utcnow() + timedelta(hours=1)).isoformat()
    campaign_id = str(
        json.loads(cli(*create_args(files, channel_name, "--at", at, "--json")).stdout)["id"]
    )
    assert "is paused" in cli("pause", campaign_id).stdout
    assert "is scheduled" in cli("resume", campaign_id).stdout
    assert "is canceled" in cli("cancel", campaign_id).stdout
    with Session(engine) as session:
        assert session.get(Campaign, int(campaign_id)).status == CampaignStatus.CANCELED  # type: ignore[union-attr]


def test_an_impossible_action_says_why_in_one_line(cli, files, channel_name: str) -> None:  # type: ignore[no-untyped-def]
    at = (utcnow() + timedelta(hours=1)).isoformat()
    campaign_id = str(
        json.loads(cli(*create_args(files, channel_name, "--at", at, "--json")).stdout)["id"]
    )
    assert "cancel it instead" in one_error_line(cli("stop", campaign_id))
