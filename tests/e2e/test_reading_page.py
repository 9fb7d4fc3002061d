"""Reading answers in a real browser: formulas rendered by KaTeX (dollar amounts left alone), code
highlighted with a working copy button, a dark mode that is remembered and follows the system until
chosen, and a Chat/Docs/Code layout that fits a 390-pixel-wide phone.

The answer is a conversation imported over the API, so what is rendered does not depend on what
the model happens to write.
"""

from __future__ import annotations

import httpx
import pytest
from e2e_ui import ACTION_TIMEOUT_MS, SLOW_MS, open_app, shoot, tab
from playwright.sync_api import Page, expect

TITLE = "Reading check: formulas and code"
ANSWER = (
    "The energy of a mass at rest:\n\n$$E = mc^2$$\n\n"
    "For a right triangle $a^2 + b^2 = c^2$, and the roots are \\(x = \\frac{-b}{2a}\\) when "
    "\\[\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}\\]\n\n"
    "The book costs $5 and the course $10.\n\n"
    "```python\ndef add(a, b):\n    return a + b\n```"
)
PHONE = {"width": 390, "height": 844}
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture(scope="module")
def conversation(live_app) -> str:
    imported = httpx.post(f"{live_app.url}/api/sessions/import", timeout=30, json={
        "title": TITLE, "messages": [{"role": "user", "content": "Show me a formula and some code."},
                                     {"role": "assistant", "content": ANSWER}]})
    assert imported.status_code == 201, imported.text
    return TITLE


def open_conversation(page: Page, url: str, title: str):
    open_app(page, url)
    page.locator("#session-list label", has_text=title).click()
    answer = page.locator("#chatbot [data-testid=bot]").first
    expect(answer).to_contain_text("costs", timeout=SLOW_MS)
    return answer


def context(browser, live_app, **options):
    made = browser.new_context(locale="en-US", **{"viewport": {"width": 1400, "height": 1000}, **options})
    made.set_default_timeout(ACTION_TIMEOUT_MS)
    return made


def test_formulas_render_dollar_amounts_stay_text_and_code_copies(browser, live_app, conversation):
    browser_context = context(browser, live_app, color_scheme="light")
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_app.url)
    page = browser_context.new_page()
    try:
        answer = open_conversation(page, live_app.url, conversation)
        # $$…$$, $…$, \(…\) and \[…\]: four formulas, two of them on their own line.
        expect(answer.locator(".katex")).to_have_count(4)
        expect(answer.locator(".katex-display")).to_have_count(2)
        expect(answer.locator(".katex annotation")).to_contain_text(["E = mc^2", "a^2 + b^2 = c^2"])
        expect(answer).to_contain_text("The book costs $5 and the course $10.")
        # The code block: highlighted tokens, and a copy button that copies the code.
        code = answer.locator("pre code.language-python")
        expect(code.locator(".token.keyword").first).to_have_text("def")
        answer.locator(".copy_code_button").click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.strip() == "def add(a, b):\n    return a + b", copied
        shoot(page, "reading-formulas", asset="reading.png")
    finally:
        browser_context.close()


def dark(page: Page) -> bool:
    return page.evaluate("document.body.classList.contains('dark')")


def test_dark_mode_follows_the_system_until_chosen_and_is_remembered(browser, live_app, conversation):
    light_system = context(browser, live_app, color_scheme="light")
    page = light_system.new_page()
    try:
        open_app(page, live_app.url)
        switch = page.locator("#theme-switch input")
        expect(switch).not_to_be_checked()
        assert not dark(page)
        switch.check()
        page.wait_for_function("() => document.body.classList.contains('dark')")
        open_app(page, live_app.url)  # a fresh visit, without the ?__theme= the switch added
        expect(switch).to_be_checked()
        assert dark(page), "the choice was forgotten on reload"
        open_conversation(page, live_app.url, conversation)
        shoot(page, "reading-dark", asset="dark.png")
    finally:
        light_system.close()

    dark_system = context(browser, live_app, color_scheme="dark")
    page = dark_system.new_page()
    try:
        open_app(page, live_app.url)
        switch = page.locator("#theme-switch input")
        expect(switch).to_be_checked()  # never chosen here: the system's preference
        assert dark(page)
        switch.uncheck()
        page.wait_for_function("() => !document.body.classList.contains('dark')")
        open_app(page, live_app.url)
        expect(switch).not_to_be_checked()
        assert not dark(page), "light was chosen: the system's dark must not win"
    finally:
        dark_system.close()


def fits_the_phone(page: Page, *selectors: str) -> None:
    assert page.evaluate(NO_SIDEWAYS_SCROLL), page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    for selector in selectors:
        element = page.locator(selector).first
        element.scroll_into_view_if_needed()
        expect(element).to_be_in_viewport()
        box = element.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)


def phone_tab(page: Page, tab_id: str, label: str) -> None:
    """Open a tab on a narrow screen, where Gradio moves the tabs that do not fit into "More tabs"."""
    button = tab(page, tab_id)
    if not button.is_visible():
        page.locator("button[aria-label='More tabs']").click()
        button = page.locator(".overflow-dropdown button", has_text=label)
    button.click()


def test_chat_docs_and_code_fit_a_390_pixel_phone(browser, live_app, conversation):
    phone = context(browser, live_app, viewport=PHONE, is_mobile=True, has_touch=True, color_scheme="light")
    page = phone.new_page()
    try:
        answer = open_conversation(page, live_app.url, conversation)
        expect(answer.locator(".katex")).to_have_count(4)
        fits_the_phone(page, "#chat-input textarea", "#chat-send", "#chat-stop", "#session-new", "#chatbot")
        box = page.locator("#chat-input textarea")
        box.fill("Typed on a phone")
        expect(box).to_have_value("Typed on a phone")
        page.evaluate("window.scrollTo(0, 0)")
        shoot(page, "reading-phone", asset="phone.png")
        page.locator("#theme-switch input").check()
        page.wait_for_function("() => document.body.classList.contains('dark')")
        shoot(page, "reading-phone-dark")

        phone_tab(page, "docs", "Document Q&A")
        fits_the_phone(page, "#docs-question textarea", "#docs-ask")
        shoot(page, "reading-phone-docs")
        phone_tab(page, "code", "Code")
        fits_the_phone(page, "#code-run", "#code-input")
        shoot(page, "reading-phone-code")
    finally:
        phone.close()
