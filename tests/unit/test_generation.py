"""Streaming generation on a tiny real model: deltas, stats, stop, cancellation, errors."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from engine.config import SamplingParams
from engine.errors import GenerationError, OutOfMemory
from engine.stats import GenerationStats

USER = [{"role": "user", "content": "hello tell me a story about a dragon"}]


def run(engine, messages=USER, **params):
    deltas, stats = [], None
    for item in engine.stream_chat(messages, SamplingParams(**params)):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            assert isinstance(item, str)
            deltas.append(item)
    return deltas, stats


def test_stream_yields_text_deltas_then_one_stats_record(tiny_engine):
    items = list(tiny_engine.stream_chat(USER, SamplingParams(temperature=0, max_new_tokens=12)))
    assert all(isinstance(i, str) for i in items[:-1]) and len(items) > 2
    stats = items[-1]
    assert isinstance(stats, GenerationStats)
    assert stats.completion_tokens == 12 and stats.finish_reason == "length"
    assert stats.prompt_tokens > 5 and stats.ttft_s > 0 and stats.total_s >= stats.ttft_s
    assert stats.peak_memory_bytes > 0 and stats.device == "cpu"


def test_greedy_decoding_is_deterministic(tiny_engine):
    first, _ = run(tiny_engine, temperature=0, max_new_tokens=20)
    second, _ = run(tiny_engine, temperature=0, max_new_tokens=20)
    assert "".join(first) == "".join(second) != ""


def test_seeded_sampling_is_reproducible(tiny_engine):
    a, _ = run(tiny_engine, temperature=1.0, seed=7, max_new_tokens=20)
    b, _ = run(tiny_engine, temperature=1.0, seed=7, max_new_tokens=20)
    assert "".join(a) == "".join(b)


def test_stop_string_cuts_the_answer_before_it(tiny_engine):
    full = "".join(run(tiny_engine, temperature=0, max_new_tokens=30)[0])
    words = full.split()
    assert len(words) > 6
    stop = " ".join(words[4:6])
    text, stats = run(tiny_engine, temperature=0, max_new_tokens=30, stop=(stop,))
    text = "".join(text)
    assert stop not in text
    assert full.startswith(text) and len(text) < full.index(stop) + 1
    assert stats.finish_reason == "stop" and stats.completion_tokens < 30


def test_closing_the_stream_stops_device_work_and_frees_the_model(tiny_engine):
    stream = tiny_engine.stream_chat(USER, SamplingParams(temperature=0.8, max_new_tokens=200))
    next(stream)
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 1.0
    assert tiny_engine.queue.active == 0
    _, stats = run(tiny_engine, temperature=0, max_new_tokens=3)  # the model serves the next request
    assert stats.completion_tokens == 3


def test_cancel_event_ends_generation_with_cancelled_reason(tiny_engine):
    cancel = threading.Event()
    count = 0
    stats = None
    for item in tiny_engine.stream_chat(USER, SamplingParams(temperature=0, max_new_tokens=200), cancel=cancel):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            count += 1
            if count == 3:
                cancel.set()
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens < 200


def test_out_of_memory_is_reported_and_the_engine_keeps_serving(tiny_engine, monkeypatch):
    model = tiny_engine.backend.model

    def exploding_forward(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    # forward, not generate: batched decoding calls the model directly
    monkeypatch.setattr(model, "forward", exploding_forward)
    with pytest.raises(OutOfMemory, match="ran out of memory"):
        run(tiny_engine, temperature=0, max_new_tokens=5)
    monkeypatch.undo()
    _, stats = run(tiny_engine, temperature=0, max_new_tokens=4)
    assert stats.completion_tokens == 4


def test_worker_errors_are_reraised_in_the_caller(tiny_engine, monkeypatch):
    def broken_forward(*args, **kwargs):
        raise ValueError("bad logits processor")

    monkeypatch.setattr(tiny_engine.backend.model, "forward", broken_forward)
    with pytest.raises(GenerationError, match="bad logits processor"):
        run(tiny_engine, temperature=0, max_new_tokens=5)


def test_chat_joins_the_stream(tiny_engine):
    deltas, _ = run(tiny_engine, temperature=0, max_new_tokens=10)
    text, stats = tiny_engine.chat(USER, SamplingParams(temperature=0, max_new_tokens=10))
    assert text == "".join(deltas) and stats.completion_tokens == 10


def test_a_model_without_a_template_gets_the_completion_format(tiny_engine):
    assert any("completion format" in note for note in tiny_engine.info.notes)
    fmt = tiny_engine.backend.prompt_format
    rendered = fmt.render([{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}],
                          bos_token="<bos>")
    assert rendered.startswith("<bos>Question:") and rendered.endswith("be kind\n\nQuestion: hi\nAnswer:")
    assert "\nQuestion:" in tiny_engine.backend.stop_strings
