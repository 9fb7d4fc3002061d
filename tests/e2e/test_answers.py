"""A simple question in Chat gets an answer from the default (base) model, not the prompt repeated."""

from __future__ import annotations

from e2e_ui import SLOW_MS, last_answer, open_app, send_chat, shoot, wait_answer_done
from playwright.sync_api import expect

from bench.quality_grading import is_parroted
from webui.chat_tab import DEFAULT_SYSTEM_PROMPT

QUESTION = "What is the capital of France?"


def test_chat_answers_a_simple_question(live_app, new_page):
    page = new_page("en-US")
    open_app(page, live_app.url)
    send_chat(page, QUESTION)
    answer = last_answer(page)
    expect(answer).to_be_visible(timeout=SLOW_MS)
    stats = wait_answer_done(answer)
    said = answer.inner_text().replace(stats, "").strip()
    assert "Paris" in said and len(said) < 200, said  # the answer, and then it stopped
    assert not is_parroted(said, DEFAULT_SYSTEM_PROMPT, QUESTION), said
    shoot(page, "chat-answer")
