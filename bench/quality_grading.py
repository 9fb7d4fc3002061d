"""How the answer-quality benchmark judges one answer: right or wrong, parroted or not.

*Correct*: for ``fact`` and ``code`` questions, one of the accepted answers occurs in the answer
(case-insensitive; Latin answers as whole words, so "7" is not found in "17") and the answer is
not a list of four or more guesses; for ``arithmetic``,
the first number of the result (digits or Chinese numerals; after "=", "等于", "is" or "是" when
the answer restates the sum) is the expected one, so an answer that lists "4, 5, 6" is not 4; for ``code_block``, the answer holds Python code that
``assist.code.check`` accepts and that contains every ``must_contain`` string.

*Parroted*: the answer repeats the prompt instead of answering: it contains a run of
``PARROT_SPAN`` or more consecutive tokens of the instructions (system prompt, grounding
rules, the completion format's worked examples), or the whole question when that is at least ``MIN_QUESTION_TOKENS`` tokens. Tokens are
lower-cased Latin words/numbers and single CJK characters; punctuation and spacing are ignored.
Quoting the *sources* in a Docs answer is what we want, so sources are never instructions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["QUESTIONS", "load_questions", "is_correct", "is_parroted", "tokens", "PARROT_SPAN"]

QUESTIONS = Path(__file__).resolve().parent / "data" / "questions.json"
PARROT_SPAN = 6
MIN_QUESTION_TOKENS = 4

_TOKEN = re.compile(r"[a-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+")
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
    """The first number of the result: after "=" / "等于" / "is" / "是" when the answer restates the sum."""
    text = text or ""
    said = re.search(r"=|等于|\bis\b|是", text)
    match = _NUMBER.search(text, said.end() if said else 0) or _NUMBER.search(text)
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
        from assist.code.check import check_code
        from assist.code.extract import extract_code

        code = extract_code(answer, question.get("code_language", "python")).code
        return bool(code) and all(s in code for s in question.get("must_contain", ())) and \
            check_code(code, question.get("code_language", "python")).ok
    if _hedged(answer):
        return False
    return any(_contains(answer, accepted) for accepted in question["answers"])


def _hedged(answer: str) -> bool:
    """A list of four or more candidates ("deer, horse, tiger, dog") is a guess, not an answer."""
    first_line = (answer or "").strip().split("\n", 1)[0]
    return len([part for part in re.split(r"[、,，;；]", first_line) if part.strip()]) >= 4


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
