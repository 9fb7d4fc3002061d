"""Presets in a real browser: one made in Settings is chosen in Chat (system prompt and temperature
set, the answer saved with that prompt); a built-in one (Concise) sets its own; Default goes back."""

from __future__ import annotations

import httpx
from e2e_ui import SLOW_MS, open_app, send_chat, tab, wait_answer_done
from playwright.sync_api import Page, expect

PROMPT = "You are a pirate. Answer every question like a pirate, in one sentence."


def choose(page: Page, picker: str, label: str) -> None:
    page.locator(f"#{picker} input").click()
    page.locator(f"#{picker}").get_by_role("option").or_(page.locator("ul.options li")).filter(
        has_text=label).first.click()
    expect(page.locator(f"#{picker} input")).to_have_value(label)


def test_a_preset_made_in_settings_is_chosen_in_chat(live_app, new_page):
    page = new_page("en-US")
    open_app(page, live_app.url)
    tab(page, "settings").click()
    page.locator("#settings-presets").get_by_text("Presets", exact=True).first.click()
    page.locator("#settings-preset-name input").fill("Pirate")
    page.locator("#settings-preset-prompt textarea").fill(PROMPT)
    page.locator("#settings-preset-temperature input").fill("0.3")
    page.locator("#settings-preset-max_new_tokens input").fill("48")
    page.locator("#settings-preset-save").click()
    expect(page.locator("#settings-preset-note")).to_contain_text("Saved “Pirate”.", timeout=SLOW_MS)

    tab(page, "chat").click()
    choose(page, "chat-preset", "Pirate")  # the list is read again when it is opened
    page.get_by_text("Parameters", exact=True).first.click()
    prompt = page.locator("#chat-system-prompt textarea")
    expect(prompt).to_have_value(PROMPT)
    expect(page.locator("input[aria-label='number input for Temperature (0 = greedy)']")).to_have_value("0.3")
    expect(page.locator("input[aria-label='number input for Max new tokens']")).to_have_value("48")
    send_chat(page, "Where is the treasure?")
    wait_answer_done(page.locator("#chatbot [data-testid=bot]").first)
    [saved] = [s for s in httpx.get(f"{live_app.url}/api/sessions").json()["sessions"]
               if s["title"] == "Where is the treasure?"]
    assert httpx.get(f"{live_app.url}/api/sessions/{saved['id']}").json()["system_prompt"] == PROMPT

    choose(page, "chat-preset", "Concise · 简洁")
    expect(page.locator("input[aria-label='number input for Max new tokens']")).to_have_value("256")
    assert "at most three sentences" in prompt.input_value()
    choose(page, "chat-preset", "Default")
    expect(page.locator("input[aria-label='number input for Max new tokens']")).to_have_value("512")
    assert "Qwen" in prompt.input_value()  # the default model's own system text again
