"""The worker process: an RQ worker (with RQ's scheduler) plus the reconciler.

`run(settings)` is what `python worker.py` calls. Several may run at once, on several
machines, against one database and one Redis.

- RQ's default forking `Worker` runs each dispatcher job in a work horse (a fresh fork), so a
  crash in one campaign cannot take the worker down. On SIGTERM, RQ waits for the current job
  (warm shutdown); `BulkcallWorker` therefore passes the SIGTERM on to the work horse, where
  the dispatcher stops placing calls, records what is in flight, gives back unsent claims and
  releases its lease: a clean exit within a few seconds. (RQ's SimpleWorker took ~60 s to
  exit on SIGTERM with the scheduler; the forking worker exits in well under a second.)
- The reconciler (`scheduling.reconcile` every RECONCILE_SECONDS, sooner when a campaign is
  about to become due, and `outcomes.poll_open_calls` every POLL_SECONDS by one worker at a
  time) runs in a child process, not a thread: forking a work horse from a process with
  threads can copy a lock held by another thread and deadlock the horse. The child exits
  when its parent goes away.

Logging never includes auth tokens: nothing here handles them; `channels` decrypts a token
only to build a Twilio client.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bulkcall_core import dispatch, outcomes, scheduling
from bulkcall_core.database import get_engine, new_session
from bulkcall_core.errors import BulkCallError
from bulkcall_core.models import utcnow
from bulkcall_core.queueing import get_queue, get_redis
from bulkcall_core.settings import Settings

log = logging.getLogger(__name__)

# How often every worker asks the database what is due (upper bound on the first call's delay
# beyond the scheduled time, when RQ's scheduled job was lost).
RECONCILE_SECONDS = 1.0
# How often Twilio is asked about calls whose final status never arrived (lost callbacks).
POLL_SECONDS = 30.0
POLL_LOCK_KEY = "bulkcall:poll-lock"
# Each reconciler keeps a key alive while it runs (operators and tests can see it).
RECONCILER_KEY_PREFIX = "bulkcall:reconciler"
RECONCILER_KEY_SECONDS = 10
# How long the reconciler waits for its first database/Redis answer before logging trouble.
RECONCILER_JOIN_SECONDS = 5.0


class BulkcallWorker(Worker):
    """RQ's forking worker that also asks its work horse to stop on SIGTERM (see module)."""

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def run(settings: Settings, *, burst: bool = False, name: str | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT (or, with `burst`, until the queue is empty).

    Returns the exit status. Raises SettingsError when Redis or the database cannot be used.
    """
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # one line per request
    redis = get_redis(settings)
    get_engine(settings).dispose()  # migrate once here; work horses open their own connections
    dispatch.configure(settings)
    _preload()
    reconciler = _start_reconciler(settings)
    try:
        worker = BulkcallWorker(
            [get_queue(settings, connection=redis)], connection=redis, name=name
        )
        worker.work(with_scheduler=True, burst=burst, logging_level="INFO")
    finally:
        reconciler.terminate()
        reconciler.join(RECONCILER_JOIN_SECONDS)
    return 0


def _preload() -> None:
    """Import now what every work horse needs, so each fork starts placing calls at once
    (the Twilio SDK imports its resources on first use: ~0.2 s of CPU per horse otherwise)."""
    from twilio.rest import Client

    _ = Client("AC" + "0" * 32, "preload").calls  # builds the resource classes, no request


def _start_reconciler(settings: Settings) -> multiprocessing.process.BaseProcess:
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=reconcile_forever, args=(settings, os.getpid()), name="bulkcall-reconciler"
    )
    process.daemon = True
    process.start()
    return process


def reconcile_forever(settings: Settings, parent_pid: int | None = None) -> None:
    """The reconciler loop (its own process): until SIGTERM or the parent's death."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the parent, which stops us
    logging.basicConfig(level=logging.INFO, format="%(asctime)s reconciler %(message)s")
    redis = get_redis(settings)
    queue = get_queue(settings, connection=redis)
    engine = get_engine(settings)
    last_poll = 0.0
    alive_key = f"{RECONCILER_KEY_PREFIX}:{socket.gethostname()}:{os.getpid()}"
    while not stop.is_set() and (parent_pid is None or os.getppid() == parent_pid):
        wait = RECONCILE_SECONDS
        try:
            redis.set(alive_key, int(time.time()), ex=RECONCILER_KEY_SECONDS)
            with new_session(engine) as session:
                scheduling.reconcile(session=session, queue=queue, settings=settings)
                wait = _until_next_due(session, wait)
            if time.monotonic() - last_poll >= POLL_SECONDS:
                last_poll = time.monotonic()
                _poll(settings, engine, redis)
        except (RedisError, SQLAlchemyError, BulkCallError) as exc:
            log.warning("reconcile failed (%s: %s); retrying", type(exc).__name__, exc)
        stop.wait(wait)


def live_reconcilers(redis: Redis) -> int:
    """How many reconcilers answered in the last RECONCILER_KEY_SECONDS."""
    return sum(1 for _ in redis.scan_iter(f"{RECONCILER_KEY_PREFIX}:*"))


def _until_next_due(session: Session, default: float) -> float:
    """Sleep less than `default` when a campaign becomes due sooner (first call on time)."""
    upcoming = scheduling.next_scheduled_at(session=session)
    if upcoming is None:
        return default
    seconds = (upcoming - utcnow()).total_seconds()
    return max(0.01, min(default, seconds + 0.01))


def _poll(settings: Settings, engine: Engine, redis: Redis) -> None:
    """Fill in statuses that callbacks missed and settle claims no dispatcher will look at
    again; one worker at a time does it."""
    if not redis.set(POLL_LOCK_KEY, os.getpid(), nx=True, ex=max(1, int(POLL_SECONDS) - 1)):
        return
    with new_session(engine) as session:
        settled = dispatch.resolve_abandoned_claims(session=session, settings=settings)
        session.commit()
        finished = outcomes.poll_open_calls(session=session, settings=settings)
        session.commit()
    if settled:
        log.info("poll: %d abandoned claims settled in paused or stopped campaigns", settled)
    if finished:
        log.info("poll: %d calls got their final status from Twilio", finished)
