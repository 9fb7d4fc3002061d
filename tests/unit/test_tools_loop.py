"""The tool loop with the real Engine facade and parsers over a scripted backend, and a fake registry.

Calls are written as the default model writes them (fenced JSON); the loop runs them, feeds the
results back as tool messages and stops when the model answers, at the step limit, or on Stop.
"""

from __future__ import annotations

import threading

from fakes import ScriptedBackend
from tools_support import TIME_TOOL, FakeRegistry, fenced_call

from assist.tools.config import ToolsConfig
from assist.tools.loop import (
    DENIED,
    RESULT_NOTE,
    TOOLS_HINT,
    LoopDone,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from assist.tools.loop import run_tool_loop as loop
from assist.tools.naming import ToolSet
from assist.tools.registry import ToolInfo
from engine.config import SamplingParams
from engine.engine import Engine

TOKYO = {"timezone": "Asia/Tokyo"}
RESULT = '{"timezone": "Asia/Tokyo", "datetime": "2026-12-05T01:50:45+09:00"}'
ASK = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What time is it in Tokyo?"}]
PARAMS = SamplingParams(temperature=0, max_new_tokens=200)


def run(backend, registry, tools=(TIME_TOOL,), **kwargs):
    return list(loop(Engine(backend), ASK, ToolSet(list(tools)), registry, PARAMS, **kwargs))


def test_call_result_then_the_answer():
    backend = ScriptedBackend(fenced_call("get_current_time", TOKYO), "It is 01:50 in Tokyo.")
    registry = FakeRegistry({"time.get_current_time": RESULT})
    events = run(backend, registry)
    call, result = [e for e in events if isinstance(e, ToolCallEvent | ToolResultEvent)]
    assert (call.name, call.arguments, call.needs_approval) == ("time.get_current_time", TOKYO, False)
    assert (result.result, result.status) == (RESULT, "ok")
    done = events[-1]
    assert isinstance(done, LoopDone) and done.content == "It is 01:50 in Tokyo." and done.steps == 2
    assert done.finish_reason == "stop" and done.calls == [result] and done.stats.extra["tool_steps"] == 2
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "It is 01:50 in Tokyo."  # the call is not text
    assert registry.calls == [("time.get_current_time", TOKYO)]
    # The model saw the tools (by their plain names), the hint, then its call and the result.
    first, second = backend.calls
    assert [t["function"]["name"] for t in first["params"].tools] == ["get_current_time"]
    assert first["messages"][0]["content"].endswith(TOOLS_HINT)
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_current_time", "arguments": TOKYO}
    assert tool["role"] == "tool" and tool["content"] == f"{RESULT}\n\n{RESULT_NOTE}"


def test_the_step_limit_ends_the_loop():
    backend = ScriptedBackend(fenced_call("get_current_time", TOKYO))  # calls again, and again
    registry = FakeRegistry(config=ToolsConfig(max_steps=3))
    events = run(backend, registry)
    assert len(registry.calls) == 3 and len(backend.calls) == 3
    assert events[-1].finish_reason == "step_limit" and events[-1].steps == 3
    assert len(run(ScriptedBackend(fenced_call("get_current_time", TOKYO)), FakeRegistry(), max_steps=1)) == 3


def test_untrusted_calls_wait_for_approval_and_a_denial_is_told_to_the_model():
    untrusted = ToolInfo("web", "fetch", "Fetch a page", {"type": "object"}, trusted=False)
    backend = ScriptedBackend(fenced_call("fetch", {"url": "x"}), "I was not allowed to fetch it.")
    registry = FakeRegistry()
    asked = []
    events = run(backend, registry, tools=(untrusted,), approve=lambda call: asked.append(call) or "deny")
    assert asked and asked[0].needs_approval and asked[0].name == "web.fetch"
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert (result.status, result.result) == ("denied", DENIED) and registry.calls == []
    assert events[-1].content == "I was not allowed to fetch it."
    allowed = run(ScriptedBackend(fenced_call("fetch", {"url": "x"}), "ok"), registry, tools=(untrusted,),
                  approve=lambda call: "allow")
    assert registry.calls == [("web.fetch", {"url": "x"})] and allowed[-1].content == "ok"
    # Without an approver (HTTP: the caller chose the tools) untrusted tools just run.
    run(ScriptedBackend(fenced_call("fetch", {"url": "y"}), "ok"), registry, tools=(untrusted,))
    assert registry.calls[-1] == ("web.fetch", {"url": "y"})


def test_stop_during_a_slow_call_ends_the_loop_at_once():
    backend = ScriptedBackend(fenced_call("get_current_time", TOKYO), "never said")
    registry = FakeRegistry(slow_s=30)
    cancel = threading.Event()
    threading.Thread(target=lambda: registry.started.wait(10) and cancel.set(), daemon=True).start()
    events = run(backend, registry, cancel=cancel)
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert result.status == "cancelled" and events[-1].finish_reason == "cancelled"
    assert len(backend.calls) == 1  # the model was not asked again


def test_results_are_cut_to_the_limit():
    backend = ScriptedBackend(fenced_call("get_current_time", TOKYO), "done")
    registry = FakeRegistry({"time.get_current_time": "y" * 500}, config=ToolsConfig(result_chars=100))
    result = next(e for e in run(backend, registry) if isinstance(e, ToolResultEvent))
    assert result.result.startswith("y" * 100 + "\n… [400 more characters cut]")


def test_prompt_names_plain_when_unique_qualified_when_not():
    other = ToolInfo("clock", "get_current_time", "Another clock", {"type": "object"}, trusted=True)
    echo = ToolInfo("util", "echo.v2", "Echo", {"type": "object"}, trusted=True)
    tools = ToolSet([TIME_TOOL, other, echo])
    assert [d["function"]["name"] for d in tools.definitions()] == [
        "time__get_current_time", "clock__get_current_time", "echo_v2"]
    assert tools.resolve("clock__get_current_time") is other and tools.resolve("util.echo.v2") is echo
    assert tools.resolve("get_current_time") is None  # ambiguous: not guessed
    plain = ToolSet([TIME_TOOL])
    assert plain.resolve("get_current_time") is plain.resolve("time.get_current_time") is TIME_TOOL
    assert set(plain.schemas()) == {"get_current_time", "time.get_current_time", "time__get_current_time"}
