"""Background uploads: ``POST …/documents?background=true`` -> 202 job, ``GET /api/jobs/{id}`` to done.

Real store, real SQLite job registry, real HTTP routes (TestClient); the embedder is the hashing
one slowed down (or held) so progress and restarts can be observed mid-job.
"""

from __future__ import annotations

import threading
import time

import pytest
from docs_support import REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assist.errors import JobNotFound
from assist.ingest_jobs import CANCEL_MESSAGE, RESTART_MESSAGE, STOP_MESSAGE, IngestJobs
from rag.config import RagConfig
from rag.embedding import HashingEmbedder
from rag.store import DocumentStore
from webui.jobs_api import include_jobs_api
from webui.rag_api import include_rag_api

LONG = make_pdf([f"Page {n}. The pump model X{n} needs a new filter every {n + 2} months." for n in range(30)])
REPORT = make_pdf(REPORT_PAGES)


class SlowEmbedder(HashingEmbedder):
    """Hashing vectors, a batch at a time with a pause, reporting progress like the real one.
    ``gate`` (when set) holds every batch until it is set; ``fail`` then makes it raise."""

    def __init__(self, pause: float = 0.03) -> None:
        super().__init__()
        self.pause = pause
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.fail = False

    def embed(self, texts, batch_size=32, progress=None):
        texts = list(texts)
        parts = []
        for start in range(0, len(texts), 4):
            self.started.set()
            if self.gate is not None:
                self.gate.wait(30)
                if self.fail:
                    raise RuntimeError("the process died here")
            time.sleep(self.pause)
            parts.append(super().embed(texts[start:start + 4]))
            if progress:
                progress(min(start + 4, len(texts)) / len(texts), "Embedded")
        import numpy as np

        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)


@pytest.fixture()
def services(tmp_path):
    services = make_services(tmp_path / "data", FakeEngine("ok"), embedder=SlowEmbedder())
    yield services
    services.jobs.close()
    services.store.close()


@pytest.fixture()
def client(services):
    app = FastAPI()
    include_rag_api(app, services)
    include_jobs_api(app, services)
    with TestClient(app) as client:
        yield client


def post(client, *items, background=True, collection="default"):
    files = [("files", (name, data, "application/octet-stream")) for name, data in items]
    return client.post(f"/api/collections/{collection}/documents", params={"background": background} if background
                       else None, files=files)


def wait(client, job_id: str, timeout: float = 60) -> tuple[dict, list[float]]:
    """Poll the job until it ends; returns the final body and every progress value seen."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/jobs/{job_id}").json()
        seen.append(body["progress"])
        if body["status"] in ("done", "failed"):
            return body, seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_background_upload_answers_at_once_and_its_job_moves_to_done(client, services):
    # 8 batches over ~5 s while progress is saved every 0.25 s: even a busy machine's polls see it move
    services.embedder.pause = 0.6
    response = post(client, ("long.pdf", LONG))
    assert response.status_code == 202 and set(response.json()) == {"job"}
    job_id = response.json()["job"]
    first = client.get(f"/api/jobs/{job_id}").json()
    assert first["status"] in ("queued", "running") and first["files"] == ["long.pdf"]
    body, seen = wait(client, job_id)
    assert body["status"] == "done" and body["progress"] == 1.0 and body["errors"] == []
    assert [(d["name"], d["pages"]) for d in body["documents"]] == [("long.pdf", 30)]
    assert seen == sorted(seen) and len({p for p in seen if 0 < p < 1}) >= 3  # it moved, not just 0 -> 1
    hits = client.post("/api/collections/default/search", json={"query": "pump model X17 filter"}).json()["hits"]
    assert hits[0]["source"] == "long.pdf" and hits[0]["page"] == 18
    listed = client.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job_id] and client.get("/api/jobs?active=true").json() == {"jobs": []}


def test_without_background_the_upload_stays_synchronous(client):
    response = post(client, ("report.pdf", REPORT), background=False)
    assert response.status_code == 200 and response.json()["documents"][0]["pages"] == 3


def test_a_corrupt_file_fails_its_job_and_leaves_the_collection_unchanged(client):
    wait(client, post(client, ("report.pdf", REPORT)).json()["job"])
    before = client.get("/api/collections/default/documents").json()
    body, _ = wait(client, post(client, ("broken.pdf", b"%PDF-1.4 garbage")).json()["job"])
    assert body["status"] == "failed" and body["documents"] == []
    assert body["errors"][0]["name"] == "broken.pdf" and "damaged" in body["errors"][0]["error"]
    assert client.get("/api/collections/default/documents").json() == before
    # one good file and one bad one: done, with the bad one in errors (as the synchronous call says)
    body, _ = wait(client, post(client, ("long.pdf", LONG), ("bad.exe", b"MZ")).json()["job"])
    assert body["status"] == "done" and [e["name"] for e in body["errors"]] == ["bad.exe"]


def test_jobs_queue_in_order_and_unknown_ids_are_404(client):
    ids = [post(client, (f"copy{n}.pdf", make_pdf([f"Copy {n} of the manual."] * 3))).json()["job"] for n in range(3)]
    active = client.get("/api/jobs?active=true").json()["jobs"]
    assert [j["id"] for j in active] == ids[len(ids) - len(active):]
    assert all(wait(client, i)[0]["status"] == "done" for i in ids)
    response = client.get("/api/jobs/nope")
    assert response.status_code == 404 and "no upload job" in response.json()["error"]["message"]
    assert post(client, ("x.pdf", REPORT), collection="missing").status_code == 404


def test_jobs_belong_to_their_owner(services):
    job = services.jobs.submit("alice", "default", [("report.pdf", REPORT)])
    with pytest.raises(JobNotFound):
        services.jobs.get(job.id, "bob")
    assert services.jobs.list("bob") == [] and [j.id for j in services.jobs.list("alice")] == [job.id]


def test_a_restart_during_a_job_marks_it_failed_and_leaves_the_collection_as_it_was(tmp_path):
    data = tmp_path / "data"
    first = DocumentStore(RagConfig(data_dir=data), HashingEmbedder())
    first.add_files("default", [("report.pdf", REPORT)])
    first.close()
    embedder = SlowEmbedder()
    embedder.gate = threading.Event()
    store = DocumentStore(RagConfig(data_dir=data), embedder)
    jobs = IngestJobs(store, data)
    job = jobs.submit("local", "default", [("long.pdf", LONG)])
    assert embedder.started.wait(10)  # the job is running: parsed, embedding held
    assert jobs.get(job.id, "local").status == "running"

    # "Restart": a new process opens the same data dir while the old one is gone mid-job.
    restarted = IngestJobs(DocumentStore(RagConfig(data_dir=data), HashingEmbedder()), data)
    failed = restarted.get(job.id, "local")
    assert failed.status == "failed" and failed.errors == [{"name": "long.pdf", "error": RESTART_MESSAGE}]
    embedder.fail = True  # the old worker dies where it stood
    embedder.gate.set()
    jobs.close()
    assert restarted.get(job.id, "local").status == "failed"  # the dying worker did not revive it
    fresh = DocumentStore(RagConfig(data_dir=data), HashingEmbedder())
    assert [d.name for d in fresh.list_documents("default")] == ["report.pdf"]
    assert not (data / "jobs" / job.id).exists()  # its spooled upload is gone
    restarted.close()
    store.close()
    fresh.close()


def test_stopping_the_server_ends_the_running_job_before_its_final_write(tmp_path):
    data = tmp_path / "data"
    embedder = SlowEmbedder()
    embedder.gate = threading.Event()
    store = DocumentStore(RagConfig(data_dir=data), embedder)
    jobs = IngestJobs(store, data)
    running = jobs.submit("local", "default", [("long.pdf", LONG)])
    queued = jobs.submit("local", "default", [("report.pdf", REPORT)])
    assert embedder.started.wait(10)
    threading.Timer(0.3, embedder.gate.set).start()  # let it go on once close() has begun
    jobs.close()
    again = IngestJobs(store, data)
    assert again.get(running.id, "local").errors == [{"name": "long.pdf", "error": STOP_MESSAGE}]
    assert again.get(queued.id, "local").status == "failed"
    assert store.list_documents("default") == []
    again.close()
    store.close()


def test_the_owner_cancels_a_running_and_a_queued_job_and_nothing_is_added(client, services):
    embedder = services.embedder
    embedder.gate = threading.Event()
    running = post(client, ("long.pdf", LONG)).json()["job"]  # the job's id
    queued = post(client, ("report.pdf", REPORT)).json()["job"]
    assert embedder.started.wait(10)
    threading.Timer(0.3, embedder.gate.set).start()  # the next batch reports progress: the cancel is seen there
    stopped = client.delete(f"/api/jobs/{running}")
    assert stopped.status_code == 200 and stopped.json()["status"] == "failed"
    assert stopped.json()["message"] == CANCEL_MESSAGE
    skipped = client.delete(f"/api/jobs/{queued}").json()
    assert skipped["status"] == "failed" and skipped["errors"] == [{"name": "report.pdf", "error": CANCEL_MESSAGE}]
    assert client.get("/api/collections/default/documents").json()["documents"] == []
    again = post(client, ("report.pdf", REPORT)).json()["job"]  # the same file later: indexed as usual
    done, _ = wait(client, again)
    assert done["status"] == "done" and client.delete(f"/api/jobs/{again}").json()["status"] == "done"
    assert client.delete("/api/jobs/not-a-job").status_code == 404
