"""A 396-page PDF uploaded with ``background=true`` against the real app (real embedder).

The request answers 202 with a job id; the job's progress moves to done; then the document is
searchable by a fact on one of its last pages. Pages are short text pages so the test stays
reasonably fast on 2 cores; how fast ingestion is belongs to ``make bench`` (bench/ingest_bench.py).
"""

from __future__ import annotations

import time

import httpx
import pytest

PAGES = 396
NAME = "long-manual.pdf"


@pytest.fixture(scope="module")
def api(live_app):
    with httpx.Client(base_url=live_app.url, timeout=120) as client:
        yield client


def test_a_396_page_pdf_is_indexed_in_the_background(api):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for n in range(1, PAGES + 1):
        pdf.add_page()
        if n == 371:
            pdf.multi_cell(0, 6, "Emergency procedure. The spare impeller for the Goliath seawater pump is kept "
                                 "in the blue crate behind the generator.")
        else:
            pdf.multi_cell(0, 6, f"Chapter {n}. Valve V-{n * 7} in pump room {n % 13} is inspected every "
                                 f"{n % 50 + 2} weeks by the maintenance crew.")
    data = bytes(pdf.output())
    api.post("/api/collections", json={"name": "longdoc"})
    response = api.post("/api/collections/longdoc/documents", params={"background": "true"},
                        files=[("files", (NAME, data, "application/pdf"))])
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]

    seen, statuses = [], []
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        job = api.get(f"/api/jobs/{job_id}").json()
        seen.append(job["progress"])
        statuses.append(job["status"])
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.1)  # the job can finish in a few seconds: poll often enough to see it move
    assert job["status"] == "done", job
    assert job["errors"] == [] and job["documents"][0]["pages"] == PAGES
    assert seen == sorted(seen) and len({p for p in seen if 0 < p < 1}) >= 3, seen  # it moved on the way
    assert "running" in statuses

    hits = api.post("/api/collections/longdoc/search",
                    json={"query": "Where is the spare impeller for the Goliath seawater pump kept?", "top_k": 3}
                    ).json()["hits"]
    assert hits and hits[0]["source"] == NAME and hits[0]["page"] == 371
    api.delete("/api/collections/longdoc")
