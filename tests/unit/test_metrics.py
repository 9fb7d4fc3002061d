"""Prometheus metrics: counters after a request, /metrics in text format, samples per served model."""

from __future__ import annotations

import pytest
from fakes import FakeEngine
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.metrics import ServedMetrics, metrics_for
from engine.models import ModelRegistry
from engine.stats import GenerationStats
from webui.metrics_routes import include_metrics_routes
from webui.services import Services

USER = [{"role": "user", "content": "hello tell me a story about a dragon"}]


def sample(text: str, name: str, model: str | None = None) -> float:
    """The value of one sample (``name`` may carry labels, e.g. ``x_total{a="b"}``) of ``model`` (default:
    the only model there is)."""
    base, _, labels = name.partition("{")
    found = []
    for line in text.splitlines():
        if line.startswith(base + "{"):
            line_labels = line[len(base) + 1:line.index("}")]
            wanted = [part for part in labels.rstrip("}").split(",") if part]
            if all(part in line_labels.split(",") for part in wanted) and \
                    (model is None or f'model="{model}"' in line_labels):
                found.append(float(line.split()[-1]))
    if len(found) != 1:
        raise AssertionError(f"{name} (model {model}): {len(found)} samples in metrics:\n{text}")
    return found[0]


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
    info = next(line for line in body.splitlines() if line.startswith("dcu_chat_model_info{"))
    assert 'backend="transformers"' in info and f'model="{engine.info.model}"' in info


def test_each_registry_has_its_own_metrics_hooked_once_per_engine(engine, tiny_engine):
    models, others = ModelRegistry.single(engine, "a"), ModelRegistry.single(tiny_engine, "b")
    first, second = metrics_for(models), metrics_for(others)
    assert first is metrics_for(models) and first.registry is not second.registry
    assert len(engine.observers) == 1
    engine.chat(USER, SamplingParams(temperature=0, max_new_tokens=3))
    assert sample(first.render().decode(), "dcu_chat_completion_tokens_total", "a") == 3
    assert sample(second.render().decode(), "dcu_chat_completion_tokens_total", "b") == 0


def test_cancelled_while_waiting_and_engines_without_queues_are_counted():
    metrics = ServedMetrics(ModelRegistry.single(FakeEngine()))  # the UI tests' fake: no queue, no backend
    metrics.observe(GenerationStats(finish_reason="cancelled"), "fake-model")
    body = metrics.render().decode()
    assert sample(body, 'dcu_chat_requests_total{finish_reason="cancelled"}') == 1
    assert sample(body, "dcu_chat_time_to_first_token_seconds_count") == 0
    assert sample(body, "dcu_chat_queue_depth") == 0
