"""``/api/sessions`` routes with FastAPI's TestClient over a real SessionStore."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from fakes import FakeEngine
from fastapi.testclient import TestClient

from assist.sessions import LOCAL_OWNER, SessionStore
from webui.api import build_api
from webui.services import Services, WebConfig

TURN = [{"role": "user", "content": "你好，面包怎么做？"}, {"role": "assistant", "content": "面粉、水、盐。"}]


def plain(messages: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in ("id", "parent_id")} for m in messages]


@pytest.fixture
def store(tmp_path):
    store = SessionStore(tmp_path / "sessions.sqlite3")
    yield store
    store.close()


def client_for(store, tmp_path, api_key=None) -> TestClient:
    services = Services(engine=FakeEngine(), web=WebConfig(data_dir=tmp_path, api_key=api_key), sessions=store)
    return TestClient(build_api(services), raise_server_exceptions=False)


@pytest.fixture
def client(store, tmp_path):
    return client_for(store, tmp_path)


def test_list_get_and_search(client, store):
    session = store.create(LOCAL_OWNER, messages=TURN)
    store.create(LOCAL_OWNER, title="Other")
    data = client.get("/api/sessions").json()
    assert [s["title"] for s in data["sessions"]] == ["Other", "你好，面包怎么做？"]
    assert set(data["sessions"][0]) == {"id", "title", "created_at", "updated_at", "messages"}
    assert [s["id"] for s in client.get("/api/sessions", params={"q": "面包"}).json()["sessions"]] == [session.id]
    one = client.get(f"/api/sessions/{session.id}").json()
    assert plain(one["messages"]) == TURN and one["id"] == session.id
    assert one["tree"] == one["messages"] and one["active_leaf"] == one["messages"][-1]["id"]


def test_missing_sessions_are_404_with_a_message(client):
    response = client.get("/api/sessions/nope")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "SessionNotFound"
    assert "does not exist" in response.json()["error"]["message"]
    assert client.delete("/api/sessions/nope").status_code == 404
    assert client.get("/api/sessions/nope/export").status_code == 404


def test_delete(client, store):
    session = store.create(LOCAL_OWNER, messages=TURN)
    assert client.delete(f"/api/sessions/{session.id}").json() == {"deleted": session.id}
    assert client.get("/api/sessions").json() == {"sessions": []}


def test_export_markdown_and_json_as_attachments(client, store):
    session = store.create(LOCAL_OWNER, messages=TURN)
    md = client.get(f"/api/sessions/{session.id}/export", params={"format": "md"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    disposition = md.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "你好-面包怎么做.md"
    assert "## User\n\n你好，面包怎么做？" in md.text
    js = client.get(f"/api/sessions/{session.id}/export?format=json")
    assert js.headers["content-type"].startswith("application/json")
    assert plain(json.loads(js.content)["messages"]) == TURN
    bad = client.get(f"/api/sessions/{session.id}/export?format=pdf")
    assert bad.status_code == 400 and "use 'md'" in bad.json()["error"]["message"]


def test_import_round_trip_and_errors(client, store):
    session = store.create(LOCAL_OWNER, title="Original", messages=TURN)
    exported = client.get(f"/api/sessions/{session.id}/export?format=json").content
    response = client.post("/api/sessions/import", content=exported, headers={"content-type": "application/json"})
    assert response.status_code == 201
    copy = response.json()
    assert copy["id"] != session.id and copy["title"] == "Original" and plain(copy["messages"]) == TURN
    assert len(client.get("/api/sessions").json()["sessions"]) == 2
    bad = client.post("/api/sessions/import", content=b"{nope")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidImport"
    assert "not valid JSON" in bad.json()["error"]["message"]
    wrong = client.post("/api/sessions/import", json={"messages": [{"role": "bot", "content": "x"}]})
    assert wrong.status_code == 400 and "role 'bot'" in wrong.json()["error"]["message"]


def test_user_header_is_ignored_without_an_api_key(client, store):
    alice = store.create("alice", title="alice's")
    store.create(LOCAL_OWNER, title="shared")
    headers = {"X-DCU-User": "alice"}
    assert [s["title"] for s in client.get("/api/sessions", headers=headers).json()["sessions"]] == ["shared"]
    assert client.get(f"/api/sessions/{alice.id}", headers=headers).status_code == 404


def test_user_header_selects_the_owner_with_an_api_key(store, tmp_path):
    client = client_for(store, tmp_path, api_key="secret")
    alice = store.create("alice", title="alice's")
    store.create("bob", title="bob's")
    as_alice = {"X-DCU-User": "alice", "Authorization": "Bearer secret"}
    assert [s["title"] for s in client.get("/api/sessions", headers=as_alice).json()["sessions"]] == ["alice's"]
    assert client.get(f"/api/sessions/{alice.id}", headers=as_alice).status_code == 200
    as_bob = {"X-DCU-User": "bob", "Authorization": "Bearer secret"}
    assert client.get(f"/api/sessions/{alice.id}", headers=as_bob).status_code == 404
    assert client.delete(f"/api/sessions/{alice.id}", headers=as_bob).status_code == 404
    imported = client.post("/api/sessions/import", json={"messages": TURN}, headers=as_bob).json()
    assert store.get(imported["id"], "bob").title == TURN[0]["content"]


def test_without_a_store_the_routes_say_so(tmp_path):
    client = TestClient(build_api(Services(engine=FakeEngine(), web=WebConfig(data_dir=tmp_path))),
                        raise_server_exceptions=False)
    response = client.get("/api/sessions")
    assert response.status_code == 404 and "not enabled" in response.json()["error"]["message"]


def test_get_returns_the_branch_shown_and_the_whole_tree(client, store):
    session = store.create(LOCAL_OWNER, messages=TURN)
    first = session.messages[0]
    store.save_branch(session.id, LOCAL_OWNER, [first, {"role": "assistant", "content": "面粉和酵母。"}])
    body = client.get(f"/api/sessions/{session.id}").json()
    assert [m["content"] for m in body["messages"]] == ["你好，面包怎么做？", "面粉和酵母。"]
    assert [m["content"] for m in body["tree"]] == ["你好，面包怎么做？", "面粉、水、盐。", "面粉和酵母。"]
    assert {m["parent_id"] for m in body["tree"][1:]} == {first["id"]}
    assert body["active_leaf"] == body["messages"][-1]["id"]


def test_search_finds_answers_in_english_and_chinese_for_their_owner_only(client, store):
    bread = store.create(LOCAL_OWNER, messages=TURN)
    store.create(LOCAL_OWNER, messages=[{"role": "user", "content": "pump?"},
                                        {"role": "assistant", "content": "The warranty lasts two years."}])
    store.create("alice", messages=[{"role": "user", "content": "面粉 warranty"}])
    hits = client.get("/api/sessions/search", params={"q": "面粉"}).json()["hits"]
    assert hits == [{"session_id": bread.id, "message_id": bread.messages[1]["id"], "title": "你好，面包怎么做？",
                     "snippet": "面粉、水、盐。"}]
    [hit] = client.get("/api/sessions/search", params={"q": "WARRANTY"}).json()["hits"]
    assert hit["title"] == "pump?" and "warranty lasts" in hit["snippet"]
    assert client.get("/api/sessions/search", params={"q": ""}).json() == {"hits": []}
    assert client.get("/api/sessions/search", params={"q": "x" * 501}).status_code == 422
