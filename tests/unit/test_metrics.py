"""Prometheus metrics: counters after a request, /metrics in text format, one registry per engine."""

from __future__ import annotations

import pytest
from fakes import FakeEngine
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.metrics import EngineMetrics, metrics_for
from engine.stats import GenerationStats
from webui.metrics_routes import include_metrics_routes
from webui.services import Services

USER = [{"role": "user", "content": "hello tell me a story about a dragon"}]


def sample(text: str, name: str) -> float:
    """The value of one sample line (``name`` includes labels, e.g. ``x_total{a="b"}``)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


@pytest.fixture()
def engine(tiny_model_dir):
    return Engine.load(EngineConfig(model=str(tiny_model_dir), device="cpu"))


def test_metrics_route_reports_counters_after_a_request(engine):
    app = FastAPI()
    include_metrics_routes(app, Services(engine=engine))
    client = TestClient(app)
    history = USER
    text, _ = engine.chat(history, SamplingParams(temperature=0, max_new_tokens=6), session_id="m")
    history = USER + [{"role": "assistant", "content": text}, {"role": "user", "content": "and then"}]
    _, stats = engine.chat(history, SamplingParams(temperature=0, max_new_tokens=6), session_id="m")

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert sample(body, 'dcu_chat_requests_total{finish_reason="length"}') == 2
    assert sample(body, "dcu_chat_completion_tokens_total") == 12
    assert sample(body, "dcu_chat_prompt_tokens_total") > 10
    assert sample(body, "dcu_chat_cached_tokens_total") == stats.cached_tokens > 0
    assert sample(body, "dcu_chat_kv_cache_hits_total") == 1
    assert sample(body, "dcu_chat_time_to_first_token_seconds_count") == 2
    assert sample(body, "dcu_chat_request_duration_seconds_count") == 2
    assert sample(body, "dcu_chat_queue_depth") == 0 and sample(body, "dcu_chat_active_requests") == 0
    assert sample(body, "dcu_chat_kv_cache_entries") == 1 and sample(body, "dcu_chat_kv_cache_bytes") > 0
    assert 'dcu_chat_model_info{backend="transformers"' in body


def test_each_engine_has_its_own_registry_and_is_hooked_once(engine, tiny_engine):
    first, second = metrics_for(engine), metrics_for(tiny_engine)
    assert first is metrics_for(engine) and first.registry is not second.registry
    assert engine.observers.count(first.observe) == 1
    engine.chat(USER, SamplingParams(temperature=0, max_new_tokens=3))
    assert sample(first.render().decode(), "dcu_chat_completion_tokens_total") == 3
    assert sample(second.render().decode(), "dcu_chat_completion_tokens_total") == 0


def test_cancelled_while_waiting_and_engines_without_queues_are_counted():
    metrics = EngineMetrics(FakeEngine())  # the UI tests' fake engine: no queue, no backend
    metrics.observe(GenerationStats(finish_reason="cancelled"))
    body = metrics.render().decode()
    assert sample(body, 'dcu_chat_requests_total{finish_reason="cancelled"}') == 1
    assert sample(body, "dcu_chat_time_to_first_token_seconds_count") == 0
    assert sample(body, "dcu_chat_queue_depth") == 0
