"""`python -m bulkcall_core serve`: the whole product in one command.

Order: migrate the database; start the embedded Valkey when REDIS_URL is unset; start the web
hooks server, DEFAULT_WORKERS workers (`--workers N`) and the Streamlit dashboard as child
processes; wait until each
answers; print where everything is. Ctrl-C or SIGTERM stops every child (SIGTERM to its process
group, SIGKILL after a grace period). A child that stops by itself stops the others and the
command fails (exit status 2) with one line saying which.

Each child runs in a session of its own, so that the launcher alone decides when it stops (a
terminal's Ctrl-C reaches only the launcher) and so that a child's own children (RQ's work
horses) are stopped with it. On Linux each child also gets SIGTERM if the launcher dies
without cleaning up (PR_SET_PDEATHSIG), so no child outlives it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TextIO
from urllib.parse import urlsplit

import requests
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from bulkcall_core import queueing
from bulkcall_core.database import get_engine
from bulkcall_core.errors import BulkCallError, SettingsError
from bulkcall_core.settings import PROJECT_ROOT, Settings

# Streamlit's own default port.
DEFAULT_DASHBOARD_PORT = 8501
# How long each child may take to answer its health check: Streamlit needs several seconds
# on a busy 2-core machine.
START_TIMEOUT_SECONDS = 60.0
# How long children get to stop after SIGTERM before they are killed; a worker finishes its
# current step within a few seconds.
STOP_GRACE_SECONDS = 10.0
# Worker processes started by default. A worker runs one campaign at a time (it hands a
# campaign back after dispatch.MAX_RUN_SECONDS, sooner when another waits: FAIR_SHARE_SECONDS),
# so this many campaigns run at once and a further due one waits for a free worker. Measured
# here: a worker holds about 105 MB RSS and its reconciler child about 85 MB more, so 3 workers
# take about 0.6 GB: fits a small machine.
DEFAULT_WORKERS = 3
# More than this is surely a typo; run more workers apart (`python worker.py`, other machines).
MAX_WORKERS = 32
# How often the launcher looks at its children.
POLL_INTERVAL_SECONDS = 0.2
WORKER_SCRIPT = PROJECT_ROOT / "worker.py"
DASHBOARD_SCRIPT = PROJECT_ROOT / "streamlit_app.py"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# The embedded Valkey runs under a small keeper child rather than in the launcher, so that it
# is in a session of its own too: a terminal's Ctrl-C would otherwise stop it at once, before
# the worker, which would then fail on its way out. SIGTERM to the keeper's group stops both.
EMBEDDED_REDIS_KEEPER = """
import signal, sys
from bulkcall_core.errors import BulkCallError
from bulkcall_core.queueing import ensure_embedded_redis
from bulkcall_core.settings import get_settings
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
try:
    ensure_embedded_redis(get_settings())
except BulkCallError as exc:
    sys.exit(f"error: {exc.message}")
signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""


class LaunchError(BulkCallError):
    """A part of the product could not start, or stopped by itself."""


@dataclass
class Child:
    """One child process: its role (for messages), command and health URL."""

    role: str
    command: list[str]
    health_url: str | None = None
    ready: Callable[[], bool] | None = None  # instead of a URL
    stop_last: bool = False  # what the others need until they have stopped (Redis)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


# With no login configured, the dashboard listens here only (see dashboard_address).
LOCAL_ONLY_ADDRESS = "127.0.0.1"


def serve(
    settings: Settings,
    *,
    port: int = DEFAULT_DASHBOARD_PORT,
    address: str | None = None,
    workers: int = DEFAULT_WORKERS,
    dashboard: bool = True,
    out: TextIO = sys.stdout,
) -> int:
    """Run the product until Ctrl-C / SIGTERM; returns 0 after a requested stop.

    `port` and `address` are the dashboard's; `workers` worker processes (0: none);
    `dashboard` False leaves it out. Raises LaunchError (after stopping every child) when a
    port is taken, a child does not start, or one stops by itself, or `workers` is out of
    0..MAX_WORKERS; SettingsError for bad settings.
    """
    check_settings(settings)
    _check_workers(workers)
    address = dashboard_address(settings, address)
    children = _plan_children(settings, port=port, address=address, workers=workers,
                              dashboard=dashboard)  # fmt: skip
    _check_ports_free(settings, port=port, address=address, dashboard=dashboard)
    _migrate(settings)
    if not settings.uses_embedded_redis:
        queueing.get_redis(settings)  # SettingsError naming REDIS_URL when it does not answer
    stop = _StopFlag()
    try:
        for child in children:
            if not stop.requested:
                _start(child)
                _wait_healthy(child, stop)
        if not stop.requested:
            out.write(startup_banner(settings, port=port, children=children))
            out.flush()
        _watch(children, stop)
        out.write("Stopping bulkcall...\n")
        out.flush()
    finally:
        _stop_all(children)
        stop.restore()
    return 0


def _migrate(settings: Settings) -> None:
    """Bring the schema up to date before any child touches it."""
    try:
        get_engine(settings)
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        raise LaunchError(
            f"The database {_masked(settings.sqlalchemy_url)} cannot be used ({reason}); "
            "start it or correct DATABASE_URL"
        ) from None


def _check_workers(workers: int) -> None:
    if not 0 <= workers <= MAX_WORKERS:
        raise LaunchError(
            f"--workers {workers}: give 0 to {MAX_WORKERS} worker processes (default "
            f"{DEFAULT_WORKERS}); run more with `python worker.py`, on this or other machines"
        )


def _plan_children(
    settings: Settings, *, port: int, address: str | None, workers: int, dashboard: bool
) -> list[Child]:
    python = sys.executable
    children = []
    if settings.uses_embedded_redis:
        keeper = [python, "-c", EMBEDDED_REDIS_KEEPER]
        ready = partial(_redis_answers, settings)
        children.append(Child("embedded Valkey", keeper, ready=ready, stop_last=True))
    hooks_health = f"http://{_local_host(settings.webhook_host)}:{settings.webhook_port}/healthz"
    children.append(
        Child("web hooks server", [python, "-m", "bulkcall_core", "webhooks"], hooks_health)
    )
    if workers:
        _require_file(WORKER_SCRIPT, "the worker", "--no-worker")
    for number in range(1, workers + 1):
        children.append(Child(f"worker {number}", [python, str(WORKER_SCRIPT)]))
    if dashboard:
        _require_file(DASHBOARD_SCRIPT, "the dashboard", "--no-dashboard")
        command = [python, "-m", "streamlit", "run", str(DASHBOARD_SCRIPT),
                   "--server.port", str(port), "--server.headless", "true"]  # fmt: skip
        if address:
            command += ["--server.address", address]
        health = f"http://{_local_host(address or '127.0.0.1')}:{port}/_stcore/health"
        children.append(Child("dashboard", command, health))
    return children


def _require_file(path: os.PathLike[str], what: str, flag: str) -> None:
    if not os.path.isfile(path):
        raise LaunchError(f"{path} not found: cannot start {what}; run without it with {flag}")


def _local_host(host: str) -> str:
    # A server listening on every interface is reached locally on the loopback address.
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _check_ports_free(
    settings: Settings, *, port: int, address: str | None, dashboard: bool
) -> None:
    if not _port_free(settings.webhook_host, settings.webhook_port):
        raise LaunchError(
            f"Port {settings.webhook_port} on {settings.webhook_host} is in use, so the web "
            "hooks server cannot start; stop what uses it or set WEBHOOK_PORT to a free port"
        )
    if dashboard and not _port_free(address or "0.0.0.0", port):
        raise LaunchError(
            f"Port {port} is in use, so the dashboard cannot start; stop what uses it "
            "(another bulkcall?) or choose another with --port"
        )


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# -- children --------------------------------------------------------------------------------


def _start(child: Child) -> None:
    child.process = subprocess.Popen(
        child.command, cwd=PROJECT_ROOT, start_new_session=True, preexec_fn=_die_with_parent
    )


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask Linux to SIGTERM it when the launcher dies.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_healthy(child: Child, stop: _StopFlag) -> None:
    ready = child.ready or (lambda: _answers(child.health_url or ""))
    if child.ready is None and child.health_url is None:
        return
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not stop.requested:
        _raise_if_exited(child)
        if ready():
            return
        if time.monotonic() > deadline:
            raise LaunchError(
                f"The {child.role} did not answer ({child.health_url or 'ping'}) within "
                f"{START_TIMEOUT_SECONDS:.0f} s; see its messages above"
            )
        time.sleep(POLL_INTERVAL_SECONDS)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _redis_answers(settings: Settings) -> bool:
    try:
        return bool(queueing.get_redis(settings, start_embedded=False).ping())
    except (RedisError, OSError):
        return False


def _watch(children: list[Child], stop: _StopFlag) -> None:
    while not stop.requested:
        for child in children:
            _raise_if_exited(child)
        time.sleep(POLL_INTERVAL_SECONDS)


def _raise_if_exited(child: Child) -> None:
    assert child.process is not None
    code = child.process.poll()
    if code is None:
        return
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    raise LaunchError(
        f"The {child.role} stopped unexpectedly ({how}); see its messages above. "
        "Everything else was stopped."
    )


def _stop_all(children: list[Child]) -> None:
    _stop([child for child in children if not child.stop_last])
    _stop([child for child in children if child.stop_last])


def _stop(children: list[Child]) -> None:
    running = [child.process for child in children if child.process is not None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in running:
        _signal_group(process, signal.SIGKILL)  # the child, or what it left behind
        process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # the child leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


class _StopFlag:
    """SIGINT / SIGTERM ask the launcher to stop; the previous handlers come back after."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Callable[..., object] | int | None] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._request)

    def _request(self, _signum: int, _frame: object) -> None:
        self.requested = True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def dashboard_address(settings: Settings, address: str | None) -> str | None:
    """Where the dashboard listens: the address asked for; else every interface when people
    must sign in (a password or OIDC is configured); else localhost only, since an open
    dashboard can place calls for anyone who reaches it."""
    if address:
        return address
    return None if settings.login_configured else LOCAL_ONLY_ADDRESS


# -- what the operator sees ------------------------------------------------------------------


def startup_banner(settings: Settings, *, port: int, children: list[Child]) -> str:
    """The lines printed once everything answers: where things are and what is missing."""
    roles = {child.role: child for child in children}
    lines = ["bulkcall is running."]
    if "dashboard" in roles:
        local_only = "" if settings.login_configured else " (this machine only: no login set)"
        lines.append(f"  Dashboard:  http://localhost:{port}{local_only}")
    hooks = f"http://{_local_host(settings.webhook_host)}:{settings.webhook_port}"
    lines.append(f"  Web hooks:  {hooks} (audio files and Twilio status callbacks)")
    workers = sum(1 for role in roles if role.startswith("worker"))
    if workers:
        lines.append(f"  Workers:    {workers} process{'es' if workers > 1 else ''} "
                     f"(campaigns running at once)")  # fmt: skip
    lines.append(f"  Database:   {_masked(settings.sqlalchemy_url)}")
    redis = "embedded Valkey" if settings.uses_embedded_redis else _masked(settings.redis_url)
    lines.append(f"  Redis:      {redis}")
    if settings.public_base_url:
        lines.append(f"  Public URL: {settings.public_base_url} (must reach {hooks})")
    else:
        lines.append(
            "PUBLIC_BASE_URL is not set: campaigns cannot be launched until it is. Set it to "
            f"the internet address (https) that forwards to {hooks}, through a reverse proxy "
            "or a tunnel; see README."
        )
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines) + "\n"


def _masked(url: str | None) -> str:
    """A URL without its password, for printing."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_settings(settings: Settings) -> None:
    """Fail early on settings the children would each fail on (raises SettingsError)."""
    if not 0 < settings.webhook_port < 65536:
        raise SettingsError(
            f"WEBHOOK_PORT {settings.webhook_port} is not a port number (1-65535)",
            field="WEBHOOK_PORT",
        )
