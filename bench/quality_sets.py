"""The two sets of the quality bench beyond single questions: two-turn chats and "write a function".

``bench/data/conversations.json``: the second question only makes sense after the first ("How
many legs does a spider have?" then "And an ant?"), so they show whether the history reaches the
model and is used. The model's own first answer goes into the history, as in Chat; only the second
answer is graded (``bench.quality_grading.is_correct``; for a function the tests must pass too,
since a valid ``def`` alone does not show that "make it three numbers" was understood).

``bench/data/functions.json``: "write a function" requests sent as Chat sends them, graded as the
share with a fenced, syntax-valid block that defines the function, and separately the share whose
function gives the right results (``bench.function_check``, run isolated).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bench.function_check import check_function
from bench.quality_grading import answer_code, is_correct, is_parroted

__all__ = ["CONVERSATIONS", "FUNCTIONS", "load_set", "run_conversations", "run_functions", "share", "summary"]

DATA = Path(__file__).resolve().parent / "data"
CONVERSATIONS = DATA / "conversations.json"
FUNCTIONS = DATA / "functions.json"

# engine.chat(messages) -> (answer, stats), with the bench's sampling parameters already chosen
Ask = Callable[[list[dict]], tuple[str, object]]


def load_set(path: Path) -> list[dict]:
    """The items of one data file (its one list besides "about")."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return next(value for key, value in data.items() if key != "about")


def share(rows: list[dict], key: str) -> float:
    return round(100 * sum(bool(r.get(key)) for r in rows) / len(rows), 1) if rows else 0.0


def summary(rows: list[dict], keys: tuple[str, ...] = ("correct", "parroted")) -> dict:
    """Count and percentage of each key, overall and per language."""
    def one(part: list[dict]) -> dict:
        return {"questions": len(part), **{f"{key}_pct": share(part, key) for key in keys}}

    return {**one(rows), "by_language": {lang: one([r for r in rows if r["language"] == lang])
                                         for lang in ("en", "zh")}}


def _function_grade(item: dict, answer: str) -> dict:
    """Syntax-valid and defining the function (``correct``); then run on the item's tests (``runs_right``)."""
    valid = is_correct(item, answer)
    if not valid:
        return {"correct": False, "runs_right": False, "function_detail": "no valid fenced function"}
    result = check_function(answer_code(answer) or "", item.get("function"), item["tests"],
                            tuple(item.get("forbidden_calls", ())))
    return {"correct": True, "runs_right": result.passed, "function": result.function,
            "function_detail": result.detail}


def _row(item: dict, answer: str, stats, instructions: str, question: str) -> dict:
    return {"id": item["id"], "language": item["language"], "kind": item["kind"], "answer": answer,
            "parroted": is_parroted(answer, instructions, question),
            "tokens": stats.completion_tokens, "finish_reason": stats.finish_reason}


def run_conversations(ask: Ask, conversations: list[dict], system: list[dict], instructions: str) -> dict:
    """Ask each first question, put the model's answer in the history, grade the answer to the second."""
    rows = []
    for item in conversations:
        first_q, second_q = item["turns"]
        first, _ = ask([*system, {"role": "user", "content": first_q}])
        answer, stats = ask([*system, {"role": "user", "content": first_q}, {"role": "assistant", "content": first},
                             {"role": "user", "content": second_q}])
        row = {**_row(item, answer, stats, instructions, second_q), "turns": item["turns"], "first_answer": first}
        if item["kind"] == "function":
            grade = _function_grade(item, answer)
            row.update(grade, correct=grade["runs_right"])
        else:
            row["correct"] = is_correct(item, answer)
        rows.append(row)
    return {**summary(rows), "answers": rows}


def run_functions(ask: Ask, requests: list[dict], system: list[dict], instructions: str) -> dict:
    """Each request as a Chat message; share syntax-valid with the function, share whose function runs right."""
    rows = []
    for item in requests:
        answer, stats = ask([*system, {"role": "user", "content": item["question"]}])
        rows.append({**_row(item, answer, stats, instructions, item["question"]), "question": item["question"],
                     **_function_grade(item, answer)})
    return {**summary(rows, ("correct", "runs_right", "parroted")), "answers": rows}
