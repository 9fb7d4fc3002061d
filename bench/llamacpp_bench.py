"""llama.cpp rows of ``make bench``: our llama.cpp backend against the bare xllamacpp server.

Both serve the same GGUF in this process; requests alternate between them so load on the
machine hits both alike. The bare server is the ceiling: the same llama.cpp code, driven with
nothing of ours around it (no queue, prompt format, end-of-answer rules or Python stream).

* ``decode``: tokens/s of one stream, measured by the consumer (first to last token), and
  llama.cpp's own timing; the same prompt ids, greedy, the same number of tokens;
* ``ttft_300``: time to first token for a ~300-token prompt, prompt cache off;
* ``turns``: TTFT at turns 1 and 8 of a chat with the whole history resent (llama.cpp's prompt cache);
* ``concurrency``: aggregate tokens/s of 1, 4 and 16 streams, ours and bare alternating, the same
  prompts and seeds (the bare streams get the token ids ours renders, tokenized before the clock
  starts); each count's slowest stream is listed, since one straggler decides the wall time;
* ``prompt_lookup``: n-gram speculative decoding with vs without (``bench/llamacpp_lookup_bench.py``);
* ``rss``: resident memory of a fresh process serving like ``app.py`` (model + embedder, one answer).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench.common import concurrent, load_engine, median, timed_chat
from bench.engine_bench import TOPICS, TURN_QUESTIONS

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = [{"role": "user", "content": "Count from 1 to 200, separated by commas."}]  # one long line, no early end
LONG = [{"role": "user", "content": " ".join(TURN_QUESTIONS) + " Please answer briefly."}]  # ~280 tokens


def _bare_server(path: str, slots: int):
    import signal

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = 8192
    params.n_parallel = slots
    params.kv_unified = True
    params.verbosity = 0
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = xllamacpp.Server(params)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    return server


def _bare_stream(server, ids: list[int], tokens: int, sampling: dict | None = None) -> dict:
    """One streamed request on the bare server (greedy unless ``sampling``): consumer-side timings and
    llama.cpp's own."""
    marks: list[float] = []
    last: dict = {}
    started = time.perf_counter()
    request = {"prompt": ids, "max_tokens": tokens, "temperature": 0, "stream": True, "cache_prompt": False,
               "ignore_eos": True, "timings_per_token": True, **(sampling or {})}

    def on_chunk(chunk: dict) -> bool:
        if (chunk.get("choices") or [{}])[0].get("text"):
            marks.append(time.perf_counter())
        if chunk.get("timings"):
            last.update(chunk["timings"])
        return False

    server.handle_completions(request, on_chunk)
    decode_s = marks[-1] - marks[0] if len(marks) > 1 else 0.0
    return {"ttft_s": marks[0] - started if marks else 0.0, "total_s": time.perf_counter() - started,
            "tokens": int(last.get("predicted_n", len(marks))),
            "decode_tokens_per_s": (len(marks) - 1) / decode_s if decode_s else 0.0,
            "llamacpp_tokens_per_s": float(last.get("predicted_per_second", 0.0))}


def _ours(engine, messages, params) -> dict:
    _, stats = timed_chat(engine, messages, params)
    decode_s = stats.total_s - stats.ttft_s
    return {"ttft_s": stats.ttft_s, "tokens": stats.completion_tokens,
            "decode_tokens_per_s": (stats.completion_tokens - 1) / decode_s if decode_s > 0 else 0.0,
            "llamacpp_tokens_per_s": stats.decode_tokens_per_s or 0.0}


def _summary(runs: list[dict]) -> dict:
    return {key: round(median([r[key] for r in runs]), 3) for key in runs[0] if key != "total_s"}


def decode_and_ttft(engine, bare, quick: bool) -> dict:
    """Ours vs bare, alternating, prompt cache off on both (each prompt is prefilled in full)."""
    from engine.config import SamplingParams

    backend = engine.backend
    tokens = 32 if quick else 128
    repeats = 2 if quick else 5
    params = SamplingParams(temperature=0, max_new_tokens=tokens, repetition_penalty=1.0)
    out: dict = {"new_tokens": tokens, "repeats": repeats}
    backend.cache_prompt = False
    try:
        for name, messages, n in (("decode", NUMBERS, tokens), ("ttft_300", LONG, 4)):
            ids = backend.prompt_ids(messages, params)
            ours, theirs = [], []
            for _ in range(repeats):
                ours.append(_ours(engine, messages, replace(params, max_new_tokens=n)))
                theirs.append(_bare_stream(bare, ids, ours[-1]["tokens"] or n))  # the same length as ours
            out[name] = {"prompt_tokens": len(ids), "ours": _summary(ours), "bare": _summary(theirs)}
    finally:
        backend.cache_prompt = True
    ours, bare_row = out["decode"]["ours"], out["decode"]["bare"]
    out["decode_ratio_vs_bare"] = (round(ours["decode_tokens_per_s"] / bare_row["decode_tokens_per_s"], 3)
                                   if bare_row["decode_tokens_per_s"] else None)
    return out


def turns(engine, quick: bool) -> dict:
    """TTFT at turns 1 and 8, the whole history resent each turn (as over /v1)."""
    from engine.config import SamplingParams

    params = SamplingParams(temperature=0, max_new_tokens=12 if quick else 32)
    history, rows = [], []
    for question in TURN_QUESTIONS:
        history.append({"role": "user", "content": question})
        text, stats = timed_chat(engine, history, params, session_id="bench-llama-turns")
        history.append({"role": "assistant", "content": text})
        rows.append({"ttft_s": round(stats.ttft_s, 3), "prompt_tokens": stats.prompt_tokens,
                     "cached_tokens": stats.cached_tokens, "tokens_per_s": round(stats.tokens_per_s, 2)})
    engine.backend.cache_prompt = False
    try:  # turn 8's prompt again, prefilled in full
        _, cold = timed_chat(engine, history[:-1], replace(params, max_new_tokens=2))
    finally:
        engine.backend.cache_prompt = True
    return {"with_reuse": rows, "turn8_without_reuse_ttft_s": round(cold.ttft_s, 3),
            "ttft_turn8_over_turn1_with_reuse": round(rows[-1]["ttft_s"] / rows[0]["ttft_s"], 2)}


_RSS_SCRIPT = """
import json, psutil, sys
sys.path.insert(0, {root!r})
from engine.config import EngineConfig
from engine.engine import Engine
from rag.embedding import SentenceTransformerEmbedder
engine = Engine.load(EngineConfig())
embedder = SentenceTransformerEmbedder()
embedder.load()
embedder.embed(["warm up the embedder"])
engine.chat([{{"role": "user", "content": "What is the capital of France?"}}])
print(json.dumps({{"backend": engine.info.backend, "rss_bytes": psutil.Process().memory_info().rss}}))
"""


def _topic(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Tell me three surprising facts about {TOPICS[i % len(TOPICS)]}."}]


def _streams_row(count: int, wall: float, rows: list[dict]) -> dict:
    done = sum(r["tokens"] for r in rows)
    return {"streams": count, "wall_s": round(wall, 2), "completion_tokens": done,
            "aggregate_tokens_per_s": round(done / wall, 2), "median_ttft_s": round(median([r["ttft_s"] for r in rows]), 3),
            "slowest_stream_s": round(max(r["total_s"] for r in rows), 2),
            "slowest_ttft_s": round(max(r["ttft_s"] for r in rows), 2)}


def concurrency(engine, bare, quick: bool, counts: tuple[int, ...] = (1, 4, 16)) -> dict:
    """Aggregate tokens/s of N simultaneous streams, ours and the bare server alternating per count.

    Sampling (temperature 0.7, a seed per stream), distinct prompts, prompt cache on as users have
    it; the bare streams run the same lengths as ours (``ignore_eos``: our end-of-answer rules may
    end an answer early, theirs would not).
    """
    from engine.config import SamplingParams

    tokens = 24 if quick else 64
    rounds = 3 if quick else 5
    params = [SamplingParams(temperature=0.7, seed=i, max_new_tokens=tokens) for i in range(max(counts))]
    ids = [engine.backend.prompt_ids(_topic(i), params[i]) for i in range(max(counts))]
    bare_sampling = [{"temperature": 0.7, "seed": i, "min_p": 0.0, "top_p": params[i].top_p, "top_k": params[i].top_k,
                      "repeat_penalty": params[i].repetition_penalty, "cache_prompt": True}
                     for i in range(max(counts))]  # the sampler chain ours asks for

    def ours(i: int) -> dict:  # timed by the caller, as a user sees it (tokenizing and queueing included)
        from engine.stats import GenerationStats

        started, first = time.perf_counter(), None
        for item in engine.stream_chat(_topic(i), params[i]):
            if isinstance(item, GenerationStats):
                stats = item
            elif first is None:
                first = time.perf_counter() - started
        return {"tokens": stats.completion_tokens, "ttft_s": first or 0.0, "total_s": time.perf_counter() - started,
                "stream_tokens_per_s": stats.tokens_per_s}

    def theirs(i: int) -> dict:
        return _bare_stream(bare, ids[i], tokens, bare_sampling[i])

    runs: dict[str, dict[int, list[dict]]] = {"ours": {}, "bare": {}}
    for _ in range(rounds):
        for count in counts:
            for who, fn in (("ours", ours), ("bare", theirs)):
                rows, wall = concurrent(fn, count)
                row = _streams_row(count, wall, rows)
                if who == "ours":
                    row["median_stream_tokens_per_s"] = round(median([r["stream_tokens_per_s"] for r in rows]), 2)
                runs[who].setdefault(count, []).append(row)
    out: dict = {"new_tokens": tokens, "capacity": engine.queue.capacity, "rounds": rounds}
    for who, by_count in runs.items():
        picked = []
        for count in counts:
            # Load on a shared machine drifts between rounds: each round's N-stream aggregate is divided
            # by the same round's one-stream aggregate (measured seconds apart), and the median kept.
            ratios = [r["aggregate_tokens_per_s"] / one["aggregate_tokens_per_s"]
                      for r, one in zip(by_count[count], by_count[counts[0]], strict=True)]
            ordered = sorted(by_count[count], key=lambda r: r["aggregate_tokens_per_s"])
            row = dict(ordered[len(ordered) // 2])  # the round with the median aggregate
            row["speedup_vs_1"] = round(median(ratios), 2)
            row["speedup_vs_1_rounds"] = [round(x, 2) for x in ratios]
            row["aggregate_tokens_per_s_rounds"] = [r["aggregate_tokens_per_s"] for r in by_count[count]]
            row["slowest_stream_s_rounds"] = [r["slowest_stream_s"] for r in by_count[count]]
            row["slowest_ttft_s_rounds"] = [r["slowest_ttft_s"] for r in by_count[count]]
            row["completion_tokens_rounds"] = [r["completion_tokens"] for r in by_count[count]]
            picked.append(row)
        out["runs" if who == "ours" else "bare_runs"] = picked
    return out


def app_rss() -> dict:
    """RSS of a fresh process with the default engine (``--backend auto``) and the embedder loaded."""
    result = subprocess.run([sys.executable, "-c", _RSS_SCRIPT.format(root=str(ROOT))], capture_output=True,
                            text=True, timeout=900, cwd=ROOT, check=False)
    if result.returncode != 0:
        return {"error": result.stderr.strip()[-400:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(quick: bool, model: str | None = None) -> dict:
    engine = load_engine(backend="llamacpp", max_batch=4, **({"model": model} if model else {}))
    bare = _bare_server(str(engine.backend.gguf_path), slots=4)
    try:
        out = {"model": engine.info.model, "build": engine.info.backend_detail,
               "capacity": engine.queue.capacity}
        out.update(decode_and_ttft(engine, bare, quick))
        out["turns"] = turns(engine, quick)
        out["concurrency"] = concurrency(engine, bare, quick)
    finally:
        del bare
        engine.backend.close()
        threading.Event().wait(0.5)  # let llama.cpp's loop threads end before the next section
    from bench import llamacpp_lookup_bench

    out["prompt_lookup"] = llamacpp_lookup_bench.run(quick)  # its own servers, after ours is closed
    out["rss"] = app_rss()
    return out
