"""Shared pieces of the benchmarks: environment record, engine loading, timed streams.

Timings on a shared 2-core machine are noisy: every section records the load average before
and after it runs, repeats measurements and reports medians, so a reader can judge a number.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable

__all__ = ["environment", "load_engine", "timed_chat", "concurrent", "median", "load_avg", "peak_rss_bytes",
           "free", "section"]


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def environment() -> dict:
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_start": load_avg(),
            "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["hip"] = getattr(torch.version, "hip", None)
    return info


def load_engine(**overrides):
    """An engine over the embedded default model (or ``--model``), with config overrides."""
    from engine.config import EngineConfig
    from engine.engine import Engine

    return Engine.load(EngineConfig(**overrides))


def free(*engines) -> None:
    """Stop engines' decoding threads and drop their caches so memory numbers do not pile up
    (the caller drops its own references)."""
    import torch

    for engine in engines:
        backend = getattr(engine, "backend", None)
        if getattr(backend, "runner", None) is not None:
            backend.runner.close()
        if getattr(backend, "kv", None) is not None:
            backend.kv.clear()
    del engines
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def timed_chat(engine, messages: list[dict], params, session_id: str | None = None):
    """Run one streamed request; returns (text, GenerationStats)."""
    from engine.stats import GenerationStats

    parts, stats = [], None
    for item in engine.stream_chat(messages, params, session_id=session_id):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            parts.append(item)
    return "".join(parts), stats


def concurrent(fn: Callable[[int], object], count: int) -> tuple[list, float]:
    """Call ``fn(i)`` for i in range(count) in threads; returns results and wall time."""
    results: list = [None] * count

    def run(i: int) -> None:
        results[i] = fn(i)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def section(name: str, fn: Callable[[], dict]) -> dict:
    """Run one benchmark section; errors become a note instead of ending the whole run."""
    print(f"[bench] {name} …", flush=True)
    started, before = time.perf_counter(), load_avg()
    try:
        result = fn()
    except Exception as exc:  # a benchmark section failing must not hide the others' numbers
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result.update(wall_s=round(time.perf_counter() - started, 1), load_avg_before=before, load_avg_after=load_avg())
    print(f"[bench] {name} done in {result['wall_s']} s", flush=True)
    return result

