"""The calls-per-second limiter of a Twilio account, shared through Redis by every worker
everywhere.

Twilio's calls-per-second limit belongs to the account, not to a phone number: every channel
on one account shares one limiter, keyed by the account SID (the dispatcher passes it, with
the smallest rate of the account's channels; see `dispatch`). The key can be any string.

Guarantee: for a key paced at `cps`, no window of `window_seconds(cps)` (one second plus a
small margin; longer below 1 CPS) holds more than `calls_per_window(cps)` acquisitions, counted
by every process on every machine that uses the same Redis.

How:
- One Lua script runs atomically in Redis. It keeps a sliding-window log (a sorted set of the
  acquisitions of the last window, scored in microseconds) and a "theoretical arrival time"
  (GCRA) that spaces calls evenly instead of letting a whole second's calls leave in one burst.
  It either records the acquisition and answers 0, or answers how many microseconds to wait.
- Time comes from Redis' own clock (`TIME`), so the clocks of the machines do not matter.
- Waiting happens in the caller, in slices of at most `WAIT_SLICE_SECONDS`, calling
  `should_stop()` between slices: a pause or stop is noticed within a fraction of a second even
  while the channel is saturated.
- The margin (`SAFETY_MARGIN`) absorbs the jitter between the moment a slot is taken here and
  the moment Twilio receives the request: Twilio counts arrivals, we count departures.

Redis losing its data (restart without persistence, FLUSHDB): the limiter's keys vanish and an empty
log would let a full window of calls through right after calls made just before the loss. The script
therefore refuses to start a fresh log without being told how many calls the caller knows about
(`recent_calls()`, which the dispatcher answers from the database: calls of the account's channels
claimed in the last few seconds). Those are entered as if made now, so after a loss the limiter errs
on the slow side for at most one window and never exceeds the rate. Without a `recent_calls`
callback a fresh log starts empty (documented risk for other callers).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from itertools import count

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Fraction by which windows are lengthened (and the rate lowered) so that network jitter between
# us and Twilio cannot make Twilio see more than `cps` calls in one of its 1-second windows.
# 1.5 % keeps the achieved rate at 98.5 % of the configured one and tolerates 15 ms of jitter.
SAFETY_MARGIN = 0.015
# Longest single sleep while waiting for a slot: how fast a pause/stop is noticed.
WAIT_SLICE_SECONDS = 0.2
# How early (as a fraction of the spacing) a call may leave to make up for a late wake-up;
# the window log still caps every window, so this only smooths, never exceeds.
CATCH_UP_FRACTION = 0.5
# ...and at least this early at high rates, where a late wake-up of a few milliseconds (a busy
# machine) would otherwise cost whole calls: at 100 CPS this lets up to 3 calls catch up.
MIN_CATCH_UP_SECONDS = 0.025
# Pause after a Redis error before trying again (Redis restarting, network blip).
REDIS_RETRY_SECONDS = 0.2
KEY_PREFIX = "bulkcall:pacing"

# KEYS: log (zset), tat (string). ARGV: limit, window_us, interval_us, tolerance_us, member,
# seed (-1 = unknown). Returns 0 (acquired), a positive wait in microseconds, or -1 when the
# limiter holds no state and the caller must say how many recent calls it knows about.
_ACQUIRE_LUA = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[4])
local seed = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = math.ceil(window / 1000) * 2 + 1000
local tat = tonumber(redis.call('GET', KEYS[2]))
if tat == nil then
  if seed < 0 then
    return -1
  end
  for i = 1, math.min(seed, limit) do
    redis.call('ZADD', KEYS[1], now, 'seed:' .. now .. ':' .. i)
  end
  tat = now
  redis.call('SET', KEYS[2], tat, 'PX', ttl)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local wait = 0
local used = redis.call('ZCARD', KEYS[1])
if used >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now + 1
end
if tat - tolerance > now then
  wait = math.max(wait, tat - tolerance - now)
end
if wait > 0 then
  return wait
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], math.max(tat, now - tolerance) + interval, 'PX', ttl)
return 0
"""


def calls_per_window(cps: float) -> int:
    """How many calls one window may hold: floor(cps), at least 1.

    Raises ValueError for a rate that is not positive.
    """
    if not cps > 0:
        raise ValueError(f"calls per second must be positive, got {cps!r}")
    return max(1, math.floor(cps))


def window_seconds(cps: float) -> float:
    """The window length: 1 s (1/cps below 1 CPS), lengthened by SAFETY_MARGIN."""
    base = 1.0 if cps >= 1 else 1.0 / cps
    return base * (1.0 + SAFETY_MARGIN)


class Pacer:
    """Paces one key (a Twilio account SID). Cheap to create; safe to share between threads
    of one process. Every Pacer of one key must use the same `cps`: the stricter one of two
    differing Pacers holds its own callers to its rate, not the other's."""

    _counter = count()

    def __init__(
        self,
        redis: Redis,
        key: int | str,
        cps: float,
        *,
        recent_calls: Callable[[], int] | None = None,
    ) -> None:
        """`key` names the limiter (the account SID); `recent_calls()` answers how many calls
        paced by it may have left in the last few seconds; it is asked only when Redis has
        lost the limiter's state. Raises ValueError for a rate that is not positive."""
        self.limit = calls_per_window(cps)
        window = window_seconds(cps)
        self._window_us = round(window * 1_000_000)
        self._interval_us = round(window * 1_000_000 / self.limit)
        self._tolerance_us = round(
            max(self._interval_us * CATCH_UP_FRACTION, MIN_CATCH_UP_SECONDS * 1_000_000)
        )
        self._keys = list(redis_keys(key))
        self._recent_calls = recent_calls
        self._script = redis.register_script(_ACQUIRE_LUA)
        self._owner = f"{os.getpid()}:{id(self):x}"

    def try_acquire(self) -> float:
        """Take a slot now if one is free: 0.0 when taken, else the seconds to wait.

        Raises redis.exceptions.RedisError when Redis cannot be reached.
        """
        result = self._run(seed=-1)
        if result < 0:
            seed = self._recent_calls() if self._recent_calls else 0
            result = self._run(seed=max(0, seed))
        return result / 1_000_000

    def acquire(
        self,
        *,
        timeout: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> bool:
        """Wait for a slot; True when one was taken.

        False when `should_stop()` turned true or `timeout` seconds passed first. Redis errors
        are logged and retried (the limiter never lets a call through unpaced).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if should_stop is not None and should_stop():
                return False
            try:
                wait = self.try_acquire()
            except RedisError as exc:
                log.warning("pacing: Redis unavailable (%s); retrying", type(exc).__name__)
                wait = REDIS_RETRY_SECONDS
            if wait <= 0:
                return True
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait = min(wait, left)
            time.sleep(min(wait, WAIT_SLICE_SECONDS))

    def _run(self, *, seed: int) -> int:
        member = f"{self._owner}:{next(self._counter)}"
        args = [
            self.limit,
            self._window_us,
            self._interval_us,
            self._tolerance_us,
            member,
            seed,
        ]
        return int(self._script(keys=self._keys, args=args))


def redis_keys(key: int | str) -> tuple[str, str]:
    """The limiter's Redis keys for `key`: its log (a sorted set of departures, scored in
    microseconds of Redis' clock) and its theoretical arrival time. One hash tag, so both
    live on one Redis Cluster slot."""
    return f"{KEY_PREFIX}:{{{key}}}:log", f"{KEY_PREFIX}:{{{key}}}:tat"


def reset(redis: Redis, key: int | str) -> None:
    """Forget a key's pacing state (tests and benchmarks start from a clean limiter)."""
    redis.delete(*redis_keys(key))
