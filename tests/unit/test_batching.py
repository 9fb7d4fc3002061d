"""Batched decoding of concurrent requests: no cross-talk, per-request stop, length, cancel, seeds, errors."""

from __future__ import annotations

import threading
import time

import pytest

from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.errors import GenerationError
from engine.stats import GenerationStats

PROMPTS = ["hello tell me a story about a dragon", "what is the answer", "find the blue cat please",
           "run fast dog run", "why is the night so big and old"]


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    """No KV reuse here, so every request prefills on its own and only batching is under test."""
    return Engine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", kv_cache_bytes=0, max_batch=8))


def wait_until_pending(runner, count: int) -> None:
    deadline = time.monotonic() + 30
    while runner.pending < count:
        assert time.monotonic() < deadline, "requests did not reach the batch runner"
        time.sleep(0.01)


def together(engine, calls: list[tuple[list[dict], SamplingParams, threading.Event | None]]) -> list[tuple]:
    """Run the calls concurrently; the runner is held until all are queued, so they start as one batch."""
    runner = engine.backend.runner
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        messages, params, cancel = calls[i]
        parts, stats = [], None
        for item in engine.stream_chat(messages, params, cancel=cancel):
            if isinstance(item, GenerationStats):
                stats = item
            else:
                parts.append(item)
                if cancel is not None and len(parts) == 2:
                    cancel.set()
        results[i] = ("".join(parts), stats)

    runner.peak_batch = 0
    with runner.paused():
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        wait_until_pending(runner, len(calls))
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_greedy_requests_match_sequential_ones(engine):
    params = SamplingParams(temperature=0, max_new_tokens=16)
    sequential = [engine.chat(ask(p), params) for p in PROMPTS]
    batched = together(engine, [(ask(p), params, None) for p in PROMPTS])
    assert engine.backend.runner.peak_batch == len(PROMPTS)  # they really shared decoding steps
    assert [text for text, _ in batched] == [text for text, _ in sequential]
    assert [(s.completion_tokens, s.finish_reason) for _, s in batched] == \
        [(s.completion_tokens, s.finish_reason) for _, s in sequential]


def test_each_request_keeps_its_own_length_and_stop_strings(engine):
    greedy = SamplingParams(temperature=0, max_new_tokens=20)
    full = engine.chat(ask(PROMPTS[0]), greedy)[0]
    stop = " ".join(full.split()[3:5])
    calls = [(ask(PROMPTS[0]), SamplingParams(temperature=0, max_new_tokens=20, stop=(stop,)), None),
             (ask(PROMPTS[1]), SamplingParams(temperature=0, max_new_tokens=5), None),
             (ask(PROMPTS[2]), greedy, None)]
    (cut, cut_stats), (short, short_stats), (whole, whole_stats) = together(engine, calls)
    assert stop not in cut and full.startswith(cut) and cut_stats.finish_reason == "stop"
    assert short_stats.completion_tokens == 5 and short == engine.chat(ask(PROMPTS[1]), calls[1][1])[0]
    alone, alone_stats = engine.chat(ask(PROMPTS[2]), greedy)
    assert whole == alone and whole_stats.completion_tokens == alone_stats.completion_tokens > 5


def test_cancelling_one_request_leaves_the_others_running(engine):
    params = SamplingParams(temperature=0, max_new_tokens=24)
    expected, expected_stats = engine.chat(ask(PROMPTS[3]), params)
    results = together(engine, [(ask(PROMPTS[0]), params, threading.Event()), (ask(PROMPTS[3]), params, None)])
    (_, cancelled), (text, stats) = results
    assert cancelled.finish_reason == "cancelled" and cancelled.completion_tokens < 24
    # The prompt format may end the answer before 24 tokens; it must end it the same way alone.
    assert text == expected and stats.completion_tokens == expected_stats.completion_tokens
    assert stats.finish_reason == expected_stats.finish_reason
    assert engine.queue.active == 0 and engine.backend.runner.active == 0


def test_seeded_sampling_does_not_depend_on_the_batch(engine):
    seeded = SamplingParams(temperature=1.0, seed=11, max_new_tokens=16)
    alone = engine.chat(ask(PROMPTS[4]), seeded)[0]
    others = SamplingParams(temperature=1.2, seed=5, max_new_tokens=16)
    batched = together(engine, [(ask(PROMPTS[0]), others, None), (ask(PROMPTS[4]), seeded, None),
                                (ask(PROMPTS[1]), others, None)])
    assert batched[1][0] == alone


def test_prompt_lookup_requests_fall_back_to_generate_with_the_same_output(engine):
    greedy = SamplingParams(temperature=0, max_new_tokens=16, repetition_penalty=1.0)
    lookup = SamplingParams(temperature=0, max_new_tokens=16, repetition_penalty=1.0, prompt_lookup_num_tokens=3)
    message = ask("run fast dog run run fast dog run run fast")
    assert engine.chat(message, lookup)[0] == engine.chat(message, greedy)[0]


def test_a_failing_step_fails_that_batch_and_the_runner_keeps_serving(engine, monkeypatch):
    model = engine.backend.model
    original = model.forward
    calls = {"n": 0}

    def flaky_forward(*args, **kwargs):
        calls["n"] += 1
        if kwargs["input_ids"].shape[0] > 1:  # the first batched decoding step
            raise RuntimeError("device fell over")
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", flaky_forward)
    params = SamplingParams(temperature=0, max_new_tokens=8)
    with pytest.raises(GenerationError, match="device fell over"):
        together_or_raise(engine, params)
    monkeypatch.undo()
    text, stats = engine.chat(ask(PROMPTS[0]), params)
    assert stats.completion_tokens == 8 and text


def together_or_raise(engine, params):
    errors: list[BaseException] = []

    def run(prompt):
        try:
            engine.chat(ask(prompt), params)
        except BaseException as exc:
            errors.append(exc)

    with engine.backend.runner.paused():
        threads = [threading.Thread(target=run, args=(p,)) for p in PROMPTS[:2]]
        for thread in threads:
            thread.start()
        wait_until_pending(engine.backend.runner, 2)
    for thread in threads:
        thread.join(timeout=60)
    assert len(errors) == 2
    raise errors[0]


def test_batching_takes_per_row_positions_into_account(engine):
    """Prompts of very different lengths are left-padded in one batch; each still decodes as if alone."""
    params = SamplingParams(temperature=0, max_new_tokens=10)
    long_prompt = " ".join(PROMPTS * 3)
    expected = [engine.chat(ask(p), params)[0] for p in ("hi", long_prompt)]
    assert [text for text, _ in together(engine, [(ask("hi"), params, None), (ask(long_prompt), params, None)])] \
        == expected


def test_an_idle_runner_ends_its_thread_and_restarts_on_demand(tiny_model_dir):
    engine = Engine.load(EngineConfig(model=str(tiny_model_dir), device="cpu", kv_cache_bytes=0))
    runner = engine.backend.runner
    runner.idle_exit_s = 0.05
    params = SamplingParams(temperature=0, max_new_tokens=4)
    first = engine.chat(ask(PROMPTS[0]), params)[0]
    deadline = time.monotonic() + 10
    while runner.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not runner.running
    assert engine.chat(ask(PROMPTS[0]), params)[0] == first
    runner.idle_exit_s = 30
    engine.chat(ask(PROMPTS[1]), params)
    assert runner.running
    runner.close()  # explicit shutdown (benchmarks free engines between configurations)
    assert not runner.running
    assert engine.chat(ask(PROMPTS[0]), params)[0] == first


def test_sampler_applies_top_k_top_p_and_seed_like_generate():
    import torch

    from engine.sampling import Sampler

    logits = torch.log(torch.tensor([[0.6, 0.3, 0.08, 0.02]]))
    plain = {"temperature": 1.0, "repetition_penalty": 1.0}
    draws = lambda params, n=200: {Sampler(params)(logits, None) for _ in range(n)}  # noqa: E731
    assert draws(SamplingParams(**plain, top_p=0.5, top_k=0)) == {0}
    assert draws(SamplingParams(**plain, top_p=0.85, top_k=0)) == {0, 1}
    assert draws(SamplingParams(**plain, top_p=1.0, top_k=2)) == {0, 1}
    assert draws(SamplingParams(**plain, top_p=1.0, top_k=0), 400) == {0, 1, 2, 3}
    seeded = SamplingParams(**plain, top_p=1.0, top_k=0, seed=3)
    first, second = Sampler(seeded), Sampler(seeded)
    assert [first(logits, None) for _ in range(20)] == [second(logits, None) for _ in range(20)]
    # Greedy with transformers' repetition penalty: the seen token 0 (2.0 / 2) falls below token 1 (1.5).
    raw = torch.tensor([[2.0, 1.5, 0.0, -1.0]])
    assert Sampler(SamplingParams(temperature=0, repetition_penalty=2.0))(raw, torch.tensor([[0]])) == 1
    assert Sampler(SamplingParams(temperature=0, repetition_penalty=1.0))(raw, None) == 0
