"""The remote backend against llama.cpp's own HTTP server (not our app), and a pool of them.

Each llama.cpp server runs in a child process (bench/llama_servers.py) with one thread, so a
replica can really die (SIGKILL: the port stops accepting, its streams break) and come back on
the same port. Gemma 3 270M serves plain streaming; Qwen2.5-Coder-0.5B (the embedded default)
serves JSON schema and tool calls. Every wait is bounded.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from openai_support import wait_until

from bench.llama_servers import LlamaServer, gemma_path, qwen_path
from engine.backends.openai import OpenAIBackend
from engine.config import EngineConfig, SamplingParams
from engine.errors import RemoteError
from engine.stats import GenerationStats

pytest.importorskip("xllamacpp")

PROMPT = [{"role": "user", "content": "Write a long story about a dragon and a king."}]


@pytest.fixture(scope="module")
def gemma_pair(tmp_path_factory):
    logs = tmp_path_factory.mktemp("llama-logs")
    servers = [LlamaServer(gemma_path(), n_ctx=1024, n_parallel=2, log_dir=logs) for _ in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def collect(backend, params, cancel=None) -> tuple[str, GenerationStats]:
    parts, stats = [], None
    for item in backend.stream_chat(PROMPT, params, None, cancel or threading.Event()):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            parts.append(item)
    return "".join(parts), stats


def direct(server: LlamaServer, **fields) -> dict:
    body = {"messages": PROMPT, "temperature": 0, **fields}
    return httpx.post(server.v1 + "/chat/completions", json=body, timeout=120).json()


# --- one llama.cpp server: what passes through ---

def test_streaming_usage_max_tokens_and_stop_pass_through(gemma_pair):
    server = gemma_pair[0]
    backend = OpenAIBackend.load(EngineConfig(backend="openai", base_url=server.v1))
    try:
        direct(server, max_tokens=1)  # warm llama.cpp's prompt cache, so both runs below compute alike
        theirs = direct(server, max_tokens=12)
        text, stats = collect(backend, SamplingParams(temperature=0, max_new_tokens=12))
        assert text == theirs["choices"][0]["message"]["content"]  # greedy: the same text, streamed
        assert stats.completion_tokens == theirs["usage"]["completion_tokens"] == 12  # llama.cpp's usage
        assert stats.prompt_tokens == theirs["usage"]["prompt_tokens"] and stats.finish_reason == "length"
        assert "approximate_usage" not in stats.extra
        # a stop string from the middle of that answer: the text ends before it, as llama.cpp's does
        stop = text.strip()[len(text.strip()) // 2:][:3]
        cut = direct(server, max_tokens=12, stop=[stop])["choices"][0]["message"]["content"]
        ours, stats = collect(backend, SamplingParams(temperature=0, max_new_tokens=12, stop=(stop,)))
        assert ours == cut and stop not in ours and stats.finish_reason == "stop"
    finally:
        backend.close()


def test_closing_our_stream_stops_the_servers_generation(gemma_pair):
    server = gemma_pair[0]
    backend = OpenAIBackend.load(EngineConfig(backend="openai", base_url=server.v1))
    try:
        before = server.metric("llamacpp:tokens_predicted_total")
        stream = backend.stream_chat(PROMPT, SamplingParams(temperature=0, max_new_tokens=400), None,
                                     threading.Event())
        for _ in range(3):
            next(stream)
        assert server.busy_slots() == 1  # generating
        stream.close()  # a Stop button, or a client that went away
        assert wait_until(lambda: server.busy_slots() == 0, timeout=10)
        time.sleep(0.5)
        assert server.metric("llamacpp:tokens_predicted_total") - before < 200  # far from the 400 asked
    finally:
        backend.close()


@pytest.fixture(scope="module")
def qwen_app(tmp_path_factory, launch_app):
    server = LlamaServer(qwen_path(), n_ctx=2048, n_parallel=1, log_dir=tmp_path_factory.mktemp("qwen-log"))
    server.start()
    try:
        yield launch_app("--model", f"coder=,backend=openai,base_url={server.v1}")
    finally:
        server.stop()


def test_json_schema_passes_through_and_llamacpp_enforces_it(qwen_app):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    body = {"model": "coder", "temperature": 0, "max_tokens": 60,
            "messages": [{"role": "user", "content": "The largest city of Japan and its population, as JSON."}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}}
    answer = httpx.post(qwen_app.url + "/v1/chat/completions", json=body, timeout=180).json()
    data = json.loads(answer["choices"][0]["message"]["content"])
    assert set(data) == {"city", "population"} and isinstance(data["population"], int)


def test_tool_calls_pass_through(qwen_app):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    body = {"model": "coder", "temperature": 0, "max_tokens": 80, "tools": tools,
            "messages": [{"role": "user", "content": "What is the weather in Paris? Use the tool."}]}
    answer = httpx.post(qwen_app.url + "/v1/chat/completions", json=body, timeout=180).json()
    message = answer["choices"][0]["message"]
    assert answer["choices"][0]["finish_reason"] == "tool_calls", message
    call = message["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"])["city"] == "Paris"


# --- two llama.cpp servers behind one model name ---

@pytest.fixture(scope="module")
def pool_app(gemma_pair, launch_app):
    a, b = gemma_pair
    return launch_app("--model", f"team=,backend=openai,base_url={a.v1};{b.v1}")


def replicas(app) -> dict[str, dict]:
    rows = httpx.get(app.url + "/api/health", timeout=10).json()["models"][0]["replicas"]
    return {r["name"]: r for r in rows}


def chat(app, max_tokens: int = 6, stream: bool = False) -> httpx.Response:
    body = {"model": "team", "messages": PROMPT, "max_tokens": max_tokens, "temperature": 0, "stream": stream}
    return httpx.post(app.url + "/v1/chat/completions", json=body, timeout=120)


def test_requests_spread_over_both_servers_and_both_show(pool_app, gemma_pair):
    before = [s.metric("llamacpp:tokens_predicted_total") for s in gemma_pair]
    threads = [threading.Thread(target=chat, args=(pool_app,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    after = [s.metric("llamacpp:tokens_predicted_total") for s in gemma_pair]
    assert all(a > b for a, b in zip(after, before, strict=True))  # both servers generated (their own counts)
    state = replicas(pool_app)
    names = [f"127.0.0.1:{s.port}" for s in gemma_pair]
    assert all(state[n]["up"] and state[n]["requests"] >= 1 for n in names)
    assert sum(state[n]["requests"] for n in names) >= 6
    config = httpx.get(pool_app.url + "/config", timeout=30).text  # the System tab's panel, as the page gets it
    assert "Model servers (replicas)" in config and all(n in config for n in names)


def test_a_killed_replica_fails_its_stream_clearly_and_others_keep_answering(pool_app, gemma_pair):
    events: list[str] = []

    def long_stream():
        with httpx.stream("POST", pool_app.url + "/v1/chat/completions", timeout=120, json={
                "model": "team", "messages": PROMPT, "max_tokens": 300, "temperature": 0, "stream": True}) as r:
            events.extend(line for line in r.iter_lines() if line.startswith("data:"))

    thread = threading.Thread(target=long_stream)
    thread.start()
    assert wait_until(lambda: len(events) >= 3, timeout=60)
    busy = next(s for s in gemma_pair if replicas(pool_app)[f"127.0.0.1:{s.port}"]["in_flight"])
    other = next(s for s in gemma_pair if s is not busy)
    busy.kill()
    thread.join(30)
    assert not thread.is_alive()  # no hang
    errors = [json.loads(e[5:])["error"]["message"] for e in events if e.startswith('data: {"error"')]
    assert len(errors) == 1, events[-3:]
    error = errors[0]
    assert f"127.0.0.1:{busy.port} stopped in the middle of this answer" in error and "cut off" in error
    for _ in range(3):  # new requests keep succeeding, on the other server
        assert chat(pool_app).status_code == 200
    state = replicas(pool_app)
    assert not state[f"127.0.0.1:{busy.port}"]["up"] and state[f"127.0.0.1:{other.port}"]["up"]

    other.kill()  # now every server is down: 503 that says so
    response = chat(pool_app)
    if response.status_code == 502:  # the first try found it gone (breaker opens), the next one knows
        response = chat(pool_app)
    assert response.status_code == 503 and "are down" in response.json()["error"]["message"]

    busy.start(), other.start()  # brought back: they rejoin once their health checks answer
    assert wait_until(lambda: all(r["up"] for r in replicas(pool_app).values()), timeout=30)
    before = replicas(pool_app)[f"127.0.0.1:{busy.port}"]["requests"]
    for _ in range(4):
        assert chat(pool_app).status_code == 200
    assert replicas(pool_app)[f"127.0.0.1:{busy.port}"]["requests"] > before


def test_mid_answer_failure_in_the_backend_names_the_replica(gemma_pair):
    """The same, one level down: the backend's stream raises RemoteError naming host:port."""
    a, b = gemma_pair
    backend = OpenAIBackend.load(EngineConfig(backend="openai", base_url=f"{a.v1};{b.v1}"))
    try:
        stream = backend.stream_chat(PROMPT, SamplingParams(temperature=0, max_new_tokens=300), None,
                                     threading.Event())
        next(stream)
        victim = next(s for s in gemma_pair if s.busy_slots())
        victim.kill()
        started = time.monotonic()
        with pytest.raises(RemoteError, match=f"127.0.0.1:{victim.port} stopped in the middle"):
            list(stream)
        assert time.monotonic() - started < 15
    finally:
        backend.close()
        for server in gemma_pair:
            if not server.alive():
                server.start()
