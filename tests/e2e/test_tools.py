"""Tools in the Chat tab, in a real browser, with the real default model and the real
``mcp-server-time`` (stdio) configured as an untrusted server: the call shows as a block that waits
with Allow / Deny, Allow runs it, the result shows in the block and the answer states the time."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime

import httpx
import pytest
from e2e_ui import SLOW_MS, last_answer, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import expect

pytest.importorskip("mcp_server_time")


@pytest.fixture(scope="module")
def tools_app(launch_app, tmp_path_factory):
    config = tmp_path_factory.mktemp("tools") / "tools.toml"
    config.write_text(f'[[mcp_servers]]\nname = "time"\ncommand = "{sys.executable}"\n'
                      'args = ["-m", "mcp_server_time"]\n', encoding="utf-8")  # not trusted: Chat asks
    return launch_app("--config", str(config))


def test_a_tool_call_block_with_allow_deny_then_the_answer(tools_app, new_page):
    page = new_page("en-US")
    open_app(page, tools_app.url)
    chatbot = page.locator("#chatbot")
    set_slider(page, "Temperature (0 = greedy)", 0, accordion="Parameters")
    set_slider(page, "Max new tokens", 128)
    # The Tools selector starts with the configured server on, its tools listed once the page loaded.
    page.locator("#chat-tools-panel").get_by_text("Tools", exact=True).first.click()
    expect(page.locator("#chat-tools-status")).to_contain_text("time.get_current_time", timeout=SLOW_MS)
    send_chat(page, "What is the time in New York right now?")

    expect(chatbot).to_contain_text("waiting for your approval", timeout=SLOW_MS)
    expect(chatbot).to_contain_text("Called time.get_current_time")
    allow, deny = chatbot.get_by_role("button", name="Allow"), chatbot.get_by_role("button", name="Deny")
    expect(allow).to_be_visible()
    expect(deny).to_be_visible()
    expect(chatbot).to_contain_text("America/New_York")  # the arguments, shown before anything runs
    shoot(page, "chat-tool-approval")
    allow.click()

    answer = last_answer(page)
    wait_answer_done(answer)
    expect(allow).to_have_count(0)
    expect(chatbot).not_to_contain_text("waiting for your approval")
    shoot(page, "chat-tool-answer")
    # The conversation was saved with the call and its result: the answer states the returned time.
    (listed,) = httpx.get(tools_app.url + "/api/sessions").json()["sessions"]
    messages = httpx.get(f"{tools_app.url}/api/sessions/{listed['id']}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"][0]["name"] == "time.get_current_time" and messages[2]["status"] == "ok"
    returned = datetime.fromisoformat(json.loads(messages[2]["content"])["datetime"])
    text = answer.inner_text()
    print("answer:", messages[3]["content"])
    assert '"name"' not in text and "{" not in messages[3]["content"], text  # an answer, not more calls
    hour12 = returned.hour % 12 or 12
    clocks = {f"{returned.hour}:{returned.minute:02d}", f"{hour12}:{returned.minute:02d}"}
    assert any(re.search(rf"(?<!\d)0?{re.escape(c)}(?!\d)", text) for c in clocks), text
