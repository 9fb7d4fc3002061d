"""Browser fixtures: one headless Debian chromium per test session, driven by Playwright.

Playwright's own browser download is not reachable here, so the tests drive ``/usr/bin/chromium``
(``make test`` installs it) and are skipped, with that reason, only when it is absent.

Every test gets pages from ``new_page(locale)``; a failing test leaves a screenshot of each of its
pages in ``tests/e2e/screenshots/FAILED-<test>-<n>.png`` (gitignored). Selectors and actions live in
``e2e_ui``.
"""

from __future__ import annotations

import re

import pytest
from e2e_ui import ACTION_TIMEOUT_MS, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, VIEWPORT


@pytest.fixture(scope="session", autouse=True)
def _needs_chromium():  # session scope: runs before live_app, so a skip costs no app start
    if not CHROMIUM.is_file():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (make browser / apt-get install chromium)")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, request):
    """``new_page(locale="en-US")`` -> a page in a fresh context (own cookies and localStorage)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    contexts, pages = [], []

    def make(locale: str = "en-US", context=None):
        if context is None:
            context = browser.new_context(locale=locale, viewport=VIEWPORT)
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", request.node.name)
        for n, page in enumerate(pages):
            try:
                page.screenshot(path=str(SCREENSHOTS / f"FAILED-{stem}-{n}.png"), full_page=True)
            except Exception as exc:  # a closed page must not hide the test's own failure
                print(f"no failure screenshot of page {n}: {exc}")
    for context in contexts:
        context.close()
