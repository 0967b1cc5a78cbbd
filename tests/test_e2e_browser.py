"""End to end in a real browser: Debian's Chromium (Playwright) against the real product
(`python -m bulkcall_core serve`: dashboard, worker, web hooks), the real Redis and the fake
Twilio. Screenshots of every page go to tests/artifacts/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bulkcall_core import audio, scheduling
from bulkcall_core.campaigns import create_campaign
from bulkcall_core.models import Campaign, Channel
from bulkcall_core.settings import load_settings
from tests.e2e.app_env import app_env  # noqa: F401 (fixture)
from tests.e2e.stack import (
    CHROMIUM,
    Product,
    chromium_page,
    screenshot,
    tiny_wav,
    wait_for_streamlit,
)
from tests.factories import make_plan
from tests.fake_twilio import Account, FakeTwilio

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
    pytest.mark.skipif(
        shutil.which("node") is None and False, reason="playwright's bundled driver is used"
    ),
    # One database is enough for a browser test: the embedded default, SQLite.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

FROM_NUMBER = "+14155550100"
RECIPIENTS = [
    ("Alice Martin", "(415) 555-0101"),
    ("Bob Stone", "415.555.0102"),
    ("Carol =HYPERLINK()", "+1 415 555 0103"),
    ("Dan Bad", "12"),
]
# How long a campaign of a few calls may take against the fake (seconds).
CAMPAIGN_TIMEOUT_MS = 120_000


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(speed=0.2) as fake:
        yield fake


@pytest.fixture
def product(app_env: dict[str, str], fake: FakeTwilio, tmp_path: Path) -> Iterator[Product]:  # noqa: F811
    env = {**app_env, "TWILIO_API_BASE_URL": fake.base_url}
    running = Product(env, tmp_path / "serve.log").start()
    yield running
    running.stop()


@pytest.fixture
def page(product: Product, tmp_path: Path) -> Iterator[Any]:
    with chromium_page(tmp_path / "chromium-profile") as page:
        page.goto(product.url)
        wait_for_streamlit(page)
        yield page


def go_to(page: Any, title: str) -> None:
    page.get_by_role("link", name=title).first.click()
    page.get_by_role("heading", name=title).first.wait_for()
    wait_for_streamlit(page)


def add_channel_in_the_browser(page: Any, account: Account) -> None:
    go_to(page, "Channels")
    form = page.locator('[data-testid="stForm"]')
    form.get_by_label("Name").fill("Sales US")
    form.get_by_label("Account SID").fill(account.sid)
    form.get_by_label("Auth token").fill(account.token)
    form.get_by_label("From number").fill(FROM_NUMBER)
    form.get_by_role("button", name="Verify with Twilio and add").click()
    page.get_by_text("Channel “Sales US” added").wait_for()
    wait_for_streamlit(page)


def test_channel_added_in_the_browser_and_token_never_shown(
    page: Any, fake: FakeTwilio, session: Session
) -> None:
    """Channels: add a channel against the fake Twilio; the page never shows the token."""
    account = fake.add_account(numbers=(FROM_NUMBER,))
    screenshot(page, "01-bulk-calling-empty")

    add_channel_in_the_browser(page, account)

    screenshot(page, "02-channels-added")
    assert account.token not in page.content()
    assert page.get_by_text("••••" + account.token[-4:]).count() >= 1
    assert session.exec(select(Channel)).one().from_number == FROM_NUMBER


def launch_campaign(session: Session, product: Product, phones: list[str], names: list[str]) -> int:
    """A campaign on the channel added in the browser, due now, handed to the workers."""
    settings = load_settings(
        public_base_url=product.env["PUBLIC_BASE_URL"], webhook_port=product.webhook_port
    )
    channel = session.exec(select(Channel)).one()
    recording = audio.store_recording(
        session=session, settings=settings, data=tiny_wav(), filename="hello.wav"
    )
    campaign = create_campaign(
        session=session,
        plan=make_plan(phones, names=names),
        name="Browser campaign",
        channel_id=channel.id,
        recording_id=recording.id,
        scheduled_at=None,
        created_by="e2e",
        source="e2e.csv",
    )
    session.commit()
    scheduling.submit(campaign.id, session=session, settings=settings)
    return campaign.id


def test_history_watches_a_campaign_complete_live(
    page: Any, fake: FakeTwilio, product: Product, session: Session
) -> None:
    """History refreshes by itself while the worker calls, until the campaign completes; the
    call list, charts and downloads are there."""
    account = fake.add_account(numbers=(FROM_NUMBER,))
    add_channel_in_the_browser(page, account)
    phones = ["+14155550101", "+14155550102", "+14155550103"]
    campaign_id = launch_campaign(session, product, phones, ["Alice", "Bob", "=Carol"])

    go_to(page, "History")
    screenshot(page, "03-history-running")
    # No reload and no click from here on: only the fragment timer can show the change.
    page.get_by_text("3 of 3 calls finished").wait_for(timeout=CAMPAIGN_TIMEOUT_MS)
    page.locator("strong", has_text="Completed").wait_for(timeout=CAMPAIGN_TIMEOUT_MS)
    wait_for_streamlit(page)
    screenshot(page, "04-history-completed")

    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    assert campaign.status == "completed", product.log_tail()
    assert {c.to for c in fake.calls} == set(phones)

    page.get_by_role("tab", name="Charts").click()
    wait_for_streamlit(page)
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    screenshot(page, "05-history-charts")

    page.get_by_role("tab", name="Calls").click()
    wait_for_streamlit(page)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert "'=Carol" in text and "+14155550103" in text
