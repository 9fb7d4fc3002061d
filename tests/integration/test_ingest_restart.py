"""A real restart during a background upload: the app is killed (SIGKILL) while the job embeds,
started again on the same data dir, and the job reads failed while the collection is as it was."""

from __future__ import annotations

import time

import httpx
from docs_support import make_pdf

LONG = [f"Chapter {n}. Valve V-{n * 7} in pump room {n % 13} is inspected every {n % 50 + 2} weeks "
        f"by the maintenance crew; the Kestrel turbine log is kept in cabinet {n}." for n in range(1, 201)]
SHORT = ["Harbor Pump Company. The warranty period for the X200 pump is 36 months from delivery."]


def test_a_restart_during_a_background_upload_fails_the_job_and_keeps_the_collection(launch_app):
    app = launch_app()
    with httpx.Client(base_url=app.url, timeout=120) as api:
        assert api.post("/api/collections/default/documents",
                        files=[("files", ("short.pdf", make_pdf(SHORT), "application/pdf"))]).status_code == 200
        before = api.get("/api/collections/default/documents").json()
        response = api.post("/api/collections/default/documents", params={"background": "true"},
                            files=[("files", ("long.pdf", make_pdf(LONG), "application/pdf"))])
        assert response.status_code == 202
        job_id = response.json()["job"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill it while it embeds: parsed, nothing written yet
            job = api.get(f"/api/jobs/{job_id}").json()
            if job["status"] == "running" and job["progress"] >= 0.35:
                break
            assert job["status"] in ("queued", "running"), job
            time.sleep(0.2)
        assert job["progress"] < 0.9, job
    app.proc.kill()
    app.proc.wait()

    again = launch_app(data_dir=app.data_dir)
    with httpx.Client(base_url=again.url, timeout=120) as api:
        job = api.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "failed" and "restarted" in job["errors"][0]["error"], job
        assert job["errors"][0]["name"] == "long.pdf" and job["documents"] == []
        assert api.get("/api/collections/default/documents").json() == before
        hits = api.post("/api/collections/default/search",
                        json={"query": "Kestrel turbine log cabinet", "top_k": 5}).json()["hits"]
        assert all(h["source"] != "long.pdf" for h in hits)
        assert not (again.data_dir / "jobs" / job_id).exists()  # the spooled upload is gone
