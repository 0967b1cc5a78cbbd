"""`python -m bulkcall_core serve` as a real process: starts everything, stops everything."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from bulkcall_core import launcher
from bulkcall_core.settings import PROJECT_ROOT
from tests.ports import free_port

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process tree read from /proc (Linux)"
)
# Hang guards only (no timing is asserted): start-up on a busy machine, and stopping.
START_WAIT_SECONDS = 90.0
EXIT_WAIT_SECONDS = 40.0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A short path: the embedded Valkey's unix socket must fit in 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="bc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def launch(data_dir: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], int]]]:
    """Start `serve` with the given flags on free ports, embedded SQLite and Valkey."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*flags: str, webhook_port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.pop("PUBLIC_BASE_URL", None)
        env.update(
            DATA_DIR=str(data_dir / "data"),
            WEBHOOK_PORT=str(webhook_port or free_port()),
            BULKCALL_SECRET_KEY=Fernet.generate_key().decode(),
            BULKCALL_SECRETS_TOML=str(data_dir / "no-secrets.toml"),
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkcall_core", "serve", *flags],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=(data_dir / "stdout.txt").open("wb"),
            stderr=(data_dir / "stderr.txt").open("wb"),
            start_new_session=True,  # a group of its own, like a command run in a terminal
        )
        started.append(process)
        return process, int(env["WEBHOOK_PORT"])

    yield start
    for process in started:  # a failed test must not leave a launcher running
        if process.poll() is None:
            process.kill()
            process.wait()


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, grandchildren...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pids: set[int]) -> set[int]:
    """The pids still running (zombies waiting to be reaped count as gone)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"}


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def wait_running(data_dir: Path) -> None:
    """Wait for the launcher's banner; fail with the end of its messages if it never comes."""
    printed = data_dir / "stdout.txt"
    started = wait_until(lambda: "Press Ctrl-C" in printed.read_text(), START_WAIT_SECONDS)
    assert started, (data_dir / "stderr.txt").read_text()[-3000:]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
def test_serve_starts_everything_and_sigterm_stops_it_all(launch, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    dashboard_port = free_port()
    process, hooks_port = launch("--port", str(dashboard_port))
    wait_running(data_dir)
    assert answers(f"http://127.0.0.1:{hooks_port}/healthz")
    assert answers(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
    children = descendants(process.pid)
    commands = " ".join(command_of(pid) for pid in children)
    assert "webhooks" in commands and "worker.py" in commands and "streamlit" in commands
    assert "valkey-server" in commands
    assert "--server.address 127.0.0.1" in commands  # no login configured: this machine only
    workers = [pid for pid in children if _stat(pid)[1] == process.pid  # type: ignore[index]
               and "worker.py" in command_of(pid)]  # fmt: skip
    assert len(workers) == launcher.DEFAULT_WORKERS

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=EXIT_WAIT_SECONDS) == 0
    assert wait_until(lambda: not alive(children), 10), [command_of(p) for p in alive(children)]
    output = (data_dir / "stdout.txt").read_text()
    assert f"Dashboard:  http://localhost:{dashboard_port}" in output
    assert "PUBLIC_BASE_URL is not set: campaigns cannot be launched" in output
    assert f"Workers:    {launcher.DEFAULT_WORKERS} processes" in output


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_everything_without_a_traceback(launch, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A terminal sends SIGINT to the whole foreground group, not only to the launcher."""
    process, _ = launch("--no-dashboard")
    wait_running(data_dir)
    children = descendants(process.pid)
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=EXIT_WAIT_SECONDS) == 0
    assert wait_until(lambda: not alive(children), 10), [command_of(p) for p in alive(children)]
    assert "Traceback" not in (data_dir / "stderr.txt").read_text()


@pytest.mark.slow
def test_a_child_that_dies_stops_the_others_and_exits_2(launch, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    process, hooks_port = launch("--no-dashboard")
    wait_running(data_dir)
    children = descendants(process.pid)
    hooks = next(pid for pid in children if "webhooks" in command_of(pid))
    os.kill(hooks, signal.SIGKILL)
    assert process.wait(timeout=EXIT_WAIT_SECONDS) == 2
    assert wait_until(lambda: not alive(children), 10), [command_of(p) for p in alive(children)]
    errors = (data_dir / "stderr.txt").read_text()
    assert "error: The web hooks server stopped unexpectedly (killed by signal 9)" in errors
    assert "Traceback" not in errors


def test_a_port_in_use_fails_in_one_line_with_exit_2(launch, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process, _ = launch("--no-worker", "--no-dashboard", webhook_port=taken.getsockname()[1])
        assert process.wait(timeout=EXIT_WAIT_SECONDS) == 2
    errors = (data_dir / "stderr.txt").read_text().strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: Port ")
    assert "WEBHOOK_PORT" in errors[0]


def test_a_worker_count_out_of_range_fails_in_one_line_with_exit_2(launch, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    process, _ = launch("--workers", "-1", "--no-dashboard")
    assert process.wait(timeout=EXIT_WAIT_SECONDS) == 2
    errors = (data_dir / "stderr.txt").read_text().strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: --workers -1: give 0 to ")


def test_an_open_dashboard_listens_on_localhost_only(settings_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With no password and no OIDC login, nobody on another machine reaches the dashboard."""
    monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
    monkeypatch.setenv("BULKCALL_SECRETS_TOML", "/nonexistent/secrets.toml")
    assert launcher.dashboard_address(settings_factory(), None) == "127.0.0.1"
    assert launcher.dashboard_address(settings_factory(dashboard_password="pw"), None) is None
    assert launcher.dashboard_address(settings_factory(), "0.0.0.0") == "0.0.0.0"


def test_the_banner_says_what_to_set_without_public_base_url(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(public_base_url=None, webhook_port=8602)
    children = [launcher.Child("dashboard", ["x"]), launcher.Child("worker", ["y"])]
    banner = launcher.startup_banner(settings, port=8601, children=children)
    assert "Dashboard:  http://localhost:8601" in banner
    assert "campaigns cannot be launched until it is" in banner
    assert "forwards to http://127.0.0.1:8602" in banner


def test_the_banner_never_prints_a_database_password(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(
        database_url="postgresql://bulk:s3cret@db.example.com/bulk",
        redis_url="redis://:hunter2@cache.example.com:6379/0",
        public_base_url="https://calls.example.com",
    )
    banner = launcher.startup_banner(settings, port=8501, children=[])
    assert "s3cret" not in banner and "hunter2" not in banner
    assert "bulk:***@db.example.com" in banner
    assert "Public URL: https://calls.example.com" in banner


def one_line_failure(env: dict[str, str]) -> tuple[list[str], str]:
    """Run `serve` (web hooks only) expecting exit status 2 and one line on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "bulkcall_core", "serve", "--no-worker", "--no-dashboard"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=EXIT_WAIT_SECONDS,
    )  # fmt: skip
    errors = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    return errors, done.stderr


def test_an_unreachable_database_fails_in_one_line_with_exit_2(data_dir: Path) -> None:
    port = free_port()  # nothing listens there
    env = {**os.environ, "DATABASE_URL": f"postgresql://bulk:s3cret@127.0.0.1:{port}/bulk"}
    env["BULKCALL_SECRETS_TOML"] = str(data_dir / "no-secrets.toml")
    env["WEBHOOK_PORT"] = str(free_port())
    errors, stderr = one_line_failure(env)
    assert errors[0].startswith("error: The database postgresql+psycopg://bulk:***@127.0.0.1")
    assert "s3cret" not in stderr


def test_an_unreachable_redis_url_fails_in_one_line_with_exit_2(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/3",
        DATA_DIR=str(data_dir / "data"),
        WEBHOOK_PORT=str(free_port()),
        BULKCALL_SECRETS_TOML=str(data_dir / "no-secrets.toml"),
    )
    errors, stderr = one_line_failure(env)
    assert errors[0].startswith("error: REDIS_URL redis://127.0.0.1:")
