"""Selectors and small actions shared by the browser tests (plain functions over a Playwright page).

Selectors are the UI's ``elem_id``s (``#chat-input``, ``#chatbot``, ``#docs-sources``…), Gradio's
own stable attributes (``button[role=tab][data-tab-id=…]``, ``[data-testid=bot]``, a slider's
``number input for <label>``), or visible text where the text itself is what is tested.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "SCREENSHOTS", "VIEWPORT", "ACTION_TIMEOUT_MS", "SLOW_MS", "STATS",
           "shoot", "open_app", "tab", "set_slider", "last_answer", "send_chat", "wait_answer_done",
           "completion_tokens"]

CHROMIUM = Path(os.environ.get("DCU_CHAT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE / "screenshots"
ASSETS = HERE.parent.parent / "assets" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}
# The model decodes a few tokens per second on a busy 2-core CPU: waits are generous, and they
# wait for a condition, never a fixed time.
ACTION_TIMEOUT_MS = 30_000
SLOW_MS = 120_000
# The stats line under a finished answer: "TTFT 0.42 s · 18.3 tok/s · 12+64 tokens · cpu 1.1 GiB".
STATS = re.compile(r"TTFT [\d.]+ s · [\d.]+ tok/s · (\d+)\+(\d+) tokens")


def shoot(page: Page, name: str, asset: str | None = None) -> Path:
    """Save ``screenshots/<name>.png``; with DCU_CHAT_UPDATE_SCREENSHOTS=1 also ``assets/screenshots/<asset>``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the header and tabs in view, as a person first sees the page
    page.screenshot(path=str(path))
    if asset and os.environ.get("DCU_CHAT_UPDATE_SCREENSHOTS") == "1":
        ASSETS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, ASSETS / asset)
    return path


def open_app(page: Page, url: str) -> None:
    """Load the UI and wait until the page-load events ran (the sidebar shows its list or its
    empty note), so they cannot overwrite what the test does next."""
    page.goto(url)
    expect(page.locator("#chat-input textarea")).to_be_visible(timeout=SLOW_MS)
    listed = page.locator("#session-list label").or_(page.locator("#session-empty"))
    expect(listed.first).to_be_visible(timeout=SLOW_MS)


def tab(page: Page, tab_id: str) -> Locator:
    """The top-level tab button (``chat``, ``docs``, ``code``); ``first`` because the Code tab
    currently nests a second tab with the same id inside itself."""
    return page.locator(f"button[role=tab][data-tab-id={tab_id}]").first


def set_slider(page: Page, label: str, value: int, accordion: str | None = None) -> None:
    """Type ``value`` into the number box of the slider labelled ``label`` (opening ``accordion`` first)."""
    box = page.locator(f"input[aria-label='number input for {label}']")
    if accordion and not box.is_visible():
        page.get_by_text(accordion, exact=True).first.click()
    expect(box).to_be_visible()
    # A freshly opened accordion can re-render its sliders once and drop a value typed in the
    # meantime; type again until it sticks (bounded), then assert it.
    for _ in range(3):
        box.fill(str(value))
        box.press("Tab")  # commit on blur, like a person leaving the field
        page.wait_for_timeout(300)
        if box.input_value() == str(value):
            break
    expect(box).to_have_value(str(value))


def last_answer(page: Page, chatbot: str = "#chatbot") -> Locator:
    return page.locator(f"{chatbot} [data-testid=bot]").last


def send_chat(page: Page, message: str) -> None:
    box = page.locator("#chat-input textarea")
    box.fill(message)
    page.locator("#chat-send").click()


def wait_answer_done(answer: Locator, timeout: int = SLOW_MS) -> str:
    """Wait for the stats line under an answer (it is written when the answer ends); returns it."""
    stats = answer.locator("sub")
    expect(stats).to_contain_text(STATS, timeout=timeout)
    return stats.inner_text()


def completion_tokens(stats_line: str) -> int:
    match = STATS.search(stats_line)
    assert match, f"no token counts in {stats_line!r}"
    return int(match.group(2))
