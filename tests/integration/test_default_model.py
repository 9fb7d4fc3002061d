"""The real embedded default model: offline load, streaming through the chat handler, real stop."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from engine.config import SamplingParams
from engine.embedded import EMBEDDED_MODEL
from engine.stats import GenerationStats
from webui.chat_tab import ChatHandlers


def test_default_model_loads_offline_from_the_cache(default_engine):
    info = default_engine.info
    assert info.model == EMBEDDED_MODEL.model_id and info.backend == "transformers"
    assert info.context_length >= 2048


def test_chat_handler_streams_a_reply_from_the_real_model(default_engine):
    handlers = ChatHandlers(default_engine)
    updates = list(handlers.respond("What is the capital of France?", temperature=0, max_new_tokens=24,
                                    history=[], request=SimpleNamespace(session_hash="t", headers={})))
    assert len(updates) > 3  # streamed, not one final blob
    _, history, _ = updates[-1]
    assert history[-1]["role"] == "assistant" and history[-1]["content"].strip()
    assert "tok/s" in history[-1]["stats"]


def test_stop_returns_control_within_a_second(default_engine):
    cancel = threading.Event()
    stream = default_engine.stream_chat([{"role": "user", "content": "Write a very long story about the sea."}],
                                        SamplingParams(temperature=0.8, max_new_tokens=400), cancel=cancel)
    deltas = 0
    stopped_at = None
    stats = None
    for item in stream:
        if isinstance(item, GenerationStats):
            stats = item
            break
        deltas += 1
        if deltas == 3:
            stopped_at = time.perf_counter()
            cancel.set()
    elapsed = time.perf_counter() - stopped_at
    assert stats.finish_reason == "cancelled" and stats.completion_tokens < 400
    assert elapsed < 1.0, f"stop took {elapsed:.2f} s"
