"""The Code tab in a real browser: a Python task gives highlighted code and a syntax-check badge."""

from __future__ import annotations

import re

from e2e_ui import open_app, shoot, tab
from playwright.sync_api import expect

# Generate mode stops as soon as the answer holds a closed code block (tens of tokens here), but
# a base model may ramble first: allow for its full token budget on a slow CPU.
CODE_TIMEOUT_MS = 300_000


def test_python_task_shows_highlighted_code_and_check_badge(live_app, new_page):
    page = new_page("en-US")
    open_app(page, live_app.url)
    tab(page, "code").click()
    expect(page.locator("#code-run")).to_be_visible()
    page.get_by_label("Task", exact=True).fill("Write a Python function add(a, b) that returns the sum of a and b.")
    page.locator("#code-run").click()

    badge = page.locator("#code-check .code-check")
    expect(badge).to_have_class(re.compile(r"code-check-(pass|fail)"), timeout=CODE_TIMEOUT_MS)
    expect(badge.locator("summary")).to_contain_text(re.compile(r"Syntax (OK|error)"))

    result = page.locator("#code-result .cm-content")
    expect(result).to_have_attribute("data-language", "python")
    expect(result).to_contain_text(re.compile(r"\bdef\b|\breturn\b"))
    # Highlighted: the editor wraps tokens such as keywords in styled spans.
    expect(result.locator(".cm-line span").first).to_be_visible()
    assert result.locator(".cm-line span").count() >= 2
    expect(page.locator("#code-download")).to_contain_text(".py")
    expect(page.locator("#code-stats")).to_contain_text("tokens")
    shoot(page, "code", asset="code.png")
