"""How the answer-quality benchmark judges one answer: right or wrong, parroted or not.

*Correct*: for ``fact`` and ``code`` questions, one of the accepted answers occurs in the answer
(case-insensitive; Latin answers as whole words, so "7" is not found in "17") and the answer is
not a list of four or more guesses (a thousands separator, "139,824", is not a list). For
``arithmetic``, the number the answer gives as the result is the expected one: the ``\boxed{}``
value when there is one (the LaTeX way to state a final answer), else the first number after
"=", "equals", "is", "等于" or "是" when the answer restates the sum, else the first number; so an
answer that lists "4, 5, 6" is not 4. For ``code_block``, the answer's Python blocks taken together
(an answer may define the function in one block and show a call in another) pass
``assist.code.check`` and contain every ``must_contain`` string. For ``function`` (a "write a
function" request), the answer has a fenced block, its Python passes the check, and it defines the
requested function (``function``), or any function when the request names none.

*Parroted*: the answer repeats the prompt instead of answering: it contains a run of
``PARROT_SPAN`` or more consecutive tokens of the instructions (system prompt, grounding
rules, the completion format's worked examples), or the whole question when that is at least ``MIN_QUESTION_TOKENS`` tokens. Tokens are
lower-cased Latin words/numbers and single CJK characters; punctuation and spacing are ignored.
Quoting the *sources* in a Docs answer is what we want, so sources are never instructions.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

__all__ = ["QUESTIONS", "load_questions", "is_correct", "is_parroted", "tokens", "PARROT_SPAN", "first_number",
           "answer_code", "functions_defined"]

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions.json"
PARROT_SPAN = 6
MIN_QUESTION_TOKENS = 4

_TOKEN = re.compile(r"[a-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+")
# Where an answer states its result: "= 7", "equals 7", "is 7", "等于 7", "是 7".
_RESULT_MARK = re.compile(r"=|\bequals?\b|等于|\bis\b|是")
_BOXED = re.compile(r"\\boxed\{\s*([^{}]*?)\s*\}")
# Items of a list: Chinese and Latin separators, but not the comma inside "139,824".
_LIST_SEPARATOR = re.compile(r"[、，;；]|,(?!(?<=\d,)\d{3}(?!\d))")
_FENCE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})", re.M)
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["questions"]


def tokens(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def _chinese_number(text: str) -> int | None:
    """Chinese numerals up to 999 ("十七" -> 17, "二十五" -> 25, "一百" -> 100)."""
    total, current = 0, 0
    for char in text:
        if char in _CN_DIGITS:
            current = _CN_DIGITS[char]
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        elif char == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


def first_number(text: str) -> float | None:
    """The number given as the result: ``\\boxed{n}``, else the first after a result mark, else the first."""
    text = text or ""
    boxed = _BOXED.search(text)
    said = _RESULT_MARK.search(text)
    match = (boxed and _NUMBER.search(boxed.group(1))) or _NUMBER.search(text, said.end() if said else 0) \
        or _NUMBER.search(text)
    if match is None:
        return None
    value = match.group()
    return float(value) if value[0].isdigit() else _chinese_number(value)


def _contains(answer: str, accepted: str) -> bool:
    if re.fullmatch(r"[\w.]+", accepted, re.A):  # Latin: a whole word, case-insensitive
        return re.search(rf"(?<![\w.]){re.escape(accepted)}(?![\w])", answer, re.I | re.A) is not None
    return accepted.lower() in answer.lower()


def is_correct(question: dict, answer: str) -> bool:
    kind = question["kind"]
    if kind == "arithmetic":
        return first_number(answer) == float(question["number"])
    if kind == "code_block":
        code = answer_code(answer, question.get("code_language", "python"))
        return code is not None and all(s in code for s in question.get("must_contain", ()))
    if kind == "function":
        code = answer_code(answer) if _FENCE.search(answer or "") else None
        names = [name for name, _ in functions_defined(code or "")]
        return bool(names) and (question.get("function") is None or question["function"] in names)
    if _hedged(answer):
        return False
    return any(_contains(answer, accepted) for accepted in question["answers"])


def answer_code(answer: str, language: str = "python") -> str | None:
    """The answer's code in ``language`` (all its blocks in that language, in order) if it passes our check."""
    from assist.code.check import check_code
    from assist.code.extract import extract_code

    code = extract_code(answer, language, join=True).code
    return code if code.strip() and check_code(code, language).ok else None


def functions_defined(code: str) -> list[tuple[str, int]]:
    """(name, positional parameter count) of each top-level ``def`` in valid Python, in order."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    return [(node.name, len(node.args.posonlyargs) + len(node.args.args)) for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def _hedged(answer: str) -> bool:
    """A list of four or more candidates ("deer, horse, tiger, dog") is a guess, not an answer."""
    first_line = (answer or "").strip().split("\n", 1)[0]
    return len([part for part in _LIST_SEPARATOR.split(first_line) if part.strip()]) >= 4


def _has_span(haystack: list[str], needle: list[str], size: int) -> bool:
    if len(needle) < size:
        return False
    grams = {tuple(haystack[i:i + size]) for i in range(len(haystack) - size + 1)}
    return any(tuple(needle[i:i + size]) in grams for i in range(len(needle) - size + 1))


def is_parroted(answer: str, instructions: str, question: str) -> bool:
    said = tokens(answer)
    if _has_span(tokens(instructions), said, PARROT_SPAN):
        return True
    asked = tokens(question)
    return len(asked) >= MIN_QUESTION_TOKENS and _has_span(said, asked, len(asked))
