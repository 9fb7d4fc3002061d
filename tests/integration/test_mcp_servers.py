"""Real MCP servers behind the registry, the tool loop and the HTTP API (a scripted model).

* ``mcp-server-time`` (PyPI), a third-party server over stdio: its tools listed, a real call;
* an HTTP server written here with the SDK's FastMCP (``MCPServer``) on a loopback port, reached
  with the configured headers;
* a stdio server written here: a tool that crashes the server mid-call (reported, restarted on the
  next call), a slow one (Stop cancels it), one that returns HTML (text, unchanged), a long result
  (cut); a server that never starts (its reason in /api/tools and a 503; the others keep working);
* the step limit.

The model is scripted (calls written as the default model writes them): these tests are about the
servers; tests/integration/test_tools_live.py asks the real model.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
from fakes import ScriptedBackend
from fastapi.testclient import TestClient
from openai_support import serve_in_thread
from tools_support import fenced_call, write_test_server

from assist.tools.config import ToolsConfig, parse_mcp_servers
from assist.tools.errors import ToolCancelled
from assist.tools.loop import LoopDone, ToolResultEvent, run_tool_loop
from assist.tools.naming import ToolSet
from assist.tools.registry import ToolRegistry
from engine.config import SamplingParams
from engine.engine import Engine
from webui.api import build_api
from webui.services import Services

pytest.importorskip("mcp_server_time")
HEADER = "Bearer test-header-123"


@pytest.fixture(scope="module")
def http_server():
    """A streamable-HTTP MCP server made with FastMCP (``MCPServer``) on 127.0.0.1; records auth headers."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("http-test")
    seen: list[str] = []

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    app = server.streamable_http_app()

    async def recording(scope, receive, send):
        if scope["type"] == "http":
            seen.extend(v.decode() for k, v in scope["headers"] if k == b"authorization")
        await app(scope, receive, send)

    with serve_in_thread(recording) as url:
        yield url + "/mcp", seen


@pytest.fixture(scope="module")
def registry(tmp_path_factory, http_server):
    folder = tmp_path_factory.mktemp("mcp")
    command = write_test_server(folder)
    servers = parse_mcp_servers([
        {"name": "time", "command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
         "trusted": True},
        {"name": "test", "command": command[0], "args": command[1:]},
        {"name": "remote", "url": http_server[0], "headers": {"Authorization": HEADER}},
        {"name": "broken", "command": sys.executable,
         "args": ["-c", "import sys; print('broken: no API key configured', file=sys.stderr); sys.exit(2)"]},
    ])
    registry = ToolRegistry(ToolsConfig(mcp_servers=servers, max_steps=3, result_chars=1000, start_timeout_s=30))
    yield registry
    registry.close()


def api(registry, *outputs):
    return TestClient(build_api(Services(engine=Engine(ScriptedBackend(*outputs)), tools=registry)))


def chat(client, tools, **extra):
    response = client.post("/api/chat", json={"messages": [{"role": "user", "content": "go"}], "tools": tools,
                                              **extra})
    return response


def test_tools_are_listed_and_a_server_that_never_starts_says_why(registry):
    body = api(registry).get("/api/tools").json()
    names = {t["name"]: t for t in body["tools"]}
    assert {"time.get_current_time", "time.convert_time", "test.echo", "remote.add"} <= set(names)
    assert names["time.get_current_time"]["parameters"]["required"] == ["timezone"]
    assert names["time.get_current_time"]["trusted"] and not names["test.echo"]["trusted"]
    assert "Get current time" in names["time.get_current_time"]["description"]
    servers = {s["name"]: s for s in body["servers"]}
    assert servers["time"]["state"] == servers["remote"]["state"] == "ready"
    assert servers["broken"]["state"] == "failed"
    assert "broken: no API key configured" in servers["broken"]["error"]
    refused = chat(api(registry), ["broken"])
    assert refused.status_code == 503 and "broken: no API key configured" in refused.json()["error"]["message"]


def test_a_real_time_call_over_api_chat_json_and_events(registry):
    client = api(registry, fenced_call("get_current_time", {"timezone": "Asia/Tokyo"}), "Here is the time.")
    body = chat(client, ["time"]).json()
    (call,) = body["tool_calls"]
    assert (call["name"], call["arguments"], call["status"]) == ("time.get_current_time",
                                                                 {"timezone": "Asia/Tokyo"}, "ok")
    assert json.loads(call["result"])["timezone"] == "Asia/Tokyo"
    assert body["message"] == {"role": "assistant", "content": "Here is the time."}
    assert body["stats"]["finish_reason"] == "stop" and body["stats"]["tool_steps"] == 2

    client = api(registry, fenced_call("get_current_time", {"timezone": "Europe/Paris"}), "It is late.")
    with client.stream("POST", "/api/chat", json={"messages": [{"role": "user", "content": "go"}],
                                                  "tools": ["time.get_current_time"], "stream": True}) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "done" and "delta" in kinds
    assert events[0]["arguments"] == {"timezone": "Europe/Paris"} and events[1]["id"] == events[0]["id"]
    assert "".join(e.get("content", "") for e in events if e["type"] == "delta") == "It is late."
    assert events[-1]["message"]["content"] == "It is late." and len(events[-1]["tool_calls"]) == 1


def test_an_http_server_made_with_fastmcp_gets_its_headers(registry, http_server):
    body = chat(api(registry, fenced_call("add", {"a": 2, "b": 40}), "42."), ["remote"]).json()
    assert body["tool_calls"][0]["result"] == "42" and body["tool_calls"][0]["status"] == "ok"
    assert HEADER in http_server[1]


def test_a_server_that_crashes_mid_call_is_restarted_on_the_next(registry):
    body = chat(api(registry, fenced_call("crash", {}), "It failed."), ["test.crash"]).json()
    (call,) = body["tool_calls"]
    assert call["status"] == "error" and "stopped during the call to crash" in call["result"]
    assert body["message"]["content"] == "It failed."  # the model was told and carried on
    again = chat(api(registry, fenced_call("echo", {"text": "back"}), "ok"), ["test.echo"]).json()
    assert again["tool_calls"][0]["result"] == "back"
    server = next(s for s in registry.status() if s["name"] == "test")
    assert server["state"] == "ready" and server["starts"] >= 2


def test_html_comes_back_as_text_and_long_results_are_cut(registry):
    body = chat(api(registry, fenced_call("html", {}), "ok"), ["test"]).json()
    assert body["tool_calls"][0]["result"] == "<img src=x onerror=alert(1)><b>bold</b><script>alert(2)</script>"
    body = chat(api(registry, fenced_call("big", {"size": 5000}), "ok"), ["test.big"]).json()
    assert body["tool_calls"][0]["result"] == "x" * 1000 + "\n… [4000 more characters cut]"


def test_the_step_limit(registry):
    body = chat(api(registry, fenced_call("echo", {"text": "again"})), ["test.echo"]).json()
    assert len(body["tool_calls"]) == 3 and body["stats"]["finish_reason"] == "step_limit"


def test_stop_during_a_slow_tool_cancels_the_call(registry):
    tools = ToolSet(registry.select(["test.slow"]).tools)
    engine = Engine(ScriptedBackend(fenced_call("slow", {"seconds": 30}), "never"))
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    events = list(run_tool_loop(engine, [{"role": "user", "content": "wait"}], tools, registry,
                                SamplingParams(temperature=0), cancel=cancel))
    assert time.monotonic() - started < 10
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert result.status == "cancelled" and isinstance(events[-1], LoopDone)
    assert events[-1].finish_reason == "cancelled"
    with pytest.raises(ToolCancelled):  # the registry's own call, too
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        registry.call(tools.tools[0], {"seconds": 30}, stop)
    # The server lives on: the next call is answered.
    echo = registry.select(["test.echo"]).tools[0]
    assert registry.call(echo, {"text": "still here"}).text == "still here"


def test_unknown_names_are_refused(registry):
    refused = chat(api(registry), ["nope"])
    assert refused.status_code == 400 and "servers are: time, test, remote, broken" in refused.json()["error"]["message"]
    refused = chat(api(registry), ["time.nope"])
    assert refused.status_code == 400 and "time.get_current_time" in refused.json()["error"]["message"]
