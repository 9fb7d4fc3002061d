"""Engine benchmarks on one loaded model: stream overhead, KV reuse across turns, concurrency,
prompt-lookup decoding for code fixes."""

from __future__ import annotations

import time
from dataclasses import replace

from bench.common import concurrent, median, timed_chat

__all__ = ["overhead", "turns", "concurrency", "prompt_lookup", "TURN_QUESTIONS"]

STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper, a storm and a lost ship."}]
TURN_QUESTIONS = [
    "I am planning a two-week trip to Japan in spring with my family of four, two adults and two children "
    "aged eight and eleven. We like nature, food and history. Where should we start?",
    "We land in Tokyo. Which neighbourhoods are good for families, and how should we get around the city "
    "with luggage and tired children at the end of the day?",
    "The children love trains. Is a rail pass worth it if we go Tokyo, Kyoto, Hiroshima and Osaka, and "
    "which trains should we try at least once?",
    "In Kyoto we have three days. Please suggest temples and gardens that are not too crowded, and a "
    "simple plan for each day with time for rest.",
    "What local dishes should we try in Osaka, and how do we handle a child with a peanut allergy when "
    "we do not speak Japanese?",
    "Hiroshima: how should we talk to the children about the Peace Memorial Museum, and is a day trip "
    "to Miyajima island a good idea with them?",
    "We want one night in a traditional inn with a hot spring. What should we know about the etiquette, "
    "and which region would fit our route best?",
    "Finally, please summarise the whole plan as a short day-by-day list and tell us what to book in "
    "advance before we leave home.",
]
TOPICS = ["the ocean", "volcanoes", "honey bees", "the moon", "ancient Rome", "rainforests", "glaciers",
          "octopuses", "the printing press", "deserts", "owls", "tea", "bridges", "comets", "coral", "maps"]
FIX_CODE = '''def parse_scores(path):
    """Read "name,score" lines and return the average score per name."""
    totals = {}
    counts = {}
    with open(path) as handle:
        for line in handle:
            name, score = line.strip().split(",")
            totals[name] = totals.get(name, 0) + score
            counts[name] = counts.get(name, 0) + 1
    averages = {}
    for name in totals:
        averages[name] = totals[name] / counts[name]
    return averages


def best_player(path):
    averages = parse_scores(path)
    return max(averages, key=averages.get)
'''


def _clear_kv(engine) -> None:
    kv = getattr(engine.backend, "kv", None)
    if kv is not None:
        kv.clear()


def overhead(engine, quick: bool) -> dict:
    """The engine's stream (queue, runner, detokenizer) vs bare ``model.generate`` on the same prompt."""
    import torch

    from engine.config import SamplingParams
    from engine.generate import eos_ids
    from engine.history import render_prompt_ids

    backend = engine.backend
    tokens = 24 if quick else 64
    params = SamplingParams(temperature=0, max_new_tokens=tokens, repetition_penalty=1.0)
    ids = torch.tensor([render_prompt_ids(backend.tokenizer, STORY)], device=backend.device.torch_device)
    eos = eos_ids(backend.model, backend.stop_token_ids)
    bare_ms, engine_ms, counts = [], [], []
    with torch.inference_mode():  # warm both paths up: first calls pay one-off costs
        backend.model.generate(ids, max_new_tokens=2, do_sample=False, pad_token_id=backend.tokenizer.pad_token_id)
    timed_chat(engine, STORY, replace(params, max_new_tokens=2))
    for _ in range(2 if quick else 6):
        started = time.perf_counter()
        with torch.inference_mode():
            out = backend.model.generate(ids, max_new_tokens=tokens, do_sample=False, repetition_penalty=1.0,
                                         eos_token_id=eos, pad_token_id=backend.tokenizer.pad_token_id)
        generated = out.shape[1] - ids.shape[1]
        bare_ms.append((time.perf_counter() - started) * 1000 / generated)
        _clear_kv(engine)  # a fair race: no cached prompt for the engine either
        _, stats = timed_chat(engine, STORY, params)
        engine_ms.append(stats.total_s * 1000 / stats.completion_tokens)
        counts.append((generated, stats.completion_tokens))
    bare, mine = median(bare_ms), median(engine_ms)
    return {"tokens": counts, "bare_generate_ms_per_token": round(bare, 1), "engine_ms_per_token": round(mine, 1),
            "bare_tokens_per_s": round(1000 / bare, 2), "engine_tokens_per_s": round(1000 / mine, 2),
            "overhead_pct": round((mine / bare - 1) * 100, 1)}


def turns(engine, quick: bool) -> dict:
    """TTFT at turns 1 and 8 of one chat: with KV reuse (the whole conversation, as a user has it),
    and without (the same turn-1 and turn-8 prompts with the cache emptied first)."""
    from engine.config import SamplingParams

    tokens = 12 if quick else 32
    params = SamplingParams(temperature=0, max_new_tokens=tokens)
    _clear_kv(engine)
    history, with_reuse, prompts = [], [], []
    for question in TURN_QUESTIONS:
        history.append({"role": "user", "content": question})
        prompts.append(list(history))
        text, stats = timed_chat(engine, history, params, session_id="bench-turns")
        history.append({"role": "assistant", "content": text})
        with_reuse.append(_turn_row(stats))
    without = []
    for turn in (0, len(prompts) - 1):
        _clear_kv(engine)
        without.append(_turn_row(timed_chat(engine, prompts[turn], replace(params, max_new_tokens=2))[1]))
    _clear_kv(engine)
    return {"new_tokens_per_turn": tokens, "with_reuse": with_reuse, "without_reuse": without,
            "ttft_turn8_over_turn1_with_reuse": round(with_reuse[-1]["ttft_s"] / with_reuse[0]["ttft_s"], 2),
            "ttft_turn8_over_turn1_without_reuse": round(without[-1]["ttft_s"] / without[0]["ttft_s"], 2)}


def _turn_row(stats) -> dict:
    return {"ttft_s": round(stats.ttft_s, 3), "prompt_tokens": stats.prompt_tokens,
            "cached_tokens": stats.cached_tokens, "tokens_per_s": round(stats.tokens_per_s, 2)}


def concurrency(engine, quick: bool, counts: tuple[int, ...] = (1, 4, 16)) -> dict:
    """Aggregate tokens/s of N simultaneous streams (sampling, a seed per stream, distinct prompts)."""
    from engine.config import SamplingParams

    tokens = 24 if quick else 64
    out: dict = {"new_tokens": tokens, "capacity": engine.queue.capacity, "runs": []}

    def one(i: int):
        messages = [{"role": "user", "content": f"Tell me three surprising facts about {TOPICS[i % len(TOPICS)]}."}]
        return timed_chat(engine, messages, SamplingParams(temperature=0.7, seed=i, max_new_tokens=tokens))[1]

    for count in counts:
        _clear_kv(engine)
        results, wall = concurrent(one, count)
        done = sum(stats.completion_tokens for stats in results)
        out["runs"].append({"streams": count, "wall_s": round(wall, 2), "completion_tokens": done,
                            "aggregate_tokens_per_s": round(done / wall, 2),
                            "median_ttft_s": round(median([s.ttft_s for s in results]), 3),
                            "median_queue_s": round(median([s.queue_s for s in results]), 3),
                            "median_stream_tokens_per_s": round(median([s.tokens_per_s for s in results]), 2)})
    base = out["runs"][0]["aggregate_tokens_per_s"]
    for run in out["runs"]:
        run["speedup_vs_1"] = round(run["aggregate_tokens_per_s"] / base, 2) if base else None
    return out


def prompt_lookup(engine, quick: bool) -> dict:
    """A code fix (the Code tab's Fix mode) with prompt-lookup decoding vs without."""
    from assist.code.prompts import CodeRequest, build_messages, params_for

    request = CodeRequest(mode="fix", language="python", code=FIX_CODE,
                          error="TypeError: unsupported operand type(s) for +: 'int' and 'str'")
    messages = build_messages(request)
    with_lookup = replace(params_for(request), max_new_tokens=64 if quick else 320)
    without = replace(with_lookup, prompt_lookup_num_tokens=None)
    out: dict = {"prompt_lookup_num_tokens": with_lookup.prompt_lookup_num_tokens}
    texts = {}
    for name, params in (("without", without), ("with", with_lookup)):
        _clear_kv(engine)
        text, stats = timed_chat(engine, messages, params)
        texts[name] = text
        out[name] = {"completion_tokens": stats.completion_tokens, "total_s": round(stats.total_s, 2),
                     "ttft_s": round(stats.ttft_s, 3), "tokens_per_s": round(stats.completion_tokens / stats.total_s, 2)}
    out["speedup"] = round(out["without"]["total_s"] / out["with"]["total_s"], 2)
    out["same_output"] = texts["with"] == texts["without"]
    return out
