"""Several servers behind one remote model: the syntax, least-busy choice, the retry before the first
token, the circuit breaker and the probes, with scripted servers (httpx.MockTransport); the same
against real llama.cpp servers is tests/integration/test_replica_pool_live.py."""

from __future__ import annotations

import json
import re
import threading
import time

import httpx
import pytest

from engine.backends.openai import OpenAIBackend
from engine.backends.replica_pool import RECHECK_S
from engine.config import EngineConfig, SamplingParams
from engine.errors import ConfigError, RemoteError, ReplicasDown
from engine.stats import GenerationStats
from engine.upstreams import Upstream, upstreams

USER = [{"role": "user", "content": "Say hello"}]
MODELS = {"object": "list", "data": [{"id": "m1", "object": "model", "max_model_len": 4096}]}
A, B = "http://a.test/v1", "http://b.test/v1"


def sse(*texts: str) -> bytes:
    events = [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]} for t in texts]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": len(texts)}})
    return ("".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n").encode()


class Servers:
    """Scripted servers by host: each answers per its mode ('ok', 'refuse', '500', 'cut')."""

    def __init__(self, **modes: str) -> None:
        self.modes = dict(modes)
        self.chats: list[str] = []
        self.keys: dict[str, str | None] = {}
        self.gate: dict[str, threading.Event] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        mode = self.modes[host]
        if mode == "explode":
            raise KeyError("unexpected")
        if mode == "refuse":
            raise httpx.ConnectError("Connection refused", request=request)
        self.keys[host] = request.headers.get("authorization")
        if request.url.path == "/health":
            return httpx.Response(404 if host == "b" else 200, json={"status": "ok"})
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        self.chats.append(host)
        if mode == "500":
            return httpx.Response(500, json={"error": {"message": "CUDA error: out of memory"}})
        if mode == "cut":
            def body():
                yield sse("Hello", " there")[:-80]  # some pieces, then the server dies
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
            return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})
        if host in self.gate:
            self.gate[host].wait(5)
        return httpx.Response(200, content=sse("Hello", f" from {host}"), headers={"content-type": "text/event-stream"})


def pool_backend(servers: Servers, urls=(A, B), key: str | None = None) -> OpenAIBackend:
    config = EngineConfig(backend="openai", base_url=";".join(urls), remote_api_key=key)
    return OpenAIBackend.load(config, transport=httpx.MockTransport(servers))


def run(backend, cancel=None) -> tuple[str, GenerationStats]:
    parts, stats = [], None
    for item in backend.stream_chat(USER, SamplingParams(), None, cancel or threading.Event()):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            parts.append(item)
    return "".join(parts), stats


def replicas(backend) -> dict[str, dict]:
    return {r["name"]: r for r in backend.state().replicas}


# --- syntax ---

def test_base_url_takes_several_urls_and_keys_one_for_all_or_one_each():
    assert upstreams(f"{A}; {B}/", "K") == [Upstream(A, "K"), Upstream(B, "K")]
    assert upstreams(f"{A};{B}", "K1;") == [Upstream(A, "K1"), Upstream(B, None)]
    with pytest.raises(ConfigError, match="2 keys.*3 URLs"):
        upstreams(f"{A};{B};http://c.test/v1", "K1;K2")
    with pytest.raises(ConfigError, match="http:// or https://"):
        upstreams(f"{A};b.test/v1", None)
    with pytest.raises(ConfigError, match="twice"):
        upstreams(f"{A};{A}", None)


def test_toml_list_with_tables_and_the_model_option():
    config = EngineConfig(backend="openai", base_url=[A, {"url": B, "api_key": "KB"}], remote_api_key="KA")
    assert (config.base_url, config.remote_api_key) == (f"{A};{B}", "KA;KB")
    with pytest.raises(ConfigError, match="unknown key"):
        EngineConfig(backend="openai", base_url=[{"url": A, "key": "x"}])
    from app_settings import build_model_specs, parser, resolve_settings

    args = parser().parse_args(["--model", f"team=,backend=openai,base_url={A};{B},remote_api_key=K1;K2"])
    spec = build_model_specs(resolve_settings(args, environ={}))[0]
    assert spec.alias == "team" and upstreams(spec.config.base_url, spec.config.remote_api_key) == \
        [Upstream(A, "K1"), Upstream(B, "K2")]


# --- choosing, retrying, breaking ---

def test_each_replica_gets_its_own_key_and_requests_spread_by_load():
    servers = Servers(a="ok", b="ok")
    backend = pool_backend(servers, key="KA;KB")
    try:
        assert servers.keys == {"a": "Bearer KA", "b": "Bearer KB"}
        assert backend.capacity == 16 and backend.info.device_name == "a.test, b.test"
        for _ in range(4):
            run(backend)
        assert sorted(servers.chats) == ["a", "a", "b", "b"]  # idle pool: fewest requests so far
        servers.gate["a"] = threading.Event()  # a is slow: its request stays in flight
        stuck = threading.Thread(target=run, args=(backend,))
        stuck.start()
        try:
            for _ in range(50):
                if replicas(backend)["a.test"]["in_flight"]:
                    break
                threading.Event().wait(0.02)
            servers.chats.clear()
            run(backend), run(backend)
            assert servers.chats == ["b", "b"]  # the busy one is passed over
        finally:
            servers.gate["a"].set()
            stuck.join(5)
        assert replicas(backend)["a.test"]["in_flight"] == 0
    finally:
        backend.close()


def test_a_failure_before_the_first_token_is_retried_on_another_replica():
    servers = Servers(a="500", b="ok")
    backend = pool_backend(servers)
    try:
        texts = [run(backend)[0] for _ in range(3)]
        assert texts == ["Hello from b"] * 3  # nobody saw a's errors
        state = replicas(backend)
        assert state["a.test"]["errors"] == 2 and not state["a.test"]["up"]  # out after two failures in a row
        assert state["b.test"]["up"] and state["b.test"]["finished"] == 3
        assert "HTTP 500" in state["a.test"]["last_error"]
        servers.modes["a"] = "ok"
        assert backend.pool.probe(backend.pool.replicas[0])  # answers again: back in
        assert replicas(backend)["a.test"]["up"]
    finally:
        backend.close()


def test_a_refused_connection_takes_the_replica_out_at_once():
    servers = Servers(a="ok", b="ok")
    backend = pool_backend(servers)
    try:
        servers.modes["a"] = "refuse"
        assert {run(backend)[0] for _ in range(2)} == {"Hello from b"}
        assert not replicas(backend)["a.test"]["up"]
    finally:
        backend.close()


def test_when_every_replica_is_down_the_request_gets_503_saying_so():
    servers = Servers(a="ok", b="ok")
    backend = pool_backend(servers)
    try:
        servers.modes.update(a="refuse", b="refuse")
        with pytest.raises(RemoteError, match="Cannot reach the model server"):
            run(backend)  # tried twice (a, then b), nothing answered
        with pytest.raises(ReplicasDown, match="All 2 model servers of this model are down.*a.test.*b.test") as err:
            run(backend)
        assert err.value.http_status == 503
    finally:
        backend.close()


def test_a_replica_that_is_down_at_start_is_probed_back_in():
    servers = Servers(a="ok", b="refuse")
    backend = pool_backend(servers)
    try:
        assert not replicas(backend)["b.test"]["up"] and backend.model == "m1"
        servers.modes["b"] = "ok"
        backend.pool.probe_all()
        assert replicas(backend)["b.test"]["up"]
        assert backend.pool.replicas[1].health_path == "models"  # b has no /health: its model list is asked
        assert backend.pool.replicas[0].health_path == "/health"
    finally:
        backend.close()


def test_a_failure_mid_answer_names_the_server_and_is_not_retried():
    servers = Servers(a="cut", b="ok")
    backend = pool_backend(servers, urls=(A,))
    try:
        stream = backend.stream_chat(USER, SamplingParams(), None, threading.Event())
        assert next(stream) == "Hello"
        with pytest.raises(RemoteError, match="a.test stopped in the middle of this answer.*cut off"):
            list(stream)
        assert servers.chats == ["a"]
    finally:
        backend.close()


def test_the_prober_thread_stops_on_close():
    backend = pool_backend(Servers(a="ok", b="ok"))
    thread = backend.pool._thread
    assert thread is not None and thread.is_alive()
    backend.close()
    assert not thread.is_alive()


# --- where people see the replicas: System tab, /api/health, /metrics ---

def test_system_tab_health_and_metrics_show_each_replica():
    from fastapi.testclient import TestClient

    from engine.engine import Engine
    from webui.api import build_api
    from webui.services import Services
    from webui.system_tab import render_markdown, system_snapshot

    servers = Servers(a="ok", b="refuse")
    engine = Engine(pool_backend(servers))
    try:
        engine.chat(USER)
        services = Services(engine=engine)
        panel = render_markdown(system_snapshot(services, smi=False))
        assert "Model servers (replicas)" in panel
        assert "`a.test` 🟢 up · in flight 0 · 1 requests · 0 errors" in panel
        assert "`b.test` 🔴 DOWN" in panel and "cannot connect" in panel
        assert "模型服务器" in render_markdown(system_snapshot(services, smi=False), "zh")
        client = TestClient(build_api(services))
        rows = client.get("/api/health").json()["models"][0]["replicas"]
        assert [(r["name"], r["up"], r["requests"]) for r in rows] == [("a.test", True, 1), ("b.test", False, 0)]
        metrics = client.get("/metrics").text
        assert re.search(r'dcu_chat_replica_up\{model="[^"]+",replica="a.test"\} 1.0', metrics)
        assert re.search(r'dcu_chat_replica_up\{model="[^"]+",replica="b.test"\} 0.0', metrics)
        assert 'dcu_chat_replica_requests_total{' in metrics and "dcu_chat_replica_request_duration_seconds_count" in metrics
    finally:
        engine.close()


def test_config_show_masks_per_replica_keys(capsys):
    import app

    app.show_config({"models": [{"alias": "team", "base_url": [A, {"url": B, "api_key": "secret-b"}]}],
                     "remote_api_key": "K1;K2"})
    shown = capsys.readouterr().out
    assert "secret-b" not in shown and "K1" not in shown and B in shown


def test_an_odd_health_answer_does_not_stop_the_prober():
    servers = Servers(a="ok", b="ok")
    backend = pool_backend(servers)
    try:
        servers.modes["b"] = "explode"  # the handler raises KeyError: not an HTTP error at all
        backend.pool.probe_all()
        backend.pool.probe_all()
        state = replicas(backend)
        assert state["a.test"]["up"] and not state["b.test"]["up"] and "health check failed" in state["b.test"]["last_error"]
    finally:
        backend.close()


def test_a_toml_models_table_takes_a_list_of_servers(tmp_path):
    from app_settings import build_model_specs, parser, resolve_settings

    path = tmp_path / "pool.toml"
    path.write_text(f'[[models]]\nalias = "team"\nbackend = "openai"\nremote_api_key = "KA"\n'
                    f'base_url = ["{A}", {{ url = "{B}", api_key = "KB" }}]\n', encoding="utf-8")
    spec = build_model_specs(resolve_settings(parser().parse_args(["--config", str(path)]), environ={}))[0]
    assert upstreams(spec.config.base_url, spec.config.remote_api_key) == [Upstream(A, "KA"), Upstream(B, "KB")]


def test_with_every_replica_down_a_request_checks_them_again_before_giving_up():
    servers = Servers(a="ok", b="ok")
    backend = pool_backend(servers)
    try:
        servers.modes.update(a="refuse", b="refuse")
        with pytest.raises(RemoteError):
            run(backend)
        assert not any(r["up"] for r in replicas(backend).values())
        servers.modes["a"] = "ok"  # back before the prober's next round (5 s)
        time.sleep(RECHECK_S + 0.1)
        assert run(backend)[0] == "Hello from a"  # found at once by the request itself
    finally:
        backend.close()
