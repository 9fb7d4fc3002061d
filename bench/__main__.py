"""``make bench`` / ``python -m bench [--quick] [--only a,b] [--out DIR]``.

Measures, on the default configuration of this machine (the embedded model unless ``--model``):

* ``overhead``: the engine's stream vs bare ``model.generate`` on the same prompt;
* ``turns``: time to first token at turns 1 and 8 of a chat, with and without KV reuse;
* ``concurrency``: aggregate tokens/s of 1, 4 and 16 simultaneous streams;
* ``prompt_lookup``: a Code-tab fix with prompt-lookup decoding vs without;
* ``quantization``: fp32 / bf16 / int8 on a CPU, fp16 / bf16 / 4-bit on a GPU (speed, memory, quality);
* ``rag``: document search latency and recall (``bench/rag_bench.py``);
* ``ingest``: a 396-page PDF stage by stage, embedding batch sizes, OCR at 3 DPIs, a background job
  (``bench/ingest_bench.py``);
* ``llamacpp``: the llama.cpp backend on the same GGUF beside the bare xllamacpp server (decode,
  TTFT at ~300 prompt tokens, turns 1/8, 1/4/16 streams beside the bare server's, prompt lookup with vs
  without, app RSS; ``bench/llamacpp_bench.py``, ``bench/llamacpp_lookup_bench.py``);
* ``quality``: simple questions (46, half Chinese; ``--quick`` about half), 10 two-turn conversations
  and 10 "write a function" requests, answered greedily as Chat sends them, through the Engine on
  each backend: share correct, share parroting the prompt, functions that pass the syntax check and
  that run right (``bench/quality_bench.py``, ``bench/quality_sets.py``);
* ``first_start``: ``python app.py`` to a healthy server and a first token, empty then warm model
  cache (``bench/first_start.py``; target: healthy within 30 s);
* ``api_speed``: decode over ``/v1`` (the app as users start it) beside the bare xllamacpp server on
  the same GGUF, and 4 streams vs 1 over ``/v1``, on the default and on Gemma 3 270M
  (``bench/api_speed_bench.py``; targets 0.95x and 1.5x);
* ``rag_quality``: retrieval hit@1 / hit@5 per stage on the generated and the real question sets
  (``bench/rag_quality.py``; ``--reranker-model DIR`` adds the cross-encoder stage);
* ``docs_answers``: document answers over real manuals (29 checkable questions, half Chinese; ``--quick``
  12), the prompt before issue 19 beside the selected passages: share right, prompt tokens, TTFT per
  stage (``bench/docs_answer_bench.py``; targets: median prompt <= 450 tokens, no fewer right).

The engine sections (overhead, turns, concurrency, prompt_lookup) measure the transformers backend
(``--backend transformers``); ``llamacpp`` measures llama.cpp.

Writes ``bench/results/<date>-<device>[-quick].json`` and ``.md`` (a markdown table). ``--quick``
finishes in a few minutes on 2 CPU cores; the full run takes longer. Run it on a quiet machine:
other load on the cores skews every number.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from bench.common import environment, load_avg, load_engine, peak_rss_bytes, section
from bench.report import render_markdown

SECTIONS = ("overhead", "turns", "concurrency", "prompt_lookup", "quantization", "rag", "ingest", "llamacpp",
            "quality", "rag_quality", "first_start", "api_speed", "docs_answers")
_TRANSFORMERS_SECTIONS = ("overhead", "turns", "concurrency", "prompt_lookup")
RESULTS = Path(__file__).resolve().parent / "results"


def _device_slug(engine) -> str:
    info = engine.info
    if info.device == "cpu":
        return "cpu"
    name = re.sub(r"[^a-z0-9]+", "-", info.device_name.lower()).strip("-")
    return f"{info.device}-{name}"[:48]


def _rag(quick: bool) -> dict:
    from bench import rag_bench

    return rag_bench.run(quick=quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and repeats (a few minutes on a CPU)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--model", default=None, help="model to benchmark (default: the embedded default)")
    parser.add_argument("--out", default=str(RESULTS), help="directory for the JSON and markdown results")
    parser.add_argument("--reranker-model", default=None, help="CrossEncoder directory for the rag_quality reranker stage")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    started = time.perf_counter()
    config = {"model": args.model} if args.model else {}
    results: dict = {"date": time.strftime("%Y-%m-%d"), "quick": args.quick, "environment": environment()}
    # The transformers sections need their engine; a run of only llama.cpp rows skips loading it.
    engine = load_engine(backend="transformers", **config) if set(wanted) & set(_TRANSFORMERS_SECTIONS) else None
    if engine is not None:
        info = engine.info
        results["default_config"] = {"model": info.model, "device": info.device, "dtype": info.dtype,
                                     "quantization": info.quantization, "capacity": engine.queue.capacity,
                                     "notes": list(info.notes)}
    results["device"] = _device_slug(engine) if engine is not None else "cpu"
    from bench import engine_bench

    runners = {
        "overhead": lambda: engine_bench.overhead(engine, args.quick),
        "turns": lambda: engine_bench.turns(engine, args.quick),
        "concurrency": lambda: engine_bench.concurrency(engine, args.quick),
        "prompt_lookup": lambda: engine_bench.prompt_lookup(engine, args.quick),
        "quantization": lambda: __import__("bench.quant_bench", fromlist=["run"]).run(args.quick),
        "rag": lambda: _rag(args.quick),
        "ingest": lambda: __import__("bench.ingest_bench", fromlist=["run"]).run(args.quick),
        "llamacpp": lambda: __import__("bench.llamacpp_bench", fromlist=["run"]).run(args.quick, args.model),
        "quality": lambda: __import__("bench.quality_bench", fromlist=["run"]).run(args.quick, model=args.model,
                                                                                    engine=engine),
        "rag_quality": lambda: __import__("bench.rag_quality", fromlist=["run"]).run(args.quick, args.reranker_model),
        "first_start": lambda: __import__("bench.first_start", fromlist=["run"]).run(args.quick),
        "api_speed": lambda: __import__("bench.api_speed_bench", fromlist=["run"]).run(args.quick),
        "docs_answers": lambda: __import__("bench.docs_answer_bench", fromlist=["run"]).run(args.quick,
                                                                                            model=args.model),
    }
    for name in SECTIONS:
        if name in wanted:
            results[name] = section(name, runners[name])
    results["load_avg_end"] = load_avg()
    results["main_process_peak_rss_bytes"] = peak_rss_bytes()
    results["wall_s"] = round(time.perf_counter() - started, 1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{results['date']}-{results['device']}" + ("-quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown = render_markdown(results)
    (out / f"{stem}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"[bench] wrote {out / stem}.json and .md in {results['wall_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
