"""The Chat tab with tools: call blocks with their results, Allow / Deny, Stop, saving and export.

The real Engine facade and parsers over a scripted backend (calls written as the default model
writes them), the real handlers, a fake tool registry.
"""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

from fakes import ScriptedBackend
from tools_support import TIME_TOOL, FakeRegistry, fenced_call

from assist.sessions import SessionStore
from assist.tools.registry import ToolInfo
from engine.engine import Engine
from webui.chat_sessions import ChatSessions
from webui.chat_tab import ChatHandlers
from webui.chat_tools import ChatTools

TOKYO = {"timezone": "Asia/Tokyo"}
RESULT = '{"timezone": "Asia/Tokyo", "datetime": "2026-12-05T01:50:45+09:00"}'
WEB = ToolInfo("web", "fetch", "Fetch a page", {"type": "object"}, trusted=False)


def request(session: str = "s1"):
    return SimpleNamespace(session_hash=session, headers={"accept-language": "en-US"})


def handlers(*outputs, registry=None, sessions=None):
    registry = registry or FakeRegistry({"time.get_current_time": RESULT})
    return ChatHandlers(Engine(ScriptedBackend(*outputs)), sessions=sessions, tools=ChatTools(registry)), registry


def test_a_call_shows_as_a_block_with_its_result_then_the_answer():
    chat, registry = handlers(fenced_call("get_current_time", TOKYO), "It is 01:50 in Tokyo.")
    updates = list(chat.respond("What time is it in Tokyo?", tools=["time"], request=request()))
    display, history, _ = updates[-1]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    call, result, answer = history[1:]
    assert call["tool_calls"] == [{"id": call["tool_calls"][0]["id"], "name": "time.get_current_time",
                                   "arguments": json.dumps(TOKYO)}]
    assert (result["name"], result["status"], result["content"]) == ("time.get_current_time", "ok", RESULT)
    assert answer["content"] == "It is 01:50 in Tokyo." and "TTFT" in answer["stats"]
    block = display[1]
    assert block["metadata"]["title"] == 'Called `time.get_current_time` {"timezone": "Asia/Tokyo"}'
    assert block["metadata"]["status"] == "done" and "```text\n" + RESULT + "\n```" in block["content"]
    assert display[2]["content"].startswith("It is 01:50 in Tokyo.")
    # While the call ran, its block said so (status pending: Gradio shows it in progress).
    running = [u[0][1] for u in updates if len(u[0]) > 1 and "metadata" in u[0][1]]
    assert running[0]["metadata"]["status"] == "pending" and "running" in running[0]["metadata"]["title"]
    assert registry.calls == [("time.get_current_time", TOKYO)]
    # The next turn sends the call and its result back to the model.
    chat.tools.registry.results = {}
    list(chat.respond("And now?", history=history, tools=[], request=request()))
    sent = chat.models.engine().backend.calls[-1]["messages"]
    assert [m["role"] for m in sent[-5:]] == ["user", "assistant", "tool", "assistant", "user"]


def test_untrusted_calls_wait_for_allow_or_deny():
    registry = FakeRegistry({"web.fetch": "<h1>page</h1>"}, tools=(WEB,))
    for choice, status in (("allow", "ok"), ("deny", "denied")):
        chat, _ = handlers(fenced_call("fetch", {"url": "http://x"}), "Done.", registry=registry)
        waiting = []
        for display, history, _ in chat.respond("Fetch x", tools=["web"], request=request()):  # noqa: B007
            if display[-1].get("options") and not waiting:
                waiting.append(display[-1])
                value = next(o["value"] for o in display[-1]["options"] if o["value"].startswith(choice))
                threading.Timer(0.2, chat.tools.approvals.decide, ("s1", value)).start()
        block = waiting[0]
        assert [o["label"] for o in block["options"]] == ["Allow", "Deny"]
        assert "waiting for your approval" in block["metadata"]["title"]
        assert history[2]["status"] == status and history[-1]["content"] == "Done."
    assert len(registry.calls) == 1  # only the allowed one ran
    assert history[2]["content"].startswith("The user denied this call")


def test_stop_while_a_call_waits_or_runs_ends_the_answer():
    registry = FakeRegistry(tools=(WEB, TIME_TOOL), slow_s=30)
    for tool, output in (("web", fenced_call("fetch", {"url": "x"})), ("time", fenced_call("get_current_time", TOKYO))):
        chat, _ = handlers(output, "never said", registry=registry)
        threading.Timer(0.5, chat.stop, (request(),)).start()
        started = time.monotonic()
        *_, (display, history, _) = chat.respond("go", tools=[tool], request=request())
        assert time.monotonic() - started < 10
        assert history[2]["status"] == "cancelled" and "never said" not in json.dumps(history)
        assert "Stopped" in display[1]["content"]


def test_html_in_a_result_stays_text():
    html = "<img src=x onerror=alert(1)>```\n<b>bold</b>"
    chat, _ = handlers(fenced_call("get_current_time", TOKYO), "ok",
                       registry=FakeRegistry({"time.get_current_time": html}))
    display, _, _ = list(chat.respond("time?", tools=["time"], request=request()))[-1]
    body = display[1]["content"]
    assert "````text\n" + html + "\n````" in body  # a fence longer than the result's own backticks


def test_the_step_limit_says_so(tmp_path):
    from assist.tools.config import ToolsConfig

    registry = FakeRegistry(config=ToolsConfig(max_steps=2))
    chat, _ = handlers(fenced_call("get_current_time", TOKYO), registry=registry)
    display, history, _ = list(chat.respond("time?", tools=["time"], request=request()))[-1]
    assert len(registry.calls) == 2 and "Stopped after 2 rounds of tool calls" in history[-1]["content"]


def test_calls_and_results_are_saved_and_exported(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    sessions = ChatSessions(store)
    chat, _ = handlers(fenced_call("get_current_time", TOKYO), "It is 01:50 in Tokyo.", sessions=sessions)
    list(chat.respond("What time is it in Tokyo?", tools=["time"], request=request()))
    saved = store.get(sessions.current(request()), "local")
    assert [m["role"] for m in saved.messages] == ["user", "assistant", "tool", "assistant"]
    assert saved.messages[1]["tool_calls"][0]["name"] == "time.get_current_time"
    assert saved.messages[2]["content"] == RESULT and saved.messages[2]["status"] == "ok"
    _, markdown = store.export(saved.id, "local", "md")
    assert '**Called `time.get_current_time`** `{"timezone": "Asia/Tokyo"}`' in markdown
    assert "### Result of `time.get_current_time`" in markdown and RESULT in markdown
    _, exported = store.export(saved.id, "local", "json")
    again = store.import_json("local", exported)
    assert again.messages == saved.messages  # the JSON export imports back unchanged
