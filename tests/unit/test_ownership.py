"""Ownership and sharing: sessions and collections private per user, sharing read vs write,
admins see usage not content, deletions and sharing audited (REST and Docs tab handlers).

Callers sign in for real: users in a ``UserStore`` (one admin), each with an API token, so the
auth middleware tells every route who is calling.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from argon2 import PasswordHasher
from docs_support import MANUAL_PAGES, REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient

from assist.access import CollectionAccess
from assist.audit import AuditLog
from assist.sessions import SessionStore
from assist.users import UserStore
from webui.api import build_api
from webui.docs_tab import DocsHandlers

TURN = [{"role": "user", "content": "alice's secret recipe?"}, {"role": "assistant", "content": "Flour."}]
REPORT, MANUAL = make_pdf(REPORT_PAGES), make_pdf(MANUAL_PAGES)
TOKENS: dict[str, str] = {}


@pytest.fixture()
def services(tmp_path):
    services = make_services(tmp_path / "data", FakeEngine("It is 36 months [1]."))
    services.sessions = SessionStore(tmp_path / "data" / "sessions.sqlite3")
    services.users = UserStore(":memory:", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    for name in ("alice", "bob", "carol", "root"):
        services.users.add(name, "long-enough-password", role="admin" if name == "root" else "user")
        TOKENS[name] = services.users.create_token(name)[1]
    services.audit = AuditLog(tmp_path / "data" / "audit.jsonl")
    services.collections.audit = services.audit.record
    yield services
    services.sessions.close()
    services.store.close()


@pytest.fixture()
def client(services):
    with TestClient(build_api(services)) as client:
        yield client


def as_(user: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def events(services) -> list[tuple]:
    return [(e["event"], e["actor"], e.get("collection") or e.get("session")) for e in services.audit.recent()]


def upload(client, user, collection, *items):
    return client.post(f"/api/collections/{collection}/documents", headers=as_(user),
                       files=[("files", (name, data, "application/octet-stream")) for name, data in items])


def names(client, user) -> list[str]:
    return [c["name"] for c in client.get("/api/collections", headers=as_(user)).json()["collections"]]


def search(client, user, collection):
    return client.post(f"/api/collections/{collection}/search", headers=as_(user),
                       json={"query": "warranty of the X200 pump"})


def share(client, user, collection, **body):
    return client.put(f"/api/collections/{collection}/sharing", headers=as_(user), json=body)


def test_sessions_of_one_user_are_404_for_another(client):
    alice = client.post("/api/sessions/import", headers=as_("alice"), json={"messages": TURN}).json()
    assert [s["id"] for s in client.get("/api/sessions", headers=as_("alice")).json()["sessions"]] == [alice["id"]]
    assert client.get("/api/sessions", headers=as_("bob")).json() == {"sessions": []}
    missing = client.get("/api/sessions/0123456789abcdef", headers=as_("bob"))
    for method, url in [("GET", f"/api/sessions/{alice['id']}"), ("GET", f"/api/sessions/{alice['id']}/export"),
                        ("DELETE", f"/api/sessions/{alice['id']}")]:
        response = client.request(method, url, headers=as_("bob"))
        assert response.status_code == 404 and response.json() == missing.json()  # nothing tells them apart
    messages = client.get(f"/api/sessions/{alice['id']}", headers=as_("alice")).json()["messages"]
    assert [{"role": m["role"], "content": m["content"]} for m in messages] == TURN


def test_each_user_has_their_own_default_and_private_collections(client):
    assert upload(client, "alice", "default", ("report.pdf", REPORT)).status_code == 200
    assert client.post("/api/collections", headers=as_("alice"), json={"name": "manuals"}).status_code == 201
    upload(client, "alice", "manuals", ("manual.pdf", MANUAL))
    # bob's default is his own, empty; alice's names mean nothing to him
    assert names(client, "bob") == ["default"]
    assert client.get("/api/collections/default/documents", headers=as_("bob")).json()["documents"] == []
    assert search(client, "bob", "default").json()["hits"] == []
    private, missing = search(client, "bob", "alice:manuals"), search(client, "bob", "alice:nothing")
    assert private.status_code == missing.status_code == 404
    assert private.json()["error"]["type"] == missing.json()["error"]["type"] == "NoSuchCollection"
    assert client.get("/api/collections/manuals/documents", headers=as_("bob")).status_code == 404
    assert upload(client, "bob", "alice:manuals", ("x.txt", b"bob was here")).status_code == 404
    assert client.delete("/api/collections/alice:manuals", headers=as_("bob")).status_code == 404
    assert share(client, "bob", "alice:manuals", users=["bob"], mode="write").status_code == 404
    # the same name is free for bob: two collections, no clash, no leak
    assert client.post("/api/collections", headers=as_("bob"), json={"name": "manuals"}).status_code == 201
    assert client.get("/api/collections/manuals/documents", headers=as_("bob")).json()["documents"] == []
    assert [d["name"] for d in client.get("/api/collections/manuals/documents",
                                          headers=as_("alice")).json()["documents"]] == ["manual.pdf"]
    assert search(client, "alice", "default").json()["hits"][0]["source"] == "report.pdf"


def test_sharing_read_then_write_then_everyone_then_nobody(client, services):
    client.post("/api/collections", headers=as_("alice"), json={"name": "pumps"})
    doc = upload(client, "alice", "pumps", ("report.pdf", REPORT)).json()["documents"][0]

    assert share(client, "alice", "pumps", users=["bob"], mode="read").json() == {
        "all": False, "all_mode": None, "users": [{"user": "bob", "mode": "read"}]}
    listed = client.get("/api/collections", headers=as_("bob")).json()["collections"]
    assert {"name": "alice:pumps", "documents": 1, "owner": "alice", "access": "read"} in listed
    assert search(client, "bob", "alice:pumps").json()["hits"][0]["source"] == "report.pdf"
    asked = client.post("/api/collections/alice:pumps/ask", headers=as_("bob"),
                        json={"question": "What is the warranty period of the X200 pump?"})
    assert asked.status_code == 200 and asked.json()["answer"] == "It is 36 months [1]."
    refused = upload(client, "bob", "alice:pumps", ("x.txt", b"bob's notes on pumps"))
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]["message"]
    assert client.delete(f"/api/collections/alice:pumps/documents/{doc['id']}", headers=as_("bob")).status_code == 403
    assert client.delete("/api/collections/alice:pumps", headers=as_("bob")).status_code == 403
    assert share(client, "bob", "alice:pumps", users=["carol"]).status_code == 403
    assert search(client, "carol", "alice:pumps").status_code == 404  # not shared with carol

    share(client, "alice", "pumps", users=["bob"], mode="write")
    assert upload(client, "bob", "alice:pumps", ("notes.txt", b"bob's notes on pumps")).status_code == 200
    assert len(client.get("/api/collections/pumps/documents", headers=as_("alice")).json()["documents"]) == 2
    assert client.delete("/api/collections/alice:pumps", headers=as_("bob")).status_code == 403  # owner only

    share(client, "alice", "pumps", all=True, mode="read")
    assert search(client, "carol", "alice:pumps").status_code == 200
    assert "alice:pumps" in names(client, "carol")

    share(client, "alice", "pumps", users=[], all=False)
    assert search(client, "bob", "alice:pumps").status_code == 404 and names(client, "bob") == ["default"]
    assert client.get("/api/collections/pumps/sharing", headers=as_("alice")).json()["users"] == []

    assert share(client, "alice", "pumps", users=["bob"], mode="admin").status_code == 422
    assert client.delete("/api/collections/pumps", headers=as_("alice")).json() == {"deleted": "pumps"}
    recorded = events(services)
    assert not [e for e in recorded if e[0] == "document.deleted"]  # refused deletes are not events
    assert recorded.count(("collection.shared", "alice", "pumps")) == 4
    assert recorded[-1] == ("collection.deleted", "alice", "pumps")


def test_deleting_a_session_is_audited(client, services):
    session = client.post("/api/sessions/import", headers=as_("alice"), json={"messages": TURN}).json()
    client.delete(f"/api/sessions/{session['id']}", headers=as_("alice"))
    assert events(services) == [("session.deleted", "alice", session["id"])]


def test_admins_see_usage_not_content(client):
    session = client.post("/api/sessions/import", headers=as_("alice"), json={"messages": TURN}).json()
    upload(client, "alice", "default", ("report.pdf", REPORT))
    client.post("/v1/chat/completions", headers=as_("bob"),
                json={"model": "default", "messages": [{"role": "user", "content": "hello there"}]})
    rows = {r["user"]: r for r in client.get("/api/usage", headers=as_("root")).json()["users"]}
    assert rows["alice"]["sessions"] == 1 and rows["alice"]["documents"] == 1 and rows["alice"]["collections"] == 1
    assert rows["bob"]["tokens_today"] > 0 and rows["bob"]["requests_today"] == 1
    # ...but not what is in them
    assert client.get(f"/api/sessions/{session['id']}", headers=as_("root")).status_code == 404
    assert client.get("/api/sessions", headers=as_("root")).json() == {"sessions": []}
    assert search(client, "root", "alice:default").status_code == 404
    # a user sees their own row only
    assert [r["user"] for r in client.get("/api/usage", headers=as_("bob")).json()["users"]] == ["bob"]


def test_ownership_survives_a_restart(tmp_path, services):
    services.collections.create("alice", "kept")
    services.collections.share("alice", "kept", ["bob"], mode="read")
    again = CollectionAccess(services.collections.access.path)
    assert again.shared("bob", "alice", "kept").mode == "read" and again.own("alice", "kept") is not None
    again.close()


def test_collections_made_without_a_login_stay_the_local_users(tmp_path):
    services = make_services(tmp_path / "data", FakeEngine())
    services.store.create_collection("legacy")  # e.g. made before ownership existed
    assert services.collections.labels("local") == ["default", "legacy"]
    assert services.collections.labels("alice") == ["default"]
    services.store.close()


# -- the Docs tab goes through the same checks ----------------------------------------------------

def ui(user: str):
    return SimpleNamespace(session_hash=f"tab-{user}", username=user, headers={"accept-language": "en-US"})


def test_docs_tab_shows_each_user_their_collections(services, tmp_path):
    handlers = DocsHandlers(services)
    handlers.create_collection("manuals", ui("alice"))
    path = tmp_path / "manual.pdf"
    path.write_bytes(MANUAL)
    services.collections.add_files("alice", "manuals", [("manual.pdf", MANUAL)])  # the tab queues a job for this
    assert handlers.collections(None, ui("alice"))["choices"] == ["default", "manuals"]
    assert handlers.collections(None, ui("bob"))["choices"] == ["default"]
    with pytest.raises(gr.Error, match="no collection named 'alice:manuals'"):
        handlers.documents("alice:manuals", ui("bob"))
    services.collections.share("alice", "manuals", ["bob"], mode="read")
    assert "alice:manuals" in handlers.collections(None, ui("bob"))["choices"]
    table, *_ = handlers.documents("alice:manuals", ui("bob"))
    assert [row[0] for row in table["data"]] == ["manual.pdf"]
    with pytest.raises(gr.Error, match="read-only"):
        handlers.upload([str(path)], "alice:manuals", None, ui("bob"))
    with pytest.raises(gr.Error, match="Only its owner"):
        handlers.ask_delete_collection("alice:manuals", ui("bob"))


def test_docs_tab_sharing_controls(services):
    from webui.docs_sharing import SharingHandlers

    services.collections.create("alice", "notes")
    sharing = SharingHandlers(services.collections)
    assert "shared with: bob, carol (read-only)" in sharing.share("notes", "bob, carol", False, "read", ui("alice"))
    assert services.collections.resolve("carol", "alice:notes").mode == "read"
    assert "everyone" in sharing.share("notes", "", True, "write", ui("alice"))
    assert services.collections.resolve("dave", "alice:notes").mode == "write"
    with pytest.raises(gr.Error, match="Only its owner"):
        sharing.share("alice:notes", "eve", False, "read", ui("bob"))
    assert "private again" in sharing.share("notes", "", False, "read", ui("alice"))
    assert [e[0] for e in events(services)].count("collection.shared") == 3


def test_upload_jobs_name_the_collection_as_its_user_does(services, tmp_path):
    from assist.ingest_jobs import IngestJobs

    services.jobs = IngestJobs(services.store, tmp_path / "jobs")
    try:
        with TestClient(build_api(services)) as client:
            client.post("/api/collections", headers=as_("alice"), json={"name": "pumps"})
            job = client.post("/api/collections/pumps/documents?background=true", headers=as_("alice"),
                              files=[("files", ("notes.txt", b"The X200 pump is blue.", "text/plain"))]).json()["job"]
            assert client.get(f"/api/jobs/{job}", headers=as_("alice")).json()["collection"] == "pumps"
            listed = client.get("/api/jobs?collection=pumps", headers=as_("alice")).json()["jobs"]
            assert [j["id"] for j in listed] == [job] and listed[0]["collection"] == "pumps"
            assert client.get(f"/api/jobs/{job}", headers=as_("bob")).status_code == 404
    finally:
        services.jobs.close()


def test_a_conversation_s_download_files_go_to_its_owner_only(services):
    from webui.chat_sessions import ChatSessions
    from webui.server import create_asgi_app

    session = services.sessions.create("alice", messages=TURN)
    markdown, _ = ChatSessions(services.sessions, services.web.session_exports_dir)._write_exports(session.id, "alice")
    url = f"/gradio_api/file={markdown}"
    with TestClient(create_asgi_app(services)) as app:
        assert app.get(url, headers=as_("alice")).status_code == 200
        assert "alice's secret recipe" in app.get(url, headers=as_("alice")).text
        for other in ("bob", "root"):  # another user, even an admin, gets the "does not exist" answer
            refused = app.get(url, headers=as_(other))
            assert refused.status_code == 404 and "secret" not in refused.text
        outside = app.get(f"/gradio_api/file={services.web.session_exports_dir}/../sessions/{session.id}/x.md",
                          headers=as_("bob"))
        assert outside.status_code == 404
        assert app.get(url).status_code == 401  # anonymous: sign in first
