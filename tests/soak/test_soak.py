"""Soak: a dedicated app on loopback under a burst of mixed traffic, bounded in count and time.

20 concurrent ``/v1/chat/completions`` (max_tokens <= 8, every other one streamed), two chats
through the Gradio ``chat`` event (saved as conversations), document uploads and session imports,
all at once. Afterwards: every request either succeeded or got a clear "busy" answer (429/503),
every document and conversation is there, the server still answers, and its memory (RSS of the
app's process, sampled throughout) grew by less than 1.5 GiB over the warm state.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

import httpx
import psutil
import pytest
from docs_support import make_pdf

pytestmark = pytest.mark.slow

CHATS = 20
UI_CHATS = 2
IMPORTS = 4
RUN_DEADLINE_S = 240  # the whole burst; about a minute on an idle 2-core CPU
REQUEST_TIMEOUT_S = 200
RSS_GROWTH_LIMIT = int(1.5 * 1024**3)
BUSY = (429, 503)
TAG = uuid.uuid4().hex[:8]  # marks this run's documents and conversations
DOCS = {
    f"soak-{TAG}-orchard.txt": b"The orchard on Fenwick Hill grows 340 pear trees and 120 quince trees.",
    f"soak-{TAG}-ferry.md": b"# Ferry timetable\n\nThe night ferry to Skerrow leaves the harbour at 23:40 every Tuesday.",
    f"soak-{TAG}-observatory.pdf": make_pdf([
        "The Kestrel observatory sits 2100 metres above sea level.",
        "Its main telescope has a mirror 1.8 metres across, polished in 1987.",
    ]),
}


class RssSampler(threading.Thread):
    """Samples the app process's resident memory until stopped."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.every_s = every_s
        self.samples: list[int] = []
        self._stop_event = threading.Event()

    def rss(self) -> int:
        return self.process.memory_info().rss

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append(self.rss())
            self._stop_event.wait(self.every_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def busy_or_fail(response: httpx.Response, what: str) -> str:
    """A non-200 answer must be a clear 'busy' (429/503 with a message); returns 'busy'."""
    assert response.status_code in BUSY, f"{what}: HTTP {response.status_code}: {response.text[:500]}"
    message = response.json()["error"]["message"]
    assert message and ("busy" in message.lower() or response.status_code == 503), f"{what}: unclear {message!r}"
    return "busy"


def api_chat(http: httpx.Client, n: int) -> str:
    body = {"model": "default", "max_tokens": 4 + n % 5, "temperature": 0,
            "messages": [{"role": "user", "content": f"Soak request {n}: say hello."}]}
    what = f"chat {n}"
    if n % 2:  # streamed
        with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
            if response.status_code != 200:
                response.read()
                return busy_or_fail(response, what)
            events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        assert events and events[-1] == "[DONE]", f"{what}: stream ended without [DONE]: {events[-3:]}"
        chunks = [json.loads(e) for e in events[:-1]]
        errors = [c for c in chunks if "error" in c]
        assert not errors, f"{what}: error event {errors}"
        assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length"), f"{what}: {chunks[-1]}"
        return "ok"
    response = http.post("/v1/chat/completions", json=body)
    if response.status_code != 200:
        return busy_or_fail(response, what)
    data = response.json()
    assert isinstance(data["choices"][0]["message"]["content"], str)
    assert 1 <= data["usage"]["completion_tokens"] <= 8, f"{what}: usage {data['usage']}"
    return "ok"


def upload(http: httpx.Client, name: str, data: bytes) -> str:
    response = http.post("/api/collections/default/documents", files=[("files", (name, data))])
    if response.status_code != 200:
        return busy_or_fail(response, f"upload {name}")
    body = response.json()
    assert not body["errors"] and [d["name"] for d in body["documents"]] == [name], body
    return "ok"


def import_session(http: httpx.Client, n: int) -> str:
    messages = [{"role": "user", "content": f"soak {TAG} imported {n}"}, {"role": "assistant", "content": "Noted."}]
    response = http.post("/api/sessions/import", json={"title": f"soak {TAG} imported {n}", "messages": messages})
    assert response.status_code == 201, f"import {n}: HTTP {response.status_code}: {response.text[:300]}"
    return "ok"


def ui_chat(url: str, n: int) -> str:
    from gradio_client import Client

    client = Client(url, verbose=False)  # its own browser session: its own saved conversation
    display, box = client.predict(f"soak {TAG} ui chat {n}: say hello", api_name="/chat",
                                  max_new_tokens=16, temperature=0)
    assert box == "" and display[-1]["role"] == "assistant", display
    return "ok"


@pytest.fixture(scope="module")
def soak_app(launch_app):
    app = launch_app("--max-queue", "64")
    assert app.url.startswith("http://127.0.0.1:"), app.url  # loopback only
    return app


def test_mixed_burst_loses_nothing_and_memory_stays_bounded(soak_app):
    app = soak_app
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=app.url, timeout=REQUEST_TIMEOUT_S, limits=limits) as http:
        # Warm state: the model has answered and the embedder has embedded once.
        assert http.post("/v1/chat/completions", json={
            "model": "default", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}).status_code == 200
        assert upload(http, f"soak-{TAG}-warmup.txt", b"Warm-up document for the soak test.") == "ok"
        sampler = RssSampler(app.proc.pid)
        baseline = sampler.rss()
        sampler.start()

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CHATS + len(DOCS) + IMPORTS + UI_CHATS) as pool:
            futures = {pool.submit(api_chat, http, n): f"chat {n}" for n in range(CHATS)}
            futures |= {pool.submit(upload, http, name, data): f"upload {name}" for name, data in DOCS.items()}
            futures |= {pool.submit(import_session, http, n): f"import {n}" for n in range(IMPORTS)}
            futures |= {pool.submit(ui_chat, app.url, n): f"ui chat {n}" for n in range(UI_CHATS)}
            done, pending = wait(futures, timeout=RUN_DEADLINE_S)
            for future in pending:
                future.cancel()
            outcomes = {futures[f]: f.result() for f in done}  # re-raises the first failed assertion
        elapsed = time.monotonic() - started
        sampler.stop()
        assert not pending, f"not finished in {RUN_DEADLINE_S} s: {sorted(futures[f] for f in pending)}"

        busy = sorted(k for k, v in outcomes.items() if v == "busy")
        peak = max(sampler.samples + [sampler.rss()])
        final = sampler.rss()
        print(f"\nsoak: {len(outcomes)} requests in {elapsed:.0f} s, busy: {busy or 'none'}; RSS baseline "
              f"{baseline / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB, final {final / 2**30:.2f} GiB")
        assert len(busy) < CHATS, "every chat was refused as busy with a queue of 64"

        # The server still answers, and nothing was lost.
        assert http.get("/api/health").json()["status"] == "ok"
        names = {d["name"] for d in http.get("/api/collections/default/documents").json()["documents"]}
        uploaded = {k.removeprefix("upload ") for k, v in outcomes.items() if k.startswith("upload") and v == "ok"}
        assert uploaded <= names, f"missing documents: {uploaded - names}"
        hits = http.post("/api/collections/default/search", json={"query": "When does the night ferry leave?",
                                                                   "top_k": 3}).json()["hits"]
        if f"soak-{TAG}-ferry.md" in uploaded:
            assert hits and hits[0]["source"] == f"soak-{TAG}-ferry.md", hits

        sessions = http.get("/api/sessions", params={"q": f"soak {TAG}"}).json()["sessions"]
        titles = [s["title"] for s in sessions]
        for n in range(IMPORTS):
            assert f"soak {TAG} imported {n}" in titles, titles
        for n in range(UI_CHATS):
            if outcomes.get(f"ui chat {n}") != "ok":
                continue
            match = [s for s in sessions if f"ui chat {n}" in s["title"]]
            assert len(match) == 1, f"ui chat {n}: conversations {titles}"
            saved = http.get(f"/api/sessions/{match[0]['id']}").json()["messages"]
            assert [m["role"] for m in saved] == ["user", "assistant"] and saved[1]["content"].strip(), saved

        assert peak - baseline < RSS_GROWTH_LIMIT, f"RSS grew by {(peak - baseline) / 2**30:.2f} GiB"
        assert final - baseline < RSS_GROWTH_LIMIT
