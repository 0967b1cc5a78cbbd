"""End to end in a real browser: Debian's Chromium (Playwright) against the real product
(`python -m bulkcall_core serve`: dashboard, worker, web hooks), the real Redis and the fake
Twilio. Screenshots of every page go to tests/artifacts/.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image
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
    go_to(page, "Contacts")
    screenshot(page, "02b-contacts")
    go_to(page, "Channels")
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

    page.get_by_text("Can Twilio fetch the recording?").click()
    page.get_by_role("button", name="Check the recording's address").click()
    page.get_by_text("serves audio/").wait_for()  # fetched from the real web hooks server

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
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download Excel").click()
    workbook = Path(download_info.value.path()).read_bytes()
    sheet = load_workbook(io.BytesIO(workbook), read_only=True)["Calls"]
    names = [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(names) == ["'=Carol", "Alice", "Bob"]


CONTACTS_CSV = (
    "Client;Cell;Ref\r\n"
    "Alice Martin;(415) 555-0101;A-1\r\n"
    "Bob Stone;415.555.0102;B-2\r\n"
    "=Carol HYPERLINK;+1 415 555 0103;C-3\r\n"
    "Dan Bad;12;D-4\r\n"
)


def upload(page: Any, label: str, path: Path) -> None:
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    uploader.locator('input[type="file"]').set_input_files(str(path))
    page.get_by_text(path.name).first.wait_for()
    wait_for_streamlit(page)


def select_value(page: Any, label: str) -> str:
    """The value a Streamlit selectbox shows."""
    return page.get_by_role("combobox", name=label).input_value()


def column_centers(grid: Any) -> list[float]:
    """x offsets (in the grid) of the middle of each column, from the header's separator
    lines: the preview is a canvas whose column widths follow their content."""
    image = Image.open(io.BytesIO(grid.screenshot())).convert("L")
    width = image.size[0]
    rows = range(6, 30, 3)  # inside the header band, above and below the label text

    def separator(x: int) -> bool:
        return all(
            abs(image.getpixel((x, y)) - image.getpixel((x - 1, y))) > 6
            and abs(image.getpixel((x, y)) - image.getpixel((x + 1, y))) > 6
            for y in rows
        )

    edges = [0, *(x for x in range(1, width - 1) if separator(x)), width]
    return [(left + right) / 2 for left, right in itertools.pairwise(edges)]


def click_column(page: Any, target: str, header: str, field_label: str) -> None:
    """Click the preview's columns, left to right, until `header` is the `target` column,
    after clearing what the page suggested (so the click is what sets it)."""
    if select_value(page, field_label):
        box = page.locator('[data-testid="stSelectbox"]').filter(has_text=field_label).first
        box.get_by_role("button", name="Clear value").click()
        wait_for_streamlit(page)
        assert select_value(page, field_label) == ""
    page.get_by_role("radiogroup").filter(has_text=target).get_by_text(target).click()
    wait_for_streamlit(page)
    grid = page.locator('[data-testid="stDataFrame"]').first
    centers = column_centers(grid)
    for center in centers[1:]:  # the first column is the row number
        box = grid.bounding_box()
        page.mouse.click(box["x"] + center, box["y"] + 17)
        time.sleep(0.7)  # the rerun starts a moment after the click
        wait_for_streamlit(page)
        if select_value(page, field_label) == header:
            return
    raise AssertionError(f"clicking the {len(centers)} columns never set {header}")


def test_bulk_calling_to_completed_campaign_in_history(
    page: Any, fake: FakeTwilio, product: Product, session: Session, tmp_path: Path
) -> None:
    """The whole journey: add a channel, fill the Bulk calling form (recording, CSV, columns
    picked by clicking the preview), test call, confirm, and watch History complete."""
    account = fake.add_account(numbers=(FROM_NUMBER,))
    add_channel_in_the_browser(page, account)
    recording = tmp_path / "hello.wav"
    recording.write_bytes(tiny_wav())
    contacts = tmp_path / "customers.csv"
    contacts.write_text(CONTACTS_CSV, encoding="utf-8")

    go_to(page, "Bulk calling")
    page.get_by_label("Name", exact=True).fill("Browser campaign")
    page.get_by_label("Name", exact=True).press("Tab")
    wait_for_streamlit(page)
    upload(page, "Audio file", recording)
    upload(page, "Contact file", contacts)
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    click_column(page, "Phone number", "Cell", "Phone number column header")
    click_column(page, "Recipient name", "Client", "Recipient name column header")
    screenshot(page, "06-bulk-calling-filled")

    page.get_by_role("button", name="Next", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    wait_for_streamlit(page)
    dialog.get_by_role("textbox", name="Your phone number").fill("+14155550199")
    dialog.get_by_role("textbox", name="Your phone number").press("Tab")
    wait_for_streamlit(page)
    dialog.get_by_role("button", name="Test call").click()
    dialog.get_by_text("Calling +14155550199").wait_for()
    screenshot(page, "07-bulk-calling-confirm")
    assert [c.to for c in fake.calls] == ["+14155550199"]

    dialog.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="History").first.wait_for()
    page.get_by_text("3 of 3 calls finished").wait_for(timeout=CAMPAIGN_TIMEOUT_MS)
    wait_for_streamlit(page)
    screenshot(page, "08-history-after-bulk-calling")

    campaign = session.exec(select(Campaign)).one()
    assert (campaign.name, campaign.to_call, campaign.invalid) == ("Browser campaign", 3, 1)
    called = sorted(c.to for c in fake.calls if c.to != "+14155550199")
    assert called == ["+14155550101", "+14155550102", "+14155550103"]
    page.get_by_role("tab", name="Rejected rows").click()
    wait_for_streamlit(page)
    screenshot(page, "09-history-rejected-rows")


@pytest.fixture
def password_page(
    app_env: dict[str, str],  # noqa: F811
    fake: FakeTwilio,
    tmp_path: Path,
) -> Iterator[Any]:
    env = {**app_env, "TWILIO_API_BASE_URL": fake.base_url, "DASHBOARD_PASSWORD": "open sesame"}
    running = Product(env, tmp_path / "serve.log").start()
    try:
        with chromium_page(tmp_path / "chromium-profile") as page:
            yield page, running
    finally:
        running.stop()


def test_password_gate_in_the_browser(password_page: tuple[Any, Product]) -> None:
    """With DASHBOARD_PASSWORD, even a page's own address shows only the sign-in form; a
    wrong password is refused, the right one opens the page, Sign out closes it again."""
    page, product = password_page
    page.goto(f"{product.url}/history")
    wait_for_streamlit(page)
    password = page.get_by_role("textbox", name="Dashboard password")
    password.wait_for()
    assert page.get_by_role("heading", name="History").count() == 0
    screenshot(page, "10-password-sign-in")

    page.get_by_role("textbox", name="Your name").fill("Ann Lee")
    password.fill("guess")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong password").wait_for()
    assert page.get_by_role("textbox", name="Your name").input_value() == "Ann Lee"

    page.get_by_role("textbox", name="Dashboard password").fill("open sesame")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="History").first.wait_for()
    wait_for_streamlit(page)
    page.get_by_text("Signed in as").wait_for()
    screenshot(page, "11-password-signed-in")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("textbox", name="Dashboard password").wait_for()
