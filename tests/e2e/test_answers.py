"""A simple question in Chat gets an answer from the default model, not the prompt repeated."""

from __future__ import annotations

from types import SimpleNamespace

from e2e_ui import SLOW_MS, last_answer, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import expect

from assist.chat_defaults import system_prompt_for
from assist.code import check_code
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


def test_chat_writes_code_in_a_fenced_block_that_renders_as_code(live_app, new_page):
    """What a new user tries first: a function in Chat comes back as a rendered code block that passes
    our syntax check, with a short explanation (the 270M base model wrote `def prime(x):` as a heading)."""
    page = new_page("en-US")
    open_app(page, live_app.url)
    set_slider(page, "Temperature (0 = greedy)", 0, accordion="Parameters")
    send_chat(page, "Write a Python function that checks whether a number is prime.")
    answer = last_answer(page)
    wait_answer_done(answer)
    code = answer.locator("pre code").first
    expect(code).to_contain_text("def ")
    source = code.inner_text()
    assert check_code(source, "python").ok, source
    shoot(page, "chat-code", asset="chat-code.png")


def test_a_chinese_question_gets_a_chinese_answer(live_app, new_page):
    page = new_page("zh-CN")
    open_app(page, live_app.url)
    send_chat(page, "法国的首都是哪里？")
    answer = last_answer(page)
    stats = wait_answer_done(answer)
    said = answer.inner_text().replace(stats, "").strip()
    assert "巴黎" in said and "Paris" not in said, said
    shoot(page, "chat-zh-answer", asset="chat-zh.png")
