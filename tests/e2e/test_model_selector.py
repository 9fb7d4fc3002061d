"""Two models in the browser: each tab has a model selector; the one chosen in Chat loads (with a
notice) and answers; the System tab lists both."""

from __future__ import annotations

import pytest
from e2e_ui import SLOW_MS, open_app, send_chat, set_slider, shoot, tab, wait_answer_done
from playwright.sync_api import expect


@pytest.fixture(scope="module")
def two_models(launch_app):
    return launch_app("--model", "qwen-cpp=embedded,backend=llamacpp",
                      "--model", "qwen-hf=embedded,backend=transformers,max_batch=2")


def choose(page, picker: str, value: str) -> None:
    page.locator(f"#{picker} input").click()
    page.locator(f"#{picker}").get_by_role("option").or_(page.locator("ul.options li")).filter(
        has_text=value).first.click()
    expect(page.locator(f"#{picker} input")).to_have_value(value)


def test_the_chosen_model_loads_and_answers_and_every_tab_can_choose(two_models, new_page):
    page = new_page("en-US")
    open_app(page, two_models.url)
    expect(page.locator("#chat-model input")).to_have_value("qwen-cpp")  # the default first
    choose(page, "chat-model", "qwen-hf")
    set_slider(page, "Temperature (0 = greedy)", 0, accordion="Parameters")
    send_chat(page, "What is the capital of France?")
    answer = page.locator("#chatbot [data-testid=bot]").nth(0)
    expect(answer).to_contain_text("Loading the model qwen-hf", timeout=SLOW_MS)  # not in memory yet
    stats = wait_answer_done(answer)
    assert "Paris" in answer.inner_text() and "TTFT" in stats
    shoot(page, "chat-two-models")

    choose(page, "chat-model", "qwen-cpp")  # in memory from the start: no notice, an answer
    send_chat(page, "What is the capital of Italy?")
    second = page.locator("#chatbot [data-testid=bot]").nth(1)
    wait_answer_done(second)
    assert "Rome" in second.inner_text()

    for tab_id, picker in (("docs", "docs-model"), ("code", "code-model")):
        tab(page, tab_id).click()
        expect(page.locator(f"#{picker} input")).to_have_value("qwen-cpp")
    tab(page, "system").click()
    panel = page.locator("#system-panel") if page.locator("#system-panel").count() else page.locator("body")
    expect(panel).to_contain_text("qwen-hf: loaded", timeout=SLOW_MS)
    expect(panel).to_contain_text("qwen-cpp (default): loaded")
