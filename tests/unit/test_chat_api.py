"""POST /api/chat and GET /api/tools with the real Engine facade over a scripted backend and a fake
tool registry: the JSON and event shapes, saving to a conversation, refusals; and the System tab's
tool servers (real servers: tests/integration/test_mcp_servers.py)."""

from __future__ import annotations

import json

from fakes import ScriptedBackend
from fastapi.testclient import TestClient
from tools_support import FakeRegistry, fenced_call

from assist.sessions import SessionStore
from engine.engine import Engine
from webui.api import build_api
from webui.services import Services
from webui.system_tab import render_markdown

TOKYO = {"timezone": "Asia/Tokyo"}
RESULT = '{"datetime": "2026-12-05T01:50:45+09:00"}'
ASK = [{"role": "user", "content": "What time is it in Tokyo?"}]


def client(*outputs, **services):
    registry = FakeRegistry({"time.get_current_time": RESULT})
    return TestClient(build_api(Services(engine=Engine(ScriptedBackend(*outputs)), tools=registry, **services)))


def test_json_answer_with_the_calls_and_the_stats():
    body = client(fenced_call("get_current_time", TOKYO), "01:50.").post(
        "/api/chat", json={"messages": ASK, "tools": ["time"]}).json()
    assert body["message"] == {"role": "assistant", "content": "01:50."}
    assert body["tool_calls"] == [{"name": "time.get_current_time", "arguments": TOKYO, "result": RESULT,
                                   "status": "ok"}]
    assert body["stats"]["finish_reason"] == "stop" and body["stats"]["tool_steps"] == 2
    assert body["stats"]["completion_tokens"] > 0 and "session_id" not in body


def test_events():
    with client(fenced_call("get_current_time", TOKYO), "01:50.").stream(
            "POST", "/api/chat", json={"messages": ASK, "tools": ["time.get_current_time"], "stream": True}) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events][:2] == ["tool_call", "tool_result"] and events[-1]["type"] == "done"
    assert events[1]["result"] == RESULT and events[-1]["message"]["content"] == "01:50."


def test_without_tools_a_plain_answer():
    body = client("Hello there.").post("/api/chat", json={"messages": ASK}).json()
    assert body["message"]["content"] == "Hello there." and body["tool_calls"] == []


def test_a_saved_conversation_continues_and_keeps_the_calls(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    session = store.create("local", messages=[{"role": "user", "content": "hi"},
                                              {"role": "assistant", "content": "Hello."}])
    api = client(fenced_call("get_current_time", TOKYO), "01:50.", sessions=store)
    body = api.post("/api/chat", json={"messages": ASK, "tools": ["time"], "session_id": session.id}).json()
    assert body["session_id"] == session.id
    saved = store.get(session.id, "local").messages
    assert [m["role"] for m in saved] == ["user", "assistant", "user", "assistant", "tool", "assistant"]
    assert saved[4]["content"] == RESULT and saved[-1]["content"] == "01:50." and "TTFT" in saved[-1]["stats"]
    missing = api.post("/api/chat", json={"messages": ASK, "session_id": "nope"})
    assert missing.status_code == 404


def test_files_go_with_the_last_message_and_the_answer_names_its_sources(tmp_path):
    import base64

    from docs_support import REPORT_PAGES, make_pdf

    store = SessionStore(tmp_path / "sessions.sqlite3")
    session = store.create("local")
    backend = ScriptedBackend("The warranty period for the X200 pump is 36 months [1].")
    api = TestClient(build_api(Services(engine=Engine(backend), sessions=store)))
    pdf = base64.b64encode(make_pdf(REPORT_PAGES)).decode()
    ask = [{"role": "user", "content": "How long is the X200 warranty?",
            "attachments": [{"name": "report.pdf", "data": pdf}]}]
    body = api.post("/api/chat", json={"messages": ask, "session_id": session.id}).json()
    sent = backend.calls[-1]["messages"][-1]["content"]
    assert "[2] report.pdf p.2: Warranty terms." in sent
    assert body["message"]["content"].endswith("36 months [2].")  # its [1] checked: the quote is on page 2
    assert body["sources"] == [{"n": 2, "name": "report.pdf", "page": 2}]
    saved = store.get(session.id, "local").messages
    assert saved[0]["attachments"][0]["name"] == "report.pdf" and saved[-1]["content"].endswith("[2].")

    broken = [{**ask[0], "attachments": [{"name": "broken.pdf", "data": base64.b64encode(b"%PDF-1 cut").decode()}]}]
    refused = api.post("/api/chat", json={"messages": broken})
    assert refused.status_code == 400 and "broken.pdf" in refused.json()["error"]["message"]
    not_base64 = [{**ask[0], "attachments": [{"name": "a.txt", "data": "%%%"}]}]
    assert "base64" in api.post("/api/chat", json={"messages": not_base64}).json()["error"]["message"]
    early = [{**ask[0]}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "and?"}]
    assert api.post("/api/chat", json={"messages": early}).status_code == 400
    store.close()


def test_refusals():
    api = client("x")
    assert api.post("/api/chat", json={"messages": [{"role": "tool", "content": "x"}]}).status_code == 400
    assert api.post("/api/chat", json={"messages": [{"role": "assistant", "content": "x"}]}).status_code == 400
    assert api.post("/api/chat", json={"messages": []}).status_code == 422
    none = TestClient(build_api(Services(engine=Engine(ScriptedBackend("x")))))
    assert none.get("/api/tools").json() == {"tools": [], "servers": []}
    refused = none.post("/api/chat", json={"messages": ASK, "tools": ["time"]})
    assert refused.status_code == 400 and "no tools" in refused.json()["error"]["message"]


def test_the_system_tab_lists_tool_servers_and_why_one_failed():
    snap = {"model": None, "accelerators": [], "monitors": {}, "engine": {},
            "cpu": {"cores": 2, "percent": 1.0, "load": None, "ram_used": 1, "ram_total": 2, "process_rss": 1},
            "tools": [{"name": "time", "transport": "stdio", "trusted": True, "state": "ready", "error": "",
                       "tools": ["get_current_time"]},
                      {"name": "bad", "transport": "http", "trusted": False, "state": "failed",
                       "error": "ConnectError: <b>refused</b>", "tools": []}]}
    text = render_markdown(snap)
    assert "**time** (stdio · trusted): running · get_current_time" in text
    assert "**bad** (http): FAILED" in text and "ConnectError: &lt;b>refused&lt;/b>" in text


def test_images_go_with_the_last_message_to_a_model_that_sees(tmp_path):
    from engine.images import data_url

    image = data_url(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    seeing = ScriptedBackend("A red square.")
    seeing.sees_images = True
    store = SessionStore(tmp_path / "sessions.sqlite3")
    session = store.create("local", messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."}])
    api = TestClient(build_api(Services(engine=Engine(seeing), sessions=store)))
    ask = [{"role": "user", "content": "What is this?", "images": [image]}]
    body = api.post("/api/chat", json={"messages": ask, "session_id": session.id}).json()
    assert body["message"]["content"] == "A red square."
    assert store.get(session.id, "local").messages[2]["images"] == [image]  # saved with the question
    blind = client("x")
    refused = blind.post("/api/chat", json={"messages": ask})
    assert refused.status_code == 400 and "reads text only" in refused.json()["error"]["message"]
    web = blind.post("/api/chat", json={"messages": [{**ask[0], "images": ["https://example.com/a.png"]}]})
    assert web.status_code == 400 and "data: URL" in web.json()["error"]["message"]
