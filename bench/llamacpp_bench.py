"""llama.cpp rows of ``make bench``: our llama.cpp backend against the bare xllamacpp server.

Both serve the same GGUF in this process; requests alternate between them so load on the
machine hits both alike. The bare server is the ceiling: the same llama.cpp code, driven with
nothing of ours around it (no queue, prompt format, end-of-answer rules or Python stream).

* ``decode``: tokens/s of one stream, measured by the consumer (first to last token), and
  llama.cpp's own timing; the same prompt ids, greedy, the same number of tokens;
* ``ttft_300``: time to first token for a ~300-token prompt, prompt cache off;
* ``turns``: TTFT at turns 1 and 8 of a chat with the whole history resent (llama.cpp's prompt cache);
* ``concurrency``: aggregate tokens/s of 1, 4 and 16 streams (``engine_bench.concurrency``);
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

from bench.common import load_engine, median, timed_chat
from bench.engine_bench import TURN_QUESTIONS, concurrency

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


def _bare_stream(server, ids: list[int], tokens: int) -> dict:
    """One streamed greedy request on the bare server: consumer-side timings and llama.cpp's own."""
    marks: list[float] = []
    last: dict = {}
    started = time.perf_counter()

    def on_chunk(chunk: dict) -> bool:
        if (chunk.get("choices") or [{}])[0].get("text"):
            marks.append(time.perf_counter())
        if chunk.get("timings"):
            last.update(chunk["timings"])
        return False

    server.handle_completions({"prompt": ids, "max_tokens": tokens, "temperature": 0, "stream": True,
                               "cache_prompt": False, "ignore_eos": True, "timings_per_token": True}, on_chunk)
    decode_s = marks[-1] - marks[0] if len(marks) > 1 else 0.0
    return {"ttft_s": marks[0] - started if marks else 0.0, "tokens": int(last.get("predicted_n", len(marks))),
            "decode_tokens_per_s": (len(marks) - 1) / decode_s if decode_s else 0.0,
            "llamacpp_tokens_per_s": float(last.get("predicted_per_second", 0.0))}


def _ours(engine, messages, params) -> dict:
    _, stats = timed_chat(engine, messages, params)
    decode_s = stats.total_s - stats.ttft_s
    return {"ttft_s": stats.ttft_s, "tokens": stats.completion_tokens,
            "decode_tokens_per_s": (stats.completion_tokens - 1) / decode_s if decode_s > 0 else 0.0,
            "llamacpp_tokens_per_s": stats.decode_tokens_per_s or 0.0}


def _summary(runs: list[dict]) -> dict:
    return {key: round(median([r[key] for r in runs]), 3) for key in runs[0]}


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
        out["concurrency"] = concurrency(engine, quick)
    finally:
        del bare
        engine.backend.close()
        threading.Event().wait(0.5)  # let llama.cpp's loop threads end before the next section
    out["rss"] = app_rss()
    return out
