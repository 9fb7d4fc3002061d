"""REST routes for collections, documents, search and ask, through FastAPI's TestClient."""

from __future__ import annotations

import json
import threading

import pytest
from docs_support import MANUAL_PAGES, REPORT_PAGES, encrypt_pdf, make_pdf, make_services
from fakes import FakeEngine, FakeError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rag.prompts import NOT_FOUND_MESSAGE
from webui.rag_api import API_MAX_TOKENS, include_rag_api

REPORT = make_pdf(REPORT_PAGES)
MANUAL = make_pdf(MANUAL_PAGES)


@pytest.fixture()
def services(tmp_path):
    services = make_services(tmp_path / "data", FakeEngine("It is 36 months [1]."), max_files_per_upload=5,
                             max_file_bytes=20_000)
    yield services
    services.store.close()


@pytest.fixture()
def client(services):
    app = FastAPI()
    include_rag_api(app, services)
    with TestClient(app) as client:
        yield client


def files(*items):
    return [("files", (name, data, "application/octet-stream")) for name, data in items]


def upload(client, *items, collection="default"):
    return client.post(f"/api/collections/{collection}/documents", files=files(*items))


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"] and body["error"]["type"]
    return body["error"]["message"]


def test_collections_list_create_delete(client):
    mine = {"owner": "local", "access": "owner"}  # without a login everything is the local user's
    assert client.get("/api/collections").json() == {"collections": [{"name": "default", "documents": 0, **mine}]}
    created = client.post("/api/collections", json={"name": "manuals"})
    assert created.status_code == 201 and created.json() == {"name": "manuals", "documents": 0, **mine}
    names = [c["name"] for c in client.get("/api/collections").json()["collections"]]
    assert names == ["default", "manuals"]
    response = client.post("/api/collections", json={"name": "manuals"})
    assert response.status_code == 409 and "already exists" in error_of(response)
    response = client.post("/api/collections", json={"name": "no spaces/allowed"})
    assert response.status_code == 400 and "not a valid collection name" in error_of(response)
    assert client.post("/api/collections", json={}).status_code == 422
    assert client.delete("/api/collections/manuals").json() == {"deleted": "manuals"}
    response = client.delete("/api/collections/manuals")
    assert response.status_code == 404 and "no collection named 'manuals'" in error_of(response)
    response = client.delete("/api/collections/default")
    assert response.status_code == 400 and "cannot be deleted" in error_of(response)


def test_upload_many_files_with_per_file_errors(client):
    encrypted = encrypt_pdf(MANUAL, "secret")
    response = upload(client, ("report.pdf", REPORT), ("notes.md", b"# Notes\n\nThe cafeteria opens at 8 am."),
                      ("broken.pdf", b"%PDF-1.4 garbage"), ("locked.pdf", encrypted), ("empty.txt", b""))
    assert response.status_code == 200
    body = response.json()
    assert [d["name"] for d in body["documents"]] == ["report.pdf", "notes.md"]
    assert all(set(d) >= {"id", "name", "pages", "chunks", "sha256"} for d in body["documents"])
    assert body["documents"][0]["pages"] == 3 and body["documents"][1]["pages"] is None
    errors = {e["name"]: e["error"] for e in body["errors"]}
    assert set(errors) == {"broken.pdf", "locked.pdf", "empty.txt"}
    assert "damaged" in errors["broken.pdf"] and "encrypted" in errors["locked.pdf"]
    assert "empty" in errors["empty.txt"]
    listed = client.get("/api/collections/default/documents").json()
    assert sorted(d["name"] for d in listed["documents"]) == ["notes.md", "report.pdf"] and listed["errors"] == []
    assert client.get("/api/collections").json()["collections"][0]["documents"] == 2


def test_upload_limits_and_bad_requests(client):
    response = client.post("/api/collections/default/documents", data={"other": "x"})
    assert response.status_code == 400 and "No files were sent" in error_of(response)
    response = upload(client, *[(f"f{i}.txt", f"text number {i}".encode()) for i in range(6)])
    assert response.status_code == 413 and "the limit is 5" in error_of(response)
    response = upload(client, ("big.txt", b"word " * 5000), ("small.txt", b"a small text file"))
    assert response.status_code == 200
    assert [d["name"] for d in response.json()["documents"]] == ["small.txt"]
    assert response.json()["errors"][0]["name"] == "big.txt"
    assert "larger than" in response.json()["errors"][0]["error"]
    response = upload(client, ("huge.txt", b"x" * 200_000))
    assert response.status_code == 413 and "at most" in error_of(response)
    response = upload(client, ("a.txt", b"text"), collection="missing")
    assert response.status_code == 404 and "no collection named 'missing'" in error_of(response)
    assert client.get("/api/collections/missing/documents").status_code == 404


def test_search_returns_contract_hits_and_delete_removes_a_document(client):
    docs = upload(client, ("report.pdf", REPORT), ("manual.pdf", MANUAL)).json()["documents"]
    hits = client.post("/api/collections/default/search",
                       json={"query": "How often should I descale the kettle?", "top_k": 3}).json()["hits"]
    assert hits and all(set(h) == {"document_id", "source", "page", "text", "score", "chunk_id"} for h in hits)
    assert (hits[0]["source"], hits[0]["page"]) == ("manual.pdf", 2)
    manual_id = next(d["id"] for d in docs if d["name"] == "manual.pdf")
    assert hits[0]["document_id"] == manual_id
    assert client.delete(f"/api/collections/default/documents/{manual_id}").json() == {"deleted": manual_id}
    hits = client.post("/api/collections/default/search", json={"query": "descale the kettle"}).json()["hits"]
    assert all(h["source"] != "manual.pdf" for h in hits)
    response = client.delete(f"/api/collections/default/documents/{manual_id}")
    assert response.status_code == 404 and "no document" in error_of(response)
    response = client.post("/api/collections/default/search", json={"query": "  "})
    assert response.status_code == 400 and "query is empty" in error_of(response)
    assert client.post("/api/collections/default/search", json={"query": "x", "top_k": 0}).status_code == 422
    assert client.post("/api/collections/nope/search", json={"query": "x"}).status_code == 404


def test_ask_returns_answer_hits_and_stats(client, services):
    upload(client, ("report.pdf", REPORT), ("manual.pdf", MANUAL))
    body = client.post("/api/collections/default/ask",
                       json={"question": "What is the warranty period of the X200 pump?", "top_k": 2}).json()
    assert body["answer"] == "It is 36 months [1]." and body["not_found"] is False
    assert (body["hits"][0]["source"], body["hits"][0]["page"]) == ("report.pdf", 2) and len(body["hits"]) <= 2
    assert body["stats"]["completion_tokens"] == 5 and "tokens_per_s" in body["stats"]
    assert services.engine.calls[0]["params"].max_new_tokens == API_MAX_TOKENS
    client.post("/api/collections/default/ask", json={"question": "warranty of the X200 pump", "max_tokens": 16})
    assert services.engine.calls[-1]["params"].max_new_tokens == 16


def test_ask_not_found_skips_the_model(client, services):
    upload(client, ("report.pdf", REPORT))
    body = client.post("/api/collections/default/ask", json={"question": "How tall is Mount Everest?"}).json()
    assert body["answer"] == NOT_FOUND_MESSAGE["en"] and body["hits"] == [] and body["not_found"] is True
    assert services.engine.calls == []


def sse_events(response) -> list[dict]:
    assert response.headers["content-type"].startswith("text/event-stream")
    return [json.loads(line[len("data: "):]) for line in response.text.split("\n\n") if line.startswith("data: ")]


def test_ask_streams_server_sent_events(client):
    upload(client, ("report.pdf", REPORT))
    with client.stream("POST", "/api/collections/default/ask",
                       json={"question": "What is the warranty period of the X200 pump?", "stream": True}) as r:
        r.read()
        events = sse_events(r)
    assert events[0]["type"] == "hits" and events[0]["hits"][0]["page"] == 2
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "It is 36 months [1]."
    assert events[-1]["type"] == "done" and events[-1]["stats"]["completion_tokens"] == 5
    response = client.post("/api/collections/nope/ask", json={"question": "x", "stream": True})
    assert response.status_code == 404 and "no collection" in error_of(response)
    response = client.post("/api/collections/default/ask", json={"question": " ", "stream": True})
    assert response.status_code == 400 and "Type a question" in error_of(response)


class HoldingEngine(FakeEngine):
    """Holds its stream before any model work (queue, prefill) until the test lets it go."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.released_before_start: bool | None = None

    def stream_chat(self, messages, params=None, session_id=None, cancel=None):
        self.released_before_start = self.release.wait(30)  # a guard against a hang, not a timing
        yield from super().stream_chat(messages, params, session_id, cancel)


def test_the_hits_event_reaches_the_client_before_the_model_starts(tmp_path):
    services = make_services(tmp_path / "data", HoldingEngine("It is 36 months [1]."))
    app = FastAPI()
    include_rag_api(app, services)
    try:
        with TestClient(app) as client:
            upload(client, ("report.pdf", REPORT))
            types = []
            with client.stream("POST", "/api/collections/default/ask",
                               json={"question": "What is the warranty period of the X200 pump?", "stream": True}) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        types.append(json.loads(line[len("data: "):])["type"])
                        services.engine.release.set()  # the client has the hits: now the model may start
        assert types[0] == "hits" and types[-1] == "done" and "delta" in types
        assert services.engine.released_before_start is True
    finally:
        services.store.close()


def test_engine_errors_become_json_errors(client, services):
    upload(client, ("report.pdf", REPORT))
    services.engine.error = FakeError("The model is overloaded; try again.")
    question = {"question": "What is the warranty period of the X200 pump?"}
    response = client.post("/api/collections/default/ask", json=question)
    assert response.status_code == 503 and "overloaded" in error_of(response)
    events = sse_events(client.post("/api/collections/default/ask", json={**question, "stream": True}))
    assert [e["type"] for e in events] == ["hits", "error"] and "overloaded" in events[1]["error"]["message"]


def test_build_api_serves_the_document_routes(services):
    from webui.api import build_api

    with TestClient(build_api(services)) as client:
        assert client.get("/api/collections").status_code == 200
        assert client.get("/api/collections/nope/documents").status_code == 404
