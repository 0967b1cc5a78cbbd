"""Exactly once, with real worker processes (`python worker.py`): SIGKILL at random moments,
three workers at once, Redis losing its data. Every recipient must be called exactly once
(counted by the fake Twilio), none skipped, and the campaign must complete (status callbacks
flow from the fake through the real web hooks server).
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bulkcall_core import telephony
from bulkcall_core.database import new_session
from bulkcall_core.models import Call, CallState, Campaign, CampaignStatus
from bulkcall_core.settings import PROJECT_ROOT, Settings
from bulkcall_core.worker import live_reconcilers
from tests.conftest import FERNET_TEST_KEY, POSTGRES_URL
from tests.fake_twilio import FakeTwilio, Outcome
from tests.test_dispatch import FROM, World, _client, build_world, numbers, serve_hooks
from tests.test_pacing import LogCollector, max_in_window

pytestmark = pytest.mark.slow

# A killed worker's claims are looked up after this; its lease (dispatch.LEASE_SECONDS) first.
CLAIM_TIMEOUT = 3.0
FINISH_TIMEOUT = 90.0
# Allowed delay differences between calls leaving a worker and reaching the fake.
ARRIVAL_JITTER = 0.25


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(speed=0.2) as fake:
        yield fake


@pytest.fixture
def env_settings(settings_factory, database_url: str, redis_url: str, fake: FakeTwilio):  # type: ignore[no-untyped-def]
    """Settings shared by this process, its web hooks server and the worker processes."""
    settings, server = serve_hooks(
        settings_factory,
        database_url=database_url,
        redis_url=redis_url,
        fake=fake,
        twilio_timeout_seconds=1.0,
        claim_timeout_seconds=CLAIM_TIMEOUT,
        queue_name=f"bulkcall-test-{secrets.token_hex(4)}",
    )
    yield settings
    server.stop()


@pytest.fixture
def world(fake: FakeTwilio, env_settings: Settings, engine: Engine, redis_url: str) -> World:
    return build_world(fake, env_settings, engine, redis_url, cps=10)


class Workers:
    """Worker processes started like an operator would, killed like a power cut."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": settings.sqlalchemy_url,
            "REDIS_URL": settings.redis_url or "",
            "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
            "PUBLIC_BASE_URL": settings.public_base_url or "",
            "BULKCALL_SECRET_KEY": FERNET_TEST_KEY,
            "CLAIM_TIMEOUT_SECONDS": str(settings.claim_timeout_seconds),
            "TWILIO_TIMEOUT_SECONDS": str(settings.twilio_timeout_seconds),
            "QUEUE_NAME": settings.queue_name,
            "DATA_DIR": str(settings.data_dir),
            "BULKCALL_SECRETS_TOML": str(log_dir / "no-secrets.toml"),
        }
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "worker.py")],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def wait_ready(self, count: int, redis_url: str) -> None:
        """Wait until `count` workers listen on the queue and their reconcilers run (start-up
        imports are CPU-heavy on this machine)."""
        redis = Redis.from_url(redis_url)
        deadline = time.monotonic() + 60

        def ready() -> bool:
            workers = len(Worker.all(connection=redis))
            return workers >= count and live_reconcilers(redis) >= count

        while not ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready(), self.logs()

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and every process under it (work horse, scheduler, reconciler)
        at once: nothing gets to clean up."""
        family = [process.pid, *_descendants(process.pid)]
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill(process)

    def logs(self) -> str:
        return "\n".join(path.read_text()[-3000:] for path in sorted(self.log_dir.glob("*.log")))


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def workers(env_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    pool = Workers(env_settings, log_dir)
    yield pool
    pool.stop_all()


def open_calls(engine: Engine, campaign_ids: list[int]) -> int:
    with new_session(engine) as session:
        return int(
            session.execute(
                select(func.count(Call.id)).where(
                    Call.campaign_id.in_(campaign_ids),
                    Call.state.in_([CallState.PENDING, CallState.DIALING, CallState.PLACED]),
                )
            ).scalar()
            or 0
        )


def wait_until_finished(world: World, campaign_ids: list[int], workers: Workers) -> None:
    deadline = time.monotonic() + FINISH_TIMEOUT
    while open_calls(world.engine, campaign_ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    if open_calls(world.engine, campaign_ids):
        with new_session(world.engine) as session:
            left = session.execute(
                select(Call.phone, Call.state, Call.status, Call.sid, Call.claimed_at).where(
                    Call.campaign_id.in_(campaign_ids),
                    Call.state.in_([CallState.PENDING, CallState.DIALING, CallState.PLACED]),
                )
            ).all()
        pytest.fail(f"calls still open: {left}\n{workers.logs()}")


def assert_exactly_once(world: World, campaign_ids: list[int], phones: list[str]) -> None:
    counts = {phone: len(world.fake.calls_to(phone)) for phone in phones}
    assert {phone: n for phone, n in counts.items() if n != 1} == {}
    with new_session(world.engine) as session:
        states = session.execute(
            select(Call.state, func.count(Call.id))
            .where(Call.campaign_id.in_(campaign_ids))
            .group_by(Call.state)
        ).all()
        statuses = session.execute(
            select(Campaign.status).where(Campaign.id.in_(campaign_ids))
        ).scalars()
        assert dict(states) == {CallState.DONE: len(phones)}
        assert set(statuses) == {CampaignStatus.COMPLETED}
    assert world.fake.violations == []


def run_once(database_url: str) -> None:
    """Keep this file near 3 minutes: these tests run on one database, PostgreSQL when a
    server is given; the SIGKILL test runs on both."""
    if POSTGRES_URL and database_url.startswith("sqlite"):
        pytest.skip("runs once, on PostgreSQL (the SIGKILL test runs on SQLite too)")


def launch(world: World, phones: list[str]) -> int:
    """Store a campaign due now and hand it to the workers the way the dashboard does."""
    from bulkcall_core import scheduling

    campaign_id = world.campaign(phones)
    with new_session(world.engine) as session:
        scheduling.submit(campaign_id, session=session, settings=world.settings)
    return campaign_id


def test_one_worker_calls_everyone_once(world: World, workers: Workers, database_url: str) -> None:
    run_once(database_url)
    phones = numbers(20)
    workers.start()
    campaign_id = launch(world, phones)
    wait_until_finished(world, [campaign_id], workers)
    assert_exactly_once(world, [campaign_id], phones)


def test_callbacks_that_overtake_the_create_answer_lose_and_repeat_nothing(
    world: World, workers: Workers, database_url: str
) -> None:
    """Every callback reaches the web hooks before the worker has Twilio's answer to the
    create (failed and busy calls included): each number once, each call settled by its
    callbacks, and the campaign completes without waiting for a poll."""
    run_once(database_url)
    phones = numbers(20)
    world.fake.callback_before_response = True
    for phone in phones[:4]:
        world.fake.outcome_for[phone] = Outcome(status="failed")
    world.fake.outcome_for[phones[4]] = Outcome(status="busy")
    workers.start()
    campaign_id = launch(world, phones)
    wait_until_finished(world, [campaign_id], workers)
    assert_exactly_once(world, [campaign_id], phones)
    with new_session(world.engine) as session:
        sids = dict(
            session.execute(
                select(Call.phone, Call.sid).where(Call.campaign_id == campaign_id)
            ).all()
        )
    assert sids == {phone: world.fake.calls_to(phone)[0].sid for phone in phones}


def test_two_workers_start_two_due_campaigns_together(
    world: World, workers: Workers, redis_url: str, database_url: str
) -> None:
    """Two campaigns due at once and two idle workers (as `serve` starts them): each takes
    one at once, so the second's calls start while the first still has calls to place
    (at 10 CPS shared, 40 calls take seconds), instead of waiting for the first's turn to end."""
    run_once(database_url)
    batches = [numbers(40), numbers(40, 100)]
    for _ in range(2):
        workers.start()
    workers.wait_ready(2, redis_url)
    campaign_ids = [launch(world, batch) for batch in batches]

    def both_calling() -> bool:
        return all(world.fake.calls_to(batch[0]) for batch in batches)

    assert world.fake.wait_for(both_calling, timeout=60), workers.logs()
    called = [sum(1 for phone in batch if world.fake.calls_to(phone)) for batch in batches]
    assert max(called) < len(batches[0])  # neither had placed all its calls: no waiting turn
    wait_until_finished(world, campaign_ids, workers)
    assert_exactly_once(world, campaign_ids, batches[0] + batches[1])


def test_three_workers_share_campaigns_and_the_channels_rate(
    world: World, workers: Workers, redis_url: str, database_url: str
) -> None:
    """Three processes, three campaigns on one 10 CPS channel: each number once; no 1-second
    window holds more than 10 calls as they leave (the limiter's record, on Redis' clock);
    at the fake, no window holds more than 10 either once 0.25 s of arrival jitter is allowed
    (measured here: up to ~0.15 s between a slot and the fake recording the request, from
    CPU contention on this 2-core machine)."""
    run_once(database_url)
    batches = [numbers(15, start) for start in (0, 100, 200)]
    for _ in range(3):
        workers.start()
    workers.wait_ready(3, redis_url)
    warm_up_fake(world)
    with LogCollector(Redis.from_url(redis_url), world.account_sid) as departures:
        campaign_ids = [launch(world, batch) for batch in batches]
        wait_until_finished(world, campaign_ids, workers)
    phones = [phone for batch in batches for phone in batch]
    assert_exactly_once(world, campaign_ids, phones)
    assert max_in_window(departures.times(), 1.0) <= 10
    assert max_in_window(arrival_times(world.fake, phones), 1.0 - ARRIVAL_JITTER) <= 10


def warm_up_fake(world: World) -> None:
    """One create from this process first: the fake's first request of a kind is slow (it
    builds its checks), which would delay one call and bunch it with the next at arrival."""
    with new_session(world.engine) as session:
        client = _client(world, session)
    telephony.place_call(
        client, to="+12125559999", from_=FROM, twiml="<Response/>", status_callback=None
    )


def arrival_times(fake: FakeTwilio, phones: list[str]) -> list[float]:
    """When the fake received each create for `phones` (its clock, in order)."""
    wanted = set(phones)
    pairs = zip(fake.create_times, fake.calls, strict=True)
    return sorted(at for at, call in pairs if call.to in wanted)


def test_workers_killed_at_random_moments_never_call_twice_nor_skip(
    world: World, workers: Workers
) -> None:
    """SIGKILL the worker (and its work horse) mid-campaign, three times at random points;
    the next worker resolves the abandoned claims through Twilio's call list."""
    phones = numbers(60)
    rng = random.Random()
    campaign_id = launch(world, phones)
    for _ in range(3):
        worker = workers.start()
        target = len(world.fake.calls) + rng.randint(3, 10)
        assert world.fake.wait_for(lambda t=target: len(world.fake.calls) >= t, timeout=60), (
            workers.logs()
        )
        time.sleep(rng.uniform(0, 0.3))
        workers.kill(worker)
    workers.start()
    wait_until_finished(world, [campaign_id], workers)
    assert_exactly_once(world, [campaign_id], phones)


def test_redis_losing_its_data_mid_campaign_loses_nothing(
    world: World, workers: Workers, redis_url: str, database_url: str
) -> None:
    """FLUSHDB while a worker dispatches, then again after killing it: the reconciler
    re-enqueues from the database and every number is still called exactly once."""
    run_once(database_url)
    phones = numbers(40)
    redis = Redis.from_url(redis_url)
    worker = workers.start()
    campaign_id = launch(world, phones)
    assert world.fake.wait_for(lambda: len(world.fake.calls) >= 8, timeout=60), workers.logs()
    redis.flushdb()
    assert world.fake.wait_for(lambda: len(world.fake.calls) >= 16, timeout=60), workers.logs()
    workers.kill(worker)
    redis.flushdb()
    workers.start()
    wait_until_finished(world, [campaign_id], workers)
    assert_exactly_once(world, [campaign_id], phones)


def test_sigterm_stops_a_busy_worker_cleanly(
    world: World, workers: Workers, database_url: str
) -> None:
    """SIGTERM mid-campaign: the worker exits, leaves no claim dialing and no lease held."""
    run_once(database_url)
    phones = numbers(200)
    worker = workers.start()
    campaign_id = launch(world, phones)
    assert world.fake.wait_for(lambda: len(world.fake.calls) >= 5, timeout=60), workers.logs()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, workers.logs()
    with Session(world.engine) as session:
        dialing = session.execute(
            select(func.count(Call.id)).where(
                Call.campaign_id == campaign_id, Call.state == CallState.DIALING
            )
        ).scalar()
        campaign = session.get(Campaign, campaign_id)
        assert dialing == 0
        assert campaign is not None and campaign.lease_owner is None
    assert len(world.fake.calls) < len(phones)
