"""A reasoning model's ``<think>`` stream: collapsed in the browser, ``reasoning_content`` over /v1.

A scripted backend (tests/fakes.py) writes a real Qwen3-style output behind the real engine
facade, the real UI and the real /v1 routes, served on a loopback port.
"""

from __future__ import annotations

import pytest
from e2e_ui import SLOW_MS, last_answer, send_chat, shoot, wait_answer_done
from fakes import ScriptedBackend
from openai_support import serve_in_thread
from playwright.sync_api import expect

from engine.engine import Engine
from webui.server import create_asgi_app
from webui.services import Services, WebConfig

openai = pytest.importorskip("openai")

OUTPUT = ("<think>\nThe user asks for the boiling point of water at sea level. That is 100 degrees "
          "Celsius.\n</think>\n\nWater boils at **100 °C** at sea level.")


@pytest.fixture(scope="module")
def thinking_app(tmp_path_factory):
    backend = ScriptedBackend(OUTPUT, chars_per_token=6)
    services = Services(engine=Engine(backend), web=WebConfig(data_dir=tmp_path_factory.mktemp("thinking")))
    with serve_in_thread(create_asgi_app(services)) as url:
        yield url


def test_thinking_renders_collapsed_above_the_answer(thinking_app, new_page):
    page = new_page()
    page.goto(thinking_app)
    expect(page.locator("#chat-input textarea")).to_be_visible(timeout=SLOW_MS)
    send_chat(page, "At what temperature does water boil?")
    answer = last_answer(page)
    wait_answer_done(answer)
    expect(answer).to_contain_text("Water boils at 100 °C at sea level.")
    chatbot = page.locator("#chatbot")
    thought = chatbot.get_by_text("Thinking", exact=False).first
    expect(thought).to_be_visible()
    reasoning = chatbot.get_by_text("That is 100 degrees Celsius.", exact=False)
    expect(reasoning).to_be_hidden()  # collapsed once the thinking is done
    assert "<think>" not in chatbot.inner_text()
    shoot(page, "thinking-collapsed")
    thought.click()
    expect(reasoning.first).to_be_visible()
    page.wait_for_timeout(500)  # the block's opening animation
    shoot(page, "thinking-open")


def test_the_same_stream_arrives_as_reasoning_content_over_v1(thinking_app):
    client = openai.OpenAI(base_url=thinking_app + "/v1", api_key="unused", max_retries=0, timeout=30)
    chunks = list(client.chat.completions.create(model="default", stream=True,
                                                 messages=[{"role": "user", "content": "Boiling point?"}]))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    assert reasoning.startswith("The user asks for the boiling point") and "<think>" not in reasoning + content
    assert content == "Water boils at **100 °C** at sea level."
