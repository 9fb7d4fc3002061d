"""The llama.cpp ``prompt_lookup`` row of ``make bench``: n-gram speculative decoding, with vs without.

The installed xllamacpp turns prompt lookup on only server-wide (``engine/backends/llamacpp_lookup``),
so three llama.cpp servers on the same GGUF answer in turn, greedy, prompt cache off:

* ``default``: what ``--backend llamacpp`` serves today (llama.cpp picks flash attention);
* ``without``: flash attention off, no lookup — the fair baseline, since lookup needs it off;
* ``with``: flash attention off, lookup drafting ``draft_tokens``.

Workloads: the Code tab's Fix and Refactor (the requests lookup is meant for) and two chat
answers (lookup would run on them too, server-wide). Reported per workload and server: median
total seconds, decode seconds, tokens, drafted/accepted tokens, and whether the text equals the
``without`` server's (it must: same greedy output with and without lookup).
"""

from __future__ import annotations

from dataclasses import replace

from bench.common import median, timed_chat

__all__ = ["run", "workloads"]

DRAFT_TOKENS = (10,)  # the Code tab's prompt_lookup_num_tokens


def workloads(quick: bool) -> list[tuple[str, list[dict], object]]:
    from assist.code.prompts import CodeRequest, build_messages, params_for
    from bench.engine_bench import FIX_CODE, STORY, TURN_QUESTIONS
    from engine.config import SamplingParams

    fix = CodeRequest(mode="fix", language="python", code=FIX_CODE,
                      error="TypeError: unsupported operand type(s) for +: 'int' and 'str'")
    refactor = CodeRequest(mode="refactor", language="python", code=FIX_CODE)
    chat = SamplingParams(temperature=0, max_new_tokens=48 if quick else 128, repetition_penalty=1.0)
    code_cap = 192 if quick else 512
    return [
        ("code fix", build_messages(fix), replace(params_for(fix), max_new_tokens=code_cap)),
        ("code refactor", build_messages(refactor), replace(params_for(refactor), max_new_tokens=code_cap)),
        ("chat: story", STORY, chat),
        ("chat: counting", [{"role": "user", "content": "Count from 1 to 200, separated by commas."}], chat),
        ("chat: question", [{"role": "user", "content": TURN_QUESTIONS[0]}], chat),
    ]


def _servers(quick: bool) -> dict:
    from engine.backends.llamacpp import LlamaCppBackend
    from engine.config import EngineConfig
    from engine.engine import Engine

    config = EngineConfig(backend="llamacpp", max_batch=1)
    quiet = lambda message: None  # noqa: E731
    servers = {"default": Engine(LlamaCppBackend.load(config, quiet), config),
               "without": Engine(LlamaCppBackend.load(config, quiet, lookup_tokens=0, flash_attn=False), config)}
    for tokens in DRAFT_TOKENS:
        servers[f"with_{tokens}"] = Engine(LlamaCppBackend.load(config, quiet, lookup_tokens=tokens), config)
    for engine in servers.values():
        engine.backend.cache_prompt = False  # every request prefilled in full, on every server alike
    return servers


def run(quick: bool) -> dict:
    servers = _servers(quick)
    repeats = 2 if quick else 4
    out: dict = {"draft_tokens": list(DRAFT_TOKENS), "repeats": repeats, "workloads": {}}
    try:
        for name, messages, params in workloads(quick):
            texts: dict[str, str] = {}
            rows: dict[str, list] = {who: [] for who in servers}
            for _ in range(repeats):  # servers in turn, so load on the machine hits them alike
                for who, engine in servers.items():
                    text, stats = timed_chat(engine, messages, params)
                    if texts.setdefault(who, text) != text:
                        raise AssertionError(f"{who}: greedy {name} changed between repeats")
                    rows[who].append(stats)
            result = {}
            for who, runs in rows.items():
                result[who] = {
                    "total_s": round(median([s.total_s for s in runs]), 3),
                    "decode_s": round(median([s.total_s - s.ttft_s for s in runs]), 3),
                    "completion_tokens": runs[0].completion_tokens,
                    "draft_tokens": runs[0].extra.get("draft_tokens", 0),
                    "draft_accepted": runs[0].extra.get("draft_accepted", 0),
                    "same_text_as_without": texts[who] == texts["without"],
                }
            base = result["without"]["total_s"]
            for who in result:
                result[who]["speedup_vs_without"] = round(base / result[who]["total_s"], 2)
            out["workloads"][name] = result
    finally:
        for engine in servers.values():
            engine.backend.close()
    return out
