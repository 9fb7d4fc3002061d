"""A simple question in Chat gets an answer from the default model, not the prompt repeated."""

from __future__ import annotations

from types import SimpleNamespace

from e2e_ui import SLOW_MS, last_answer, open_app, send_chat, shoot, wait_answer_done
from playwright.sync_api import expect

from assist.chat_defaults import system_prompt_for
from bench.quality_grading import is_parroted
from engine.config import EngineConfig
from engine.embedded import embedded_gguf
from engine.gguf_meta import read_gguf_metadata
from engine.templates import prompt_format

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
    meta = read_gguf_metadata(embedded_gguf(EngineConfig().cache_dir))  # the system prompt Chat sent it
    system = system_prompt_for(SimpleNamespace(backend=SimpleNamespace(
        prompt_format=prompt_format(meta.chat_template, meta.architecture))))
    assert not is_parroted(said, system, QUESTION), said
    shoot(page, "chat-answer")
