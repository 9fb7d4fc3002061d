"""A folder of manuals followed by the real app (``--sync-root``), through its HTTP routes and the real model.

PUT the source, the first pass runs as a job, the manuals answer questions; editing one file
changes the answer within one pass (started by the file-system event), deleting one removes its
citations; a restart catches up with an edit made while the server was down.
"""

from __future__ import annotations

import time

import httpx
import pytest

PUMP_V1 = ("# X200 pump manual\n\nMaintenance. The intake filter of the X200 pump must be replaced every "
           "6 months. Use only genuine Harbor filters.\n")
PUMP_V2 = ("# X200 pump manual\n\nMaintenance. The intake filter of the X200 pump must be replaced every "
           "3 weeks. Use only genuine Harbor filters.\n")
PUMP_V3 = ("# X200 pump manual\n\nMaintenance. The intake filter of the X200 pump must be replaced every "
           "9 days. Use only genuine Harbor filters.\n")
KETTLE = "Model K kettle. Descale the Model K kettle with citric acid once a month in hard water areas.\n"
FILTER_Q = "How often must the intake filter of the X200 pump be replaced?"
KETTLE_Q = "How often should the Model K kettle be descaled?"


@pytest.fixture()
def folder(tmp_path):
    folder = tmp_path / "srv" / "docs" / "manuals"
    folder.mkdir(parents=True)
    (folder / "x200-pump.md").write_text(PUMP_V1)
    (folder / "kettle.txt").write_text(KETTLE)
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    return folder


def wait_for(api, predicate, what: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        source = api.get("/api/collections/manuals/source").json()
        if predicate(source):
            return source
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout} s: {source}")


def ask(api, question: str) -> dict:
    response = api.post("/api/collections/manuals/ask", json={"question": question, "top_k": 2, "max_tokens": 48})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_followed_folder_of_manuals(launch_app, folder, tmp_path):
    root = tmp_path / "srv" / "docs"
    app = launch_app("--sync-root", str(root))
    with httpx.Client(base_url=app.url, timeout=300) as api:
        refused = api.put("/api/collections/manuals/source", json={"folder": str(tmp_path)})
        assert refused.status_code == 400 and "outside the sync root" in refused.json()["error"]["message"]

        response = api.put("/api/collections/manuals/source", json={"folder": str(folder), "interval_s": 3600})
        assert response.status_code == 200, response.text
        job_id = response.json()["pass"]["job"]
        deadline = time.monotonic() + 300
        while (job := api.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["status"] == "done", job
        last = api.get("/api/collections/manuals/source").json()["last_pass"]
        assert sorted(last["added"]) == ["kettle.txt", "x200-pump.md"]
        assert [f["path"] for f in last["failed"]] == ["scan.pdf"] and last["failed"][0]["error"]

        answer = ask(api, FILTER_Q)
        assert answer["hits"][0]["source"] == "x200-pump.md" and "6 months" in answer["hits"][0]["text"]
        assert "6" in answer["answer"] or "six" in answer["answer"].lower(), answer["answer"]

        # Edit one manual: the file-system event starts a pass; the answer changes with it.
        (folder / "x200-pump.md").write_text(PUMP_V2)
        wait_for(api, lambda s: (s["last_pass"] or {}).get("updated") == ["x200-pump.md"], "the edit's pass")
        answer = ask(api, FILTER_Q)
        assert "3 weeks" in answer["hits"][0]["text"] and "6 months" not in answer["hits"][0]["text"]
        assert "3" in answer["answer"] or "three" in answer["answer"].lower(), answer["answer"]
        names = [d["name"] for d in api.get("/api/collections/manuals/documents").json()["documents"]]
        assert sorted(names) == ["kettle.txt", "x200-pump.md"]

        # Delete one: its citations go.
        assert any(h["source"] == "kettle.txt" for h in ask(api, KETTLE_Q)["hits"])
        (folder / "kettle.txt").unlink()
        wait_for(api, lambda s: (s["last_pass"] or {}).get("removed") == ["kettle.txt"], "the deletion's pass")
        assert all(h["source"] != "kettle.txt" for h in ask(api, KETTLE_Q)["hits"])
    app.stop()

    # While the server is down the manual changes again; the restarted server catches up.
    (folder / "x200-pump.md").write_text(PUMP_V3)
    again = launch_app("--sync-root", str(root), data_dir=app.data_dir)
    with httpx.Client(base_url=again.url, timeout=300) as api:
        source = wait_for(api, lambda s: (s["last_pass"] or {}).get("updated") == ["x200-pump.md"],
                          "the catch-up pass after the restart")
        assert source["folder"] == str(folder.resolve()) and source["interval_s"] == 3600
        hits = api.post("/api/collections/manuals/search", json={"query": FILTER_Q, "top_k": 1}).json()["hits"]
        assert "9 days" in hits[0]["text"]
