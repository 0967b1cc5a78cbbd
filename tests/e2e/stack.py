"""The real product for browser tests: `python -m bulkcall_core serve` (dashboard, worker, web
hooks) as a child process, Debian's Chromium driven by Playwright, and small helpers.

Playwright never downloads a browser here: it launches /usr/bin/chromium with a fresh
profile directory. Screenshots go to tests/artifacts/ (gitignored), to be looked at.
"""

from __future__ import annotations

import io
import math
import os
import signal
import struct
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Starting Streamlit, a worker and the web hooks on a busy 2-core machine takes a while.
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 20.0


def tiny_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A valid mono 16-bit PCM WAV of a 440 Hz tone: what a phone line plays."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames)
    return out.getvalue()


class Product:
    """`python -m bulkcall_core serve` on free ports, bound to 127.0.0.1."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.webhook_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **env,
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(self.webhook_port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.webhook_port}",
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Product:
        log = self.log_path.open("wb")
        command = [sys.executable, "-m", "bulkcall_core", "serve", "--port", str(self.port)]
        command += ["--address", "127.0.0.1"]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited {self.process.returncode}:\n{self.log_tail()}")
            if _answers(f"{self.url}/_stcore/health") and "http://" in self.log_text():
                return self
            time.sleep(0.5)
        raise RuntimeError(f"serve did not start in time:\n{self.log_tail()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def chromium_page(profile_dir: Path) -> Iterator[Any]:
    """A Playwright page in Debian's Chromium with a fresh profile, 1400x1000."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
            timezone_id="America/New_York",
            locale="en-US",
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page (Streamlit scrolls inside its main area, so the window is made as
    tall as the content first) as tests/artifacts/NAME.png and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => (document.querySelector('[data-testid=\"stMain\"]') || document.body).scrollHeight"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    try:
        time.sleep(0.5)  # charts re-layout to the new height
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    return path


def wait_for_streamlit(page: Any) -> None:
    """Wait until Streamlit has finished running the script (no "Running..." indicator)."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            return app && app.getAttribute('data-test-script-state') !== 'running';
        }""",
        timeout=60_000,
    )
    time.sleep(0.3)  # let the last deltas paint
