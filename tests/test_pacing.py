"""The shared per-channel limiter, against a real Redis.

Windows are checked on the limiter's own record (Redis-clock scores of the sliding-window log,
collected while acquisitions happen), so the checks are exact and not at the mercy of the
machine's load.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from redis import Redis

from bulkcall_core import pacing
from bulkcall_core.pacing import Pacer


def _log_key(key: object) -> str:
    return pacing.redis_keys(key)[0]  # type: ignore[arg-type]


class LogCollector:
    """Reads the limiter's log often enough to see every entry before it expires."""

    def __init__(self, redis: Redis, key: object) -> None:
        """`key`: the limiter's key (the dispatcher's is the channel's account SID)."""
        self.redis = redis
        self.key = _log_key(key)
        self.seen: dict[bytes, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LogCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.collect()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.collect()

    def collect(self) -> None:
        for member, score in self.redis.zrange(self.key, 0, -1, withscores=True):
            if not member.startswith(b"seed:"):
                self.seen[member] = score / 1_000_000

    def times(self) -> list[float]:
        return sorted(self.seen.values())


def max_in_window(times: list[float], window: float) -> int:
    """The largest number of times inside any half-open window of `window` seconds."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.fixture
def redis(redis_url: str) -> Redis:
    return Redis.from_url(redis_url)


def test_no_one_second_window_holds_more_than_the_rate(redis: Redis) -> None:
    """25 acquisitions at 10 CPS: every 1-second window holds at most 10."""
    pacer = Pacer(redis, "one", 10)
    with LogCollector(redis, "one") as collector:
        for _ in range(25):
            assert pacer.acquire(timeout=10)
    times = collector.times()
    assert len(times) == 25
    assert max_in_window(times, 1.0) <= 10


def test_calls_are_spaced_evenly_not_burst(redis: Redis) -> None:
    """The first second's calls do not all leave at once: 10 CPS spaces them ~0.1 s apart."""
    pacer = Pacer(redis, "spread", 10)
    with LogCollector(redis, "spread") as collector:
        for _ in range(5):
            assert pacer.acquire(timeout=10)
    times = collector.times()
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    interval = pacing.window_seconds(10) / 10
    assert min(gaps) >= interval * (1 - pacing.CATCH_UP_FRACTION) - 1e-6


def _hammer(url: str, channel: str, n: int, cps: float) -> None:
    pacer = Pacer(Redis.from_url(url), channel, cps)
    for _ in range(n):
        pacer.acquire(timeout=30)


def test_three_processes_share_one_rate(redis: Redis, redis_url: str) -> None:
    """Three processes pacing one channel at 10 CPS together stay within 10 per second."""
    context = multiprocessing.get_context("spawn")
    with LogCollector(redis, "shared") as collector:
        workers = [
            context.Process(target=_hammer, args=(redis_url, "shared", 10, 10)) for _ in range(3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
    times = collector.times()
    assert len(times) == 30
    assert max_in_window(times, 1.0) <= 10


def test_keys_are_paced_independently(redis: Redis) -> None:
    """A saturated account does not hold back another one."""
    busy, other = Pacer(redis, "busy", 1), Pacer(redis, "other", 1)
    assert busy.try_acquire() == 0
    assert busy.try_acquire() > 0
    assert other.try_acquire() == 0


def test_wait_answer_says_how_long(redis: Redis) -> None:
    """A refused slot comes with a wait that is positive and at most one window."""
    pacer = Pacer(redis, "wait", 1)
    assert pacer.try_acquire() == 0
    wait = pacer.try_acquire()
    assert 0 < wait <= pacing.window_seconds(1)


def test_rates_below_one_per_second_use_a_longer_window(redis: Redis) -> None:
    """0.5 CPS: one call per two seconds."""
    pacer = Pacer(redis, "slow", 0.5)
    assert pacer.try_acquire() == 0
    assert pacer.try_acquire() > 1.5


def test_should_stop_ends_the_wait_between_slices(redis: Redis) -> None:
    """While the channel is saturated, acquire keeps asking should_stop and gives up on it."""
    pacer = Pacer(redis, "stop", 0.2)  # one slot per 5 s
    assert pacer.try_acquire() == 0
    asked = []

    def should_stop() -> bool:
        asked.append(time.monotonic())
        return len(asked) >= 3

    assert pacer.acquire(should_stop=should_stop) is False
    assert len(asked) == 3
    assert max(b - a for a, b in zip(asked, asked[1:], strict=False)) <= (
        pacing.WAIT_SLICE_SECONDS + 1.0  # a slice, plus room for a loaded machine
    )


def test_timeout_returns_false_without_taking_a_slot(redis: Redis) -> None:
    """A timeout shorter than the wait returns False and leaves the log as it was."""
    pacer = Pacer(redis, "timeout", 0.2)
    assert pacer.try_acquire() == 0
    assert pacer.acquire(timeout=0.1) is False
    assert redis.zcard(_log_key("timeout")) == 1


def test_after_redis_loses_its_data_recent_calls_hold_the_window(redis: Redis) -> None:
    """After a FLUSHDB, calls the database knows were just made still count: no burst."""
    asked = []

    def recent_calls() -> int:
        asked.append(1)
        return 5

    pacer = Pacer(redis, "flushed", 5, recent_calls=recent_calls)
    for _ in range(3):
        assert pacer.acquire(timeout=5)
    redis.flushdb()
    assert pacer.try_acquire() > 0
    assert len(asked) == 2  # once on the very first use, once after the loss


def test_a_fresh_limiter_with_no_recent_calls_starts_at_once(redis: Redis) -> None:
    """No recent calls known: the first call leaves immediately (no start-up delay)."""
    pacer = Pacer(redis, "fresh", 5, recent_calls=lambda: 0)
    assert pacer.try_acquire() == 0


def test_redis_down_makes_acquire_wait_not_pass(redis_url: str) -> None:
    """With Redis unreachable the limiter never lets a call through unpaced."""
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    pacer = Pacer(dead, "dead", 100)
    assert pacer.acquire(timeout=0.5) is False


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        pacing.calls_per_window(0)
