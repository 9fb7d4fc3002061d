"""Prometheus metrics of the served models: requests, tokens, latencies, queue, KV-cache reuse.

Every sample carries the ``model`` it is about (the registry's alias). Each ``ServedMetrics``
has its own ``CollectorRegistry`` (not prometheus-client's global one), so a process can build
several apps (tests do) without duplicate-metric errors. Counters and histograms are fed by each
engine's observers (one ``GenerationStats`` per finished request), hooked as each model loads;
the queue, cache and model-info samples read the models in memory when scraped.
``metrics_for(models)`` returns the one instance attached to a model registry.
"""

from __future__ import annotations

import threading

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    SummaryMetricFamily,
)

from engine.stats import GenerationStats

__all__ = ["ServedMetrics", "metrics_for", "CONTENT_TYPE_LATEST"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class ServedMetrics:
    def __init__(self, models, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r, m = self.registry, ["model"]
        self.requests = Counter("dcu_chat_requests", "Finished chat requests by finish reason",
                                [*m, "finish_reason"], registry=r)
        self.prompt_tokens = Counter("dcu_chat_prompt_tokens", "Prompt tokens of finished requests", m, registry=r)
        self.completion_tokens = Counter("dcu_chat_completion_tokens", "Generated tokens", m, registry=r)
        self.cached_tokens = Counter("dcu_chat_cached_tokens", "Prompt tokens served from the KV cache (not prefilled)",
                                     m, registry=r)
        self.cache_hits = Counter("dcu_chat_kv_cache_hits", "Requests that reused a cached prompt prefix", m,
                                  registry=r)
        self.ttft = Histogram("dcu_chat_time_to_first_token_seconds", "Time to first token (after the queue)", m,
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.latency = Histogram("dcu_chat_request_duration_seconds", "Request time on the model, queue excluded", m,
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("dcu_chat_queue_wait_seconds", "Time spent waiting for the model", m,
                                    buckets=_LATENCY_BUCKETS, registry=r)
        self.decode_rate = Histogram("dcu_chat_decode_tokens_per_second", "Decoding speed of one request", m,
                                     buckets=_RATE_BUCKETS, registry=r)
        r.register(_LiveModels(models))
        models.on_load.append(self._hook)
        for alias, engine in models.loaded().items():
            self._hook(alias, engine)

    def _hook(self, alias: str, engine) -> None:
        for series in (self.prompt_tokens, self.completion_tokens, self.cached_tokens, self.cache_hits, self.ttft,
                       self.latency, self.queue_wait, self.decode_rate):
            series.labels(alias)  # present (at 0) from the model's load, not only after its first answer
        engine.observers.append(lambda stats: self.observe(stats, alias))

    def observe(self, stats: GenerationStats, model: str) -> None:
        self.requests.labels(model=model, finish_reason=stats.finish_reason).inc()
        self.prompt_tokens.labels(model).inc(stats.prompt_tokens)
        self.completion_tokens.labels(model).inc(stats.completion_tokens)
        self.cached_tokens.labels(model).inc(stats.cached_tokens)
        if stats.cached_tokens:
            self.cache_hits.labels(model).inc()
        self.queue_wait.labels(model).observe(stats.queue_s)
        if stats.completion_tokens:
            self.ttft.labels(model).observe(stats.ttft_s)
            self.latency.labels(model).observe(stats.total_s)
        if stats.tokens_per_s > 0:
            self.decode_rate.labels(model).observe(stats.tokens_per_s)

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        return generate_latest(self.registry)


class _LiveModels:
    """Samples read at scrape time from the models in memory: queue, batch, KV cache, model info."""

    _GAUGES = (
        ("dcu_chat_queue_depth", "Requests waiting for the model", lambda s: s.waiting),
        ("dcu_chat_active_requests", "Requests running on the model", lambda s: s.running),
        ("dcu_chat_batch_size_peak", "Largest decoding batch so far", lambda s: s.backend.peak_batch),
        ("dcu_chat_kv_cache_bytes", "Bytes of KV cache kept for reuse",
         lambda s: s.backend.kv_cache.bytes if s.backend.kv_cache else 0),
        ("dcu_chat_kv_cache_entries", "Conversations with a kept KV cache",
         lambda s: s.backend.kv_cache.entries if s.backend.kv_cache else 0),
    )

    def __init__(self, models) -> None:
        self._models = models

    def describe(self):
        return []  # samples change with what is loaded: nothing fixed to check at registration

    def collect(self):
        statuses = {alias: engine.status() for alias, engine in self._models.loaded().items()}
        for name, documentation, pick in self._GAUGES:
            family = GaugeMetricFamily(name, documentation, labels=["model"])
            for alias, status in statuses.items():
                family.add_metric([alias], float(pick(status)))
            yield family
        info = InfoMetricFamily("dcu_chat_model", "The models in memory",
                                labels=["model", "backend", "device", "dtype", "quantization"])
        for alias, status in statuses.items():
            i = status.info
            info.add_metric([alias, str(i.backend), str(i.device), str(i.dtype), str(i.quantization or "none")],
                            {"name": str(i.model)})
        yield info
        yield from _replica_families(statuses)


def _replica_families(statuses: dict):
    """Each upstream server of the remote models (engine/backends/replica_pool.py), labelled by host:port."""
    labels = ["model", "replica"]
    up = GaugeMetricFamily("dcu_chat_replica_up", "1 while a remote model's server answers its health checks", labels=labels)
    flight = GaugeMetricFamily("dcu_chat_replica_in_flight", "Requests on a remote model's server now", labels=labels)
    requests = CounterMetricFamily("dcu_chat_replica_requests", "Requests sent to a remote model's server", labels=labels)
    errors = CounterMetricFamily("dcu_chat_replica_errors", "Requests that failed on a remote model's server",
                                 labels=labels)
    latency = SummaryMetricFamily("dcu_chat_replica_request_duration_seconds",
                                  "Time of answered requests on a remote model's server", labels=labels)
    for alias, status in statuses.items():
        for replica in status.backend.replicas:
            key = [alias, replica["name"]]
            up.add_metric(key, 1.0 if replica["up"] else 0.0)
            flight.add_metric(key, float(replica["in_flight"]))
            requests.add_metric(key, float(replica["requests"]))
            errors.add_metric(key, float(replica["errors"]))
            latency.add_metric(key, count_value=replica["finished"], sum_value=replica["latency_sum_s"])
    yield from (up, flight, requests, errors, latency)


_attach_lock = threading.Lock()


def metrics_for(models) -> ServedMetrics:
    """The metrics of the model registry ``models``, created (and hooked) on first use. They live
    on the registry itself, so they go when it goes."""
    with _attach_lock:
        metrics = getattr(models, "metrics", None)
        if metrics is None:
            metrics = models.metrics = ServedMetrics(models)
        return metrics
