"""The Docs tab's folder-sync badge in a real browser: a collection that follows a folder says so, with
when it was synced, how many files, and which file failed and why; one that follows nothing shows no badge."""

from __future__ import annotations

import time

import httpx
from e2e_ui import open_app, tab
from playwright.sync_api import expect


def choose(page, picker: str, value: str) -> None:
    page.locator(f"#{picker} input").click()
    page.locator(f"#{picker}").get_by_role("option").or_(page.locator("ul.options li")).filter(
        has_text=value).first.click()
    expect(page.locator(f"#{picker} input")).to_have_value(value)


def test_a_followed_folder_shows_a_sync_badge(launch_app, new_page, tmp_path):
    folder = tmp_path / "srv" / "manuals"
    folder.mkdir(parents=True)
    (folder / "pump.md").write_text("# Pump\n\nThe X200 pump's intake filter is replaced every 6 months.\n")
    (folder / "kettle.txt").write_text("Descale the Model K kettle once a month.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    app = launch_app("--sync-root", str(tmp_path / "srv"))
    job = httpx.put(f"{app.url}/api/collections/manuals/source", json={"folder": str(folder)},
                    timeout=60).json()["pass"]["job"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{app.url}/api/jobs/{job}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.5)

    page = new_page("en-US")
    open_app(page, app.url)
    tab(page, "docs").click()
    badge = page.locator("#docs-sync-badge")
    expect(badge).to_be_hidden()  # default follows nothing
    choose(page, "docs-collection", "manuals")
    expect(badge).to_contain_text(f"synced from {folder.resolve()}")
    expect(badge).to_contain_text("just now")
    expect(badge).to_contain_text("3 files")
    expect(badge).to_contain_text("1 failed")
    badge.get_by_text("1 failed").click()  # the failures unfold with their reasons
    expect(badge).to_contain_text("broken.pdf")
    expect(badge.locator("li")).to_contain_text("damaged")
    expect(page.locator("#docs-table")).to_contain_text("pump.md")
    choose(page, "docs-collection", "default")
    expect(badge).to_be_hidden()
