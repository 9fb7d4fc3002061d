"""Answer quality as Chat users get it: simple questions, two-turn chats, "write a function".

``bench/data/questions.json`` holds 46 simple factual, arithmetic and code questions, half in
Chinese, with accepted answers; ``bench/quality_grading.py`` says what counts as correct and as
parroted. ``bench/data/conversations.json`` (10 two-turn chats) and ``bench/data/functions.json``
(10 "write a function" requests) are run by ``bench/quality_sets.py``. Everything goes through our
``Engine`` as Chat sends it (the Chat tab's default system prompt and max new tokens, its
repetition penalty), greedily so a rerun gives the same answers, on every backend that loads
here, so the numbers cover the prompt format and the stop rules, not only the model. Also
runnable on its own: ``python -m bench.quality_bench [--quick] [--backend llamacpp] [--model M]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from assist.chat_defaults import system_prompt_for
from bench.quality_grading import is_correct, is_parroted, load_questions
from bench.quality_sets import CONVERSATIONS, FUNCTIONS, load_set, run_conversations, run_functions, summary
from engine.templates import COMPLETION_EXAMPLES

__all__ = ["run", "run_engine", "markdown", "goals", "CHAT_MAX_NEW_TOKENS"]

BACKENDS = ("llamacpp", "transformers")
# The Chat tab's defaults: its system prompt comes from assist.chat_defaults (the model's own system
# text plus the language rule), its sampling mirrors webui/chat_tab.py respond(max_new_tokens=512,
# repetition_penalty=1.1): the bench must not import the UI. A 64-token cap used before cut
# right answers mid-derivation ("100 除以 4" worked out step by step), which Chat never does.
CHAT_MAX_NEW_TOKENS = 512
CHAT_REPETITION_PENALTY = 1.1
GOAL = ">= 90 % of the 46 right, zh within 10 points of en, 0 % parroted (greedy)"


def _instructions(engine, system_prompt: str) -> str:
    """What the model was told: copying it back is parroting (the completion format's examples too)."""
    fmt = getattr(engine.backend, "prompt_format", None)
    examples = "\n".join(f"{q}\n{a}" for pairs in COMPLETION_EXAMPLES.values() for q, a in pairs) \
        if fmt is not None and fmt.completion else ""
    return f"{system_prompt}\n{examples}"


def _asker(engine):
    from engine.config import SamplingParams

    params = SamplingParams(temperature=0.0, max_new_tokens=CHAT_MAX_NEW_TOKENS,
                            repetition_penalty=CHAT_REPETITION_PENALTY)
    return lambda messages: engine.chat(messages, params)


def _questions(ask, questions: list[dict], system: list[dict], instructions: str) -> list[dict]:
    rows = []
    for question in questions:
        answer, stats = ask([*system, {"role": "user", "content": question["question"]}])
        rows.append({"id": question["id"], "language": question["language"], "kind": question["kind"],
                     "question": question["question"], "answer": answer,
                     "correct": is_correct(question, answer),
                     "parroted": is_parroted(answer, instructions, question["question"]),
                     "tokens": stats.completion_tokens, "finish_reason": stats.finish_reason})
    return rows


def run_engine(engine, questions: list[dict], system_prompt: str | None = None,
               conversations: list[dict] | None = None, functions: list[dict] | None = None) -> dict:
    """Ask everything greedily (``system_prompt``: Chat's default for the engine's model); the answers,
    their grades, and shares per language (and kind)."""
    started = time.perf_counter()
    system_prompt = system_prompt_for(engine) if system_prompt is None else system_prompt
    ask, instructions = _asker(engine), _instructions(engine, system_prompt)
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    rows = _questions(ask, questions, system, instructions)
    out = {"backend": engine.info.backend, "model": engine.info.model, "system_prompt": system_prompt}
    whole = summary(rows)
    out.update({k: v for k, v in whole.items() if k != "by_language"}, by_language=whole["by_language"])
    out["by_kind"] = {kind: summary([r for r in rows if r["kind"] == kind])
                      for kind in dict.fromkeys(r["kind"] for r in rows)}
    out["answers"] = rows
    if conversations:
        out["two_turn"] = run_conversations(ask, conversations, system, instructions)
    if functions:
        out["functions"] = run_functions(ask, functions, system, instructions)
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


def _every_other(items: list[dict]) -> list[dict]:
    """Every other question of each language and kind: both languages and all kinds stay covered."""
    return [q for i, q in enumerate(items) if i % 2 == 0 or q["kind"] == "code_block"]


def run(quick: bool = False, backends: tuple[str, ...] = BACKENDS, model: str | None = None, engine=None) -> dict:
    """One block per backend: the shares and the answers. A backend that does not load is reported, not fatal."""
    from engine.config import EngineConfig
    from engine.engine import Engine
    from engine.errors import EngineError

    sets = load_questions(), load_set(CONVERSATIONS), load_set(FUNCTIONS)
    questions, conversations, functions = (_every_other(s) for s in sets) if quick else sets
    results: dict = {"max_new_tokens": CHAT_MAX_NEW_TOKENS, "goal": GOAL,
                     "runs": []}
    for backend in backends:
        if engine is not None and engine.info.backend == backend:
            results["runs"].append(run_engine(engine, questions, conversations=conversations, functions=functions))
            continue
        try:
            loaded = Engine.load(EngineConfig(backend=backend, **({"model": model} if model else {})))
        except (EngineError, ImportError, OSError) as exc:  # one backend failing must not lose the others
            results["runs"].append({"backend": backend, "skipped": f"{type(exc).__name__}: {exc}"})
            continue
        try:
            results["runs"].append(run_engine(loaded, questions, conversations=conversations, functions=functions))
            print(markdown({"runs": results["runs"][-1:]}), file=sys.stderr, flush=True)
        finally:
            close = getattr(loaded.backend, "close", None)
            if close is not None:
                close()
    return results


def _label(block: dict) -> str:
    """The backend and the model's file or name: two models on one backend stay apart."""
    model = str(block.get("model") or "").rstrip("/").rsplit("/", 1)[-1]
    return f"{block['backend']} · {model[:40]}" if model else block["backend"]


def _pct(row: dict, key: str) -> str:
    return f"{row[key]} %" if key in row else "—"


def markdown(results: dict) -> str:
    """The quality table: one row per backend, set and language."""
    lines = ["| backend | set | language | n | right | function runs right | parroted |",
             "|---|---|---|---|---|---|---|"]
    for block in results.get("runs", []):
        if "skipped" in block:
            lines.append(f"| {block['backend']} | — | — | — | skipped: {block['skipped'][:80]} | | |")
            continue
        for name, data in (("46 questions", block), ("two-turn", block.get("two_turn")),
                           ("write a function", block.get("functions"))):
            if not data:
                continue
            for lang, row in (("all", data), *data["by_language"].items()):
                lines.append(f"| {_label(block)} | {name} | {lang} | {row['questions']} | "
                             f"{_pct(row, 'correct_pct')} | {_pct(row, 'runs_right_pct')} | "
                             f"{_pct(row, 'parroted_pct')} |")
    return "\n".join(lines)


def goals(quality: dict) -> list[tuple[str, str, bool | None]]:
    """(goal, measured, met) rows for bench/report.py; the two newer sets are reported, not judged."""
    out: list[tuple[str, str, bool | None]] = []
    for block in quality.get("runs", []):
        if "correct_pct" not in block:
            continue
        name, en, zh = _label(block), block["by_language"]["en"], block["by_language"]["zh"]
        out.append((f"{name}: >= 90 % of the 46 simple questions right (greedy)",
                    f"{block['correct_pct']} % (en {en['correct_pct']} %, zh {zh['correct_pct']} %)",
                    block["correct_pct"] >= 90))
        gap = round(en["correct_pct"] - zh["correct_pct"], 1)
        out.append((f"{name}: Chinese within 10 points of English", f"{gap} points behind", gap <= 10))
        sets = [block, *(block[k] for k in ("two_turn", "functions") if k in block)]
        parroted = max(s["parroted_pct"] for s in sets)
        out.append((f"{name}: no answer parroted (all sets)", f"{parroted} % (worst set)", parroted == 0))
        if "two_turn" in block:
            out.append((f"{name}: two-turn chats, second answer right (report)",
                        f"{block['two_turn']['correct_pct']} % of {block['two_turn']['questions']}", None))
        if "functions" in block:
            fn = block["functions"]
            out.append((f"{name}: 'write a function' in Chat: fenced, syntax-valid, defines it (report)",
                        f"{fn['correct_pct']} % of {fn['questions']}; runs right {fn['runs_right_pct']} %", None))
    return out


def _print_answers(results: dict) -> None:
    for block in results["runs"]:
        rows = [*block.get("answers", []), *block.get("two_turn", {}).get("answers", []),
                *block.get("functions", {}).get("answers", [])]
        for row in rows:
            mark = ("ok " if row["correct"] else "-- ") + ("PARROT " if row["parroted"] else "")
            mark += {True: "runs ", False: "wrong-result "}.get(row.get("runs_right"), "") if row["correct"] else ""
            asked = row.get("question") or " / ".join(row.get("turns", []))
            print(f"[{block['backend']}] {mark}{row['id']} {asked!r} -> {row['answer']!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about half of each set (every kind, both languages)")
    parser.add_argument("--backend", default=",".join(BACKENDS), help="comma-separated backends to run")
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", default=None, help="also write the full results (with answers) here")
    args = parser.parse_args(argv)
    results = run(args.quick, tuple(b.strip() for b in args.backend.split(",") if b.strip()), args.model)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, ensure_ascii=False, indent=1)
    print(markdown(results))
    _print_answers(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
