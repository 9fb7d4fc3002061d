"""First start: ``python app.py`` as ``make run`` starts it, timed to a healthy server and a first answer.

Each start is a fresh process on a free loopback port with a fresh data folder. The first runs
with an empty model cache (``DCU_CHAT_CACHE_DIR``: the embedded GGUF is assembled from its PyPI
package, as on a fresh machine), the second with the cache the first left. What a really fresh
machine adds, and this cannot: the first import of each library compiling its bytecode (the
clean-clone run after ``make setup`` has that in it; see the note in README's numbers).

    python -m bench.first_start   (or make bench, section first_start)
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.live_app import LiveApp

__all__ = ["run", "markdown_rows"]

_QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _first_token_s(url: str) -> tuple[float, str]:
    started, text = time.perf_counter(), ""
    body = {"model": "default", "messages": _QUESTION, "temperature": 0, "max_tokens": 16, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"]
                if delta and delta[0]["delta"].get("content"):
                    first = time.perf_counter() - started
                    text = delta[0]["delta"]["content"]
                    break
        else:
            return float("nan"), ""
    return first, text


def _start(cache_dir: Path, timeout_s: float = 600) -> dict:
    app = LiveApp(Path(tempfile.mkdtemp(prefix="dcu-chat-first-start-")) / "data",
                  env={"DCU_CHAT_CACHE_DIR": str(cache_dir)})
    started = time.perf_counter()
    try:
        app.start(timeout=timeout_s)
    except RuntimeError as exc:  # exited, or not healthy in time: the reason and the log's tail
        return {"error": str(exc).splitlines()[0]}
    try:
        healthy = time.perf_counter() - started
        first_token, text = _first_token_s(app.url)
        backend = httpx.get(app.url + "/api/health", timeout=10).json().get("backend")
        return {"healthy_s": round(healthy, 2), "first_token_after_healthy_s": round(first_token, 2),
                "first_text": text, "backend": backend}
    finally:
        app.stop()


def run(quick: bool = False) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="dcu-chat-first-start-cache-"))
    return {"cold_cache": _start(cache), "warm_cache": _start(cache),
            "target_healthy_s": 30, "load_avg": os.getloadavg()[0]}


def markdown_rows(result: dict) -> list[list[str]]:
    rows = []
    for key, label in (("cold_cache", "empty (a fresh machine)"), ("warm_cache", "warm (later starts)")):
        start = result.get(key, {})
        if "error" in start:
            rows.append(["python app.py", label, start["error"], "", ""])
        else:
            rows.append(["python app.py", label, f"{start['healthy_s']:.1f}", f"{start['first_token_after_healthy_s']:.2f}",
                         repr(start["first_text"])])
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
