"""HTML in user data renders as text and runs nothing: an imported conversation and a document name.

A session imported over the API carries ``<img src=x onerror=...>`` and ``<script>`` in its
title and messages; a document uploaded over the API is named with HTML. Each payload would
set ``window.__xss`` (or call ``alert``, which is hooked to do the same) if it ever became
markup; the test opens them in the UI and asserts the flag stays unset, no such element exists,
and the characters are visible literally.
"""

from __future__ import annotations

import httpx
from e2e_ui import SLOW_MS, open_app, shoot, tab
from playwright.sync_api import expect

IMG = "<img src=x onerror=\"window.__xss='message'\">"
SCRIPT = "<script>window.__xss='script'</script>"
ANSWER_IMG = "<img src=y onerror=alert('answer')>"
TITLE = "XSS check <b onmouseover=alert(1)>bold</b>"
DOC_NAME = "<img src=z onerror=window.__xss=1>.txt"
HOOK = "window.__xss = undefined; window.alert = (m) => { window.__xss = 'alert:' + m; };"


def no_script_ran(page) -> None:
    assert page.evaluate("window.__xss") is None, page.evaluate("window.__xss")
    assert page.locator("img[src=x], img[src=y], img[src=z], b[onmouseover]").count() == 0


def test_html_in_sessions_and_document_names_is_shown_as_text(live_app, new_page):
    imported = httpx.post(f"{live_app.url}/api/sessions/import", timeout=30, json={
        "title": TITLE, "messages": [{"role": "user", "content": f"Look: {IMG} and {SCRIPT}"},
                                     {"role": "assistant", "content": f"Here it is: {ANSWER_IMG}"}]})
    assert imported.status_code == 201, imported.text

    page = new_page("en-US")
    page.add_init_script(HOOK)
    open_app(page, live_app.url)
    entry = page.locator("#session-list label", has_text="XSS check")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(TITLE)  # the title's tag is text in the sidebar
    entry.click()
    chat = page.locator("#chatbot")
    user = chat.locator("[data-testid=user]")
    expect(user).to_have_count(1, timeout=SLOW_MS)
    expect(user).to_contain_text(IMG)
    expect(user).to_contain_text(SCRIPT)
    expect(chat.locator("[data-testid=bot]")).to_contain_text(ANSWER_IMG)
    page.wait_for_timeout(500)  # a broken image's onerror would have fired by now
    no_script_ran(page)
    shoot(page, "xss-session")

    # Over the API, so the name keeps its HTML (the browser's upload widget would rename the file).
    uploaded = httpx.post(f"{live_app.url}/api/collections/default/documents", timeout=120,
                          files=[("files", (DOC_NAME, b"The harbour office opens at nine on weekdays.", "text/plain"))])
    assert uploaded.status_code == 200 and uploaded.json()["documents"][0]["name"] == DOC_NAME, uploaded.text
    tab(page, "docs").click()  # opening the tab refreshes its table
    expect(page.locator("#docs-table")).to_contain_text(DOC_NAME, timeout=SLOW_MS)
    page.wait_for_timeout(500)
    no_script_ran(page)
    shoot(page, "xss-document")
