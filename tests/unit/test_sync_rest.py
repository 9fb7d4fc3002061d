"""``GET|PUT|DELETE /api/collections/{c}/source`` through FastAPI's TestClient: who may, which folders, what comes back.

The caller is set the way the auth gate sets it (``request.state.user``); passes run as real jobs
(``GET /api/jobs/{id}``) over a real store.
"""

from __future__ import annotations

import time

import pytest
from docs_support import make_services
from fakes import FakeEngine
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from assist.sync import FolderSync
from assist.sync_config import SyncConfig
from assist.users import User
from webui.jobs_api import include_jobs_api
from webui.rag_api import include_rag_api
from webui.sync_api import include_sync_api

CALLERS = {"root": User("root", "admin"), "bob": User("bob"), "local": None}


def build(tmp_path, root):
    services = make_services(tmp_path / "data", FakeEngine("ok"))
    services.sync = FolderSync(SyncConfig(root=root, events=False), services.store, services.collections,
                               services.jobs, tmp_path / "data")
    app = FastAPI()

    @app.middleware("http")
    async def caller(request: Request, call_next):  # stands in for the gate: X-Caller names who calls
        user = CALLERS[request.headers.get("x-caller", "local")]
        if user is not None:
            request.state.user = user
        return await call_next(request)

    include_rag_api(app, services)
    include_jobs_api(app, services)
    include_sync_api(app, services)
    return services, app


@pytest.fixture()
def folder(tmp_path):
    folder = tmp_path / "root" / "manuals"
    folder.mkdir(parents=True)
    (folder / "pump.txt").write_text("The X200 pump needs a new intake filter every six months.")
    return folder


@pytest.fixture()
def client(tmp_path, folder):
    services, app = build(tmp_path, tmp_path / "root")
    with TestClient(app) as client:
        yield client
    services.sync.stop()
    services.jobs.close()
    services.sync.close()
    services.store.close()


def as_(name: str) -> dict:
    return {"x-caller": name}


def wait_job(client, job_id: str, caller: str = "root") -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=as_(caller)).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_an_admin_makes_a_collection_follow_a_folder(client, folder):
    response = client.put("/api/collections/manuals/source", json={"folder": str(folder), "interval_s": 120},
                          headers=as_("root"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["collection"] == "manuals" and body["owner"] == "root" and body["folder"] == str(folder.resolve())
    assert body["interval_s"] == 120 and body["pass"]["state"] in ("queued", "running")
    job = wait_job(client, body["pass"]["job"])
    assert job["status"] == "done" and job["collection"] == "manuals"
    assert job["documents"] == [{"name": "pump.txt", "change": "added"}]
    source = client.get("/api/collections/manuals/source", headers=as_("root")).json()
    assert source["last_pass"]["added"] == ["pump.txt"] and source["last_pass"]["failed"] == []
    assert source["pass"] == {"state": "idle", "job": None} and source["files"] == 1
    hits = client.post("/api/collections/manuals/search", json={"query": "X200 intake filter"},
                       headers=as_("root")).json()["hits"]
    assert hits[0]["source"] == "pump.txt"
    # the owner's normal sharing rules: bob sees nothing until it is shared with him
    assert client.get("/api/collections/root:manuals/source", headers=as_("bob")).status_code == 404
    client.put("/api/collections/manuals/sharing", json={"users": ["bob"]}, headers=as_("root"))
    shared = client.get("/api/collections/root:manuals/source", headers=as_("bob"))
    assert shared.status_code == 200 and shared.json()["collection"] == "root:manuals"
    gone = client.delete("/api/collections/manuals/source", headers=as_("root"))
    assert gone.json() == {"collection": "manuals", "following": False}
    response = client.get("/api/collections/manuals/source", headers=as_("root"))
    assert response.status_code == 404 and "does not follow a folder" in response.json()["error"]["message"]


def test_non_admins_are_refused(client, folder):
    response = client.put("/api/collections/default/source", json={"folder": str(folder)}, headers=as_("bob"))
    assert response.status_code == 403 and "Only an admin" in response.json()["error"]["message"]
    assert client.delete("/api/collections/default/source", headers=as_("bob")).status_code == 403
    # with no sign-in configured the local user is the admin
    assert client.put("/api/collections/default/source", json={"folder": str(folder)}).status_code == 200


def test_folders_outside_the_sync_root_are_refused(client, tmp_path, folder):
    (tmp_path / "elsewhere").mkdir()
    (folder / "escape").symlink_to(tmp_path / "elsewhere")
    for outside in (str(tmp_path / "elsewhere"), str(folder / "escape"), str(folder / ".." / ".." / "elsewhere"),
                    "/etc"):
        response = client.put("/api/collections/manuals/source", json={"folder": outside}, headers=as_("root"))
        assert response.status_code == 400, outside
        assert "outside the sync root" in response.json()["error"]["message"]
    response = client.put("/api/collections/manuals/source", json={"folder": str(folder / "nope")},
                          headers=as_("root"))
    assert response.status_code == 400 and "no folder" in response.json()["error"]["message"]
    response = client.put("/api/collections/manuals/source", json={"folder": str(folder), "interval_s": 0},
                          headers=as_("root"))
    assert response.status_code == 422
    names = [c["name"] for c in client.get("/api/collections", headers=as_("root")).json()["collections"]]
    assert names == ["default"]  # nothing was created by the refused requests


def test_without_a_sync_root_folder_sync_is_off(tmp_path, folder):
    services, app = build(tmp_path, None)
    try:
        with TestClient(app) as client:
            response = client.put("/api/collections/manuals/source", json={"folder": str(folder)})
        assert response.status_code == 403
        message = response.json()["error"]["message"]
        assert "Folder sync is off" in message and "--sync-root" in message
    finally:
        services.sync.stop()
        services.jobs.close()
        services.sync.close()
        services.store.close()


def test_the_docs_tab_shows_a_sync_badge(tmp_path, folder):
    from datetime import datetime, timedelta, timezone

    from webui.docs_tab import DocsHandlers
    from webui.sync_badge import format_badge

    services, _ = build(tmp_path, tmp_path / "root")
    try:
        (folder / "bad<b>.pdf").write_bytes(b"%PDF-1.4 garbage")
        handlers = DocsHandlers(services)
        assert handlers.sync_badge("default") == {"__type__": "update", "value": "", "visible": False}
        job = services.sync.follow("local", "manuals", str(folder))["pass"]["job"]
        deadline = time.monotonic() + 30
        while services.jobs.get(job, "local").status not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        badge = handlers.sync_badge("manuals")
        assert badge["visible"] is True
        assert f"synced from {folder.resolve()}" in badge["value"] and "just now" in badge["value"]
        assert "2 files" in badge["value"] and "1 failed" in badge["value"]
        assert "bad&lt;b&gt;.pdf" in badge["value"] and "damaged" in badge["value"]  # escaped, with the reason
        report = handlers.resume()[0]  # the owner's recent jobs include the pass: shown, not mistaken for uploads
        assert "⟳ <b>pump.txt</b> — added" in report and "bad&lt;b&gt;.pdf" in report
        status = services.sync.status("local", "manuals")
        later = datetime.now(timezone.utc) + timedelta(minutes=2, seconds=5)
        assert "2 min ago" in format_badge(status, "en", now=later)
        assert "2 分钟前" in format_badge(status, "zh", now=later)
        from webui.app import build_app

        assert build_app(services) is not None  # the tab builds with the badge and its timer
    finally:
        services.sync.stop()
        services.jobs.close()
        services.sync.close()
        services.store.close()
