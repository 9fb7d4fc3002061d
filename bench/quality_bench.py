"""Answer quality on simple questions: the share answered correctly and the share that parrot.

``bench/data/questions.json`` holds simple factual, arithmetic and code questions, half in
Chinese, with accepted answers; ``bench/quality_grading.py`` says what counts as correct and as
parroted. Each question goes through our ``Engine`` (greedy, as Chat sends it: the Chat tab's
default system prompt, then the question) on every backend that loads here, so the numbers
cover the prompt format and the stop rules, not only the model. Also runnable on its own:
``python -m bench.quality_bench [--quick] [--backend transformers,llamacpp]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.quality_grading import is_correct, is_parroted, load_questions
from engine.templates import COMPLETION_EXAMPLES

__all__ = ["run", "run_engine", "CHAT_SYSTEM_PROMPT"]

BACKENDS = ("llamacpp", "transformers")
# The Chat tab's default (webui/chat_tab.py DEFAULT_SYSTEM_PROMPT); the bench must not import the UI.
CHAT_SYSTEM_PROMPT = "You are a helpful assistant. Answer in the same language as the user's question."
MAX_TOKENS = {"code_block": 128}
DEFAULT_MAX_TOKENS = 64


def _share(rows: list[dict], key: str) -> float:
    return round(100 * sum(r[key] for r in rows) / len(rows), 1) if rows else 0.0


def _summary(rows: list[dict]) -> dict:
    return {"questions": len(rows), "correct_pct": _share(rows, "correct"), "parroted_pct": _share(rows, "parroted")}


def run_engine(engine, questions: list[dict], system_prompt: str = CHAT_SYSTEM_PROMPT) -> dict:
    """Ask every question greedily; the answers, their grades, and shares per language and kind."""
    from engine.config import SamplingParams

    rows = []
    started = time.perf_counter()
    fmt = getattr(engine.backend, "prompt_format", None)
    # The completion format's worked examples are prompt too: copying them is parroting.
    examples = "\n".join(f"{q}\n{a}" for pairs in COMPLETION_EXAMPLES.values() for q, a in pairs) \
        if fmt is not None and fmt.completion else ""
    for question in questions:
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": question["question"]})
        params = SamplingParams(temperature=0.0, max_new_tokens=MAX_TOKENS.get(question["kind"], DEFAULT_MAX_TOKENS))
        answer, stats = engine.chat(messages, params)
        rows.append({"id": question["id"], "language": question["language"], "kind": question["kind"],
                     "question": question["question"], "answer": answer,
                     "correct": is_correct(question, answer),
                     "parroted": is_parroted(answer, f"{system_prompt}\n{examples}", question["question"]),
                     "tokens": stats.completion_tokens, "finish_reason": stats.finish_reason})
    out = {"backend": engine.info.backend, "model": engine.info.model, **_summary(rows),
           "wall_s": round(time.perf_counter() - started, 1)}
    out["by_language"] = {lang: _summary([r for r in rows if r["language"] == lang]) for lang in ("en", "zh")}
    out["by_kind"] = {kind: _summary([r for r in rows if r["kind"] == kind])
                      for kind in dict.fromkeys(r["kind"] for r in rows)}
    out["answers"] = rows
    return out


def _quick_subset(questions: list[dict]) -> list[dict]:
    """Every other question of each language and kind: both languages and all kinds stay covered."""
    return [q for i, q in enumerate(questions) if i % 2 == 0 or q["kind"] == "code_block"]


def run(quick: bool = False, backends: tuple[str, ...] = BACKENDS, model: str | None = None, engine=None) -> dict:
    """One block per backend: the shares and the answers. A backend that does not load is reported, not fatal."""
    from engine.config import EngineConfig
    from engine.engine import Engine
    from engine.errors import EngineError

    questions = load_questions()
    if quick:
        questions = _quick_subset(questions)
    results: dict = {"system_prompt": CHAT_SYSTEM_PROMPT, "goal": ">= 50 % correct, 0 % parroted (greedy)",
                     "runs": []}
    for backend in backends:
        if engine is not None and engine.info.backend == backend:
            results["runs"].append(run_engine(engine, questions))
            continue
        try:
            loaded = Engine.load(EngineConfig(backend=backend, **({"model": model} if model else {})))
        except (EngineError, ImportError, OSError) as exc:  # one backend failing must not lose the others
            results["runs"].append({"backend": backend, "skipped": f"{type(exc).__name__}: {exc}"})
            continue
        try:
            results["runs"].append(run_engine(loaded, questions))
            print(markdown({"runs": results["runs"][-1:]}), file=sys.stderr, flush=True)
        finally:
            close = getattr(loaded.backend, "close", None)
            if close is not None:
                close()
    return results


def markdown(results: dict) -> str:
    """The quality table: one row per backend and language."""
    lines = ["| backend | language | questions | correct | parroted |", "|---|---|---|---|---|"]
    for block in results.get("runs", []):
        if "skipped" in block:
            lines.append(f"| {block['backend']} | — | — | skipped: {block['skipped'][:80]} | |")
            continue
        for lang, row in (("all", block), *block["by_language"].items()):
            lines.append(f"| {block['backend']} | {lang} | {row['questions']} | {row['correct_pct']} % | "
                         f"{row['parroted_pct']} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="half the questions (every kind, both languages)")
    parser.add_argument("--backend", default=",".join(BACKENDS), help="comma-separated backends to run")
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", default=None, help="also write the full results (with answers) here")
    args = parser.parse_args(argv)
    results = run(args.quick, tuple(b.strip() for b in args.backend.split(",") if b.strip()), args.model)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, ensure_ascii=False, indent=1)
    print(markdown(results))
    for block in results["runs"]:
        for row in block.get("answers", []):
            mark = ("ok " if row["correct"] else "-- ") + ("PARROT " if row["parroted"] else "")
            print(f"[{block['backend']}] {mark}{row['id']} {row['question']!r} -> {row['answer'][:80]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
