"""Prometheus metrics of one engine: requests, tokens, latencies, queue, KV-cache reuse.

Each ``EngineMetrics`` has its own ``CollectorRegistry`` (not prometheus-client's global one),
so a process can build several apps (tests do) without duplicate-metric errors. Counters and
histograms are fed by the engine's observers (one ``GenerationStats`` per finished request);
gauges read the live queue and cache when scraped. ``metrics_for(engine)`` returns the one
instance attached to an engine, creating it on first use.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from engine.stats import GenerationStats

__all__ = ["EngineMetrics", "metrics_for", "CONTENT_TYPE_LATEST"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class EngineMetrics:
    def __init__(self, engine, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("dcu_chat_requests", "Finished chat requests by finish reason",
                                ["finish_reason"], registry=r)
        self.prompt_tokens = Counter("dcu_chat_prompt_tokens", "Prompt tokens of finished requests", registry=r)
        self.completion_tokens = Counter("dcu_chat_completion_tokens", "Generated tokens", registry=r)
        self.cached_tokens = Counter("dcu_chat_cached_tokens", "Prompt tokens served from the KV cache (not prefilled)",
                                     registry=r)
        self.cache_hits = Counter("dcu_chat_kv_cache_hits", "Requests that reused a cached prompt prefix", registry=r)
        self.ttft = Histogram("dcu_chat_time_to_first_token_seconds", "Time to first token (after the queue)",
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.latency = Histogram("dcu_chat_request_duration_seconds", "Request time on the model, queue excluded",
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("dcu_chat_queue_wait_seconds", "Time spent waiting for the model",
                                    buckets=_LATENCY_BUCKETS, registry=r)
        self.decode_rate = Histogram("dcu_chat_decode_tokens_per_second", "Decoding speed of one request",
                                     buckets=_RATE_BUCKETS, registry=r)
        self._live_gauges(engine)
        info = engine.status().info
        Info("dcu_chat_model", "The model being served", registry=r).info({
            "model": str(info.model), "backend": str(info.backend), "device": str(info.device),
            "dtype": str(info.dtype), "quantization": str(info.quantization or "none"),
        })
        engine.observers.append(self.observe)

    def _live_gauges(self, engine) -> None:
        engine_ref = weakref.ref(engine)  # the metrics must not keep a dropped engine alive

        def read(pick):
            def value() -> float:
                target = engine_ref()
                return float(pick(target.status())) if target is not None else 0.0
            return value

        r = self.registry
        Gauge("dcu_chat_queue_depth", "Requests waiting for the model", registry=r).set_function(
            read(lambda status: status.waiting))
        Gauge("dcu_chat_active_requests", "Requests running on the model", registry=r).set_function(
            read(lambda status: status.running))
        Gauge("dcu_chat_batch_size_peak", "Largest decoding batch so far", registry=r).set_function(
            read(lambda status: status.backend.peak_batch))
        Gauge("dcu_chat_kv_cache_bytes", "Bytes of KV cache kept for reuse", registry=r).set_function(
            read(lambda status: status.backend.kv_cache.bytes if status.backend.kv_cache else 0))
        Gauge("dcu_chat_kv_cache_entries", "Conversations with a kept KV cache", registry=r).set_function(
            read(lambda status: status.backend.kv_cache.entries if status.backend.kv_cache else 0))

    def observe(self, stats: GenerationStats) -> None:
        self.requests.labels(finish_reason=stats.finish_reason).inc()
        self.prompt_tokens.inc(stats.prompt_tokens)
        self.completion_tokens.inc(stats.completion_tokens)
        self.cached_tokens.inc(stats.cached_tokens)
        if stats.cached_tokens:
            self.cache_hits.inc()
        self.queue_wait.observe(stats.queue_s)
        if stats.completion_tokens:
            self.ttft.observe(stats.ttft_s)
            self.latency.observe(stats.total_s)
        if stats.tokens_per_s > 0:
            self.decode_rate.observe(stats.tokens_per_s)

    def render(self) -> bytes:
        """The Prometheus text exposition format."""
        return generate_latest(self.registry)


_attached: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_attach_lock = threading.Lock()


def metrics_for(engine) -> EngineMetrics:
    """The metrics of ``engine``, created (and hooked to its observers) on first use."""
    with _attach_lock:
        metrics = _attached.get(engine)
        if metrics is None:
            metrics = _attached[engine] = EngineMetrics(engine)
        return metrics
