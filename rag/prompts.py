"""Grounded prompts for document Q&A, and the "not found in the documents" behaviour.

``build_grounded_messages`` returns a ``GroundedPrompt``: plain ``{"role", "content"}`` messages
(the engine applies the chat template) and the hits that made it in. The messages are a system
message with instructions and numbered sources
(``[1] report.pdf p.3: …``), the recent history, and the question. Under a token budget the
question and instructions are always kept (the caller gives the budget and the model's token
counter: the engine alone decides what a prompt may cost); history is limited to the most recent turns that
fit in half of what remains; sources fill the rest in rank order — the lowest-ranked are
dropped first, and the last one that partly fits is truncated.

The sources come first and the instructions last, right above the question, with a worked
example of a cited answer. ``missing_citation`` is for models that answer from the sources but
do not cite them (small base models rarely write "[n]"): it names the source the answer quotes
(the longest run of words, or CJK characters, shared with it), so the caller can add "[n]".

``no_relevant_hits`` lets the caller answer ``NOT_FOUND_MESSAGE`` without calling the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.retrieval import Hit, detect_language

__all__ = ["NOT_FOUND_MESSAGE", "GroundedPrompt", "build_grounded_messages", "detect_language", "format_source",
           "no_relevant_hits", "missing_citation"]

NOT_FOUND_MESSAGE = {
    "en": "The documents do not cover this question.",
    "zh": "文档中没有涉及这个问题的内容。",
}

# The instructions come after the sources, right above the question, and end with a worked
# example of a cited answer: a small base model copies the shape of an example far better than
# it follows a rule (measured on the embedded Gemma 3 270M; see docs/performance.md).
_INSTRUCTIONS = {
    ("en", True): (
        "Answer the question in one or two sentences using only the sources above. After each fact, write the "
        "number of its source in square brackets. If the sources do not contain the answer, reply exactly: "
        f"\"{NOT_FOUND_MESSAGE['en']}\""),
    ("en", False): (
        "Answer the question in one or two sentences using the sources above. After each fact, write the number "
        "of its source in square brackets. If the sources do not contain the answer, say so first, then answer "
        "from general knowledge and make clear that this part does not come from the documents."),
    ("zh", True): (
        "请只根据上面的资料，用一两句话回答问题，并在每个事实后用方括号写出资料的编号。"
        f"如果资料中没有答案，请直接回答：“{NOT_FOUND_MESSAGE['zh']}”"),
    ("zh", False): (
        "请根据上面的资料，用一两句话回答问题，并在每个事实后用方括号写出资料的编号。"
        "如果资料中没有答案，请先说明这一点，再根据常识回答，并说明这部分内容不是来自文档。"),
}
_EXAMPLE = {
    "en": "For example, if a source said \"[4] shop.txt: The shop opens at 9:00.\", then:\n"
          "Question: When does the shop open?\nAnswer: The shop opens at 9:00 [4].",
    "zh": "例如，如果资料是“[4] shop.txt: 商店九点开门。”，那么：\n问题：商店几点开门？\n回答：商店九点开门 [4]。",
}
_SOURCES_TITLE = {"en": "Sources:", "zh": "资料："}
_NO_SOURCES = {"en": "(no sources were found)", "zh": "（没有找到相关资料）"}
_MESSAGE_OVERHEAD = 4  # role markers and separators that the chat template adds per message
_MIN_TRUNCATED = 32  # a truncated source shorter than this is not worth its citation number

CountTokens = Callable[[str], int]
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class GroundedPrompt:
    """The messages to send, and the hits numbered in them (``[1]`` is ``hits[0]``)."""

    messages: list[dict]
    hits: list[Hit]


def no_relevant_hits(hits: Sequence[Hit], threshold: float = 0.0) -> bool:
    """True when no hit scores at least ``threshold``: answer ``NOT_FOUND_MESSAGE`` directly."""
    return not any(hit.score >= threshold for hit in hits)


def format_source(number: int, hit: Hit, language: str = "en", text: str | None = None) -> str:
    """``[1] report.pdf p.3: text`` (``第3页`` in Chinese; no page part for unpaged files)."""
    page = "" if hit.page is None else (f" 第{hit.page}页" if language == "zh" else f" p.{hit.page}")
    return f"[{number}] {hit.source}{page}: {hit.text if text is None else text}"


def build_grounded_messages(
    question: str,
    hits: Sequence[Hit],
    history: Sequence[dict] | None = None,
    strict: bool = True,
    language: str = "en",
    count_tokens: CountTokens | None = None,
    budget_tokens: int | None = None,
) -> GroundedPrompt:
    """Messages for a grounded answer, within ``budget_tokens`` (counted by the model's
    ``count_tokens``) when one is given; ``history`` is never mutated."""
    if budget_tokens is not None and count_tokens is None:
        raise ValueError("A token budget needs the model's count_tokens.")
    language = language if language in ("en", "zh") else "en"
    count = count_tokens
    instructions = _INSTRUCTIONS[(language, bool(strict))]
    history = [dict(m) for m in (history or []) if m.get("role") in ("user", "assistant")]
    if budget_tokens is None:
        kept_history, sources = history, [format_source(n, h, language) for n, h in enumerate(hits, 1)]
    else:
        fixed = count(instructions) + count(_EXAMPLE[language]) + count(_SOURCES_TITLE[language]) + count(question) + 2 * _MESSAGE_OVERHEAD
        room = max(0, budget_tokens - fixed)
        kept_history = _recent_history(history, room // 2, count)
        room -= sum(count(m["content"]) + _MESSAGE_OVERHEAD for m in kept_history)
        sources = _fit_sources(hits, room, count, language)
    body = "\n".join(sources) if sources else _NO_SOURCES[language]
    system = f"{_SOURCES_TITLE[language]}\n{body}\n\n{instructions}\n\n{_EXAMPLE[language]}"
    messages = [{"role": "system", "content": system}, *kept_history, {"role": "user", "content": question}]
    return GroundedPrompt(messages, list(hits[:len(sources)]))


_WORD = re.compile(r"[^\W_]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CITATION = re.compile(r"\[\d+\]")
_MIN_QUOTED = 3  # shared words (or CJK characters) in a row before an answer counts as quoting a source


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_CN_NUMBER = re.compile(f"[{''.join(_CN_DIGITS)}{''.join(_CN_UNITS)}]+")


def _cn_number(numeral: str) -> str:
    """A Chinese numeral as digits ("三十六" -> "36", "两千零五" -> "2005"), so that an answer writing
    "36个月" is seen quoting a source that says "三十六个月" (and the other way round)."""
    total, section, digit = 0, 0, None
    for char in numeral:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
            continue
        unit = _CN_UNITS[char]
        if unit == 10000:
            total, section = (total + section + (digit or 0)) * unit, 0
        else:
            section += (1 if digit is None else digit) * unit  # "十五": one ten
        digit = None
    return str(total + section + (digit or 0))


def _words(text: str) -> list[str]:
    # CJK characters one by one (no spaces to split on), other scripts by word; numbers as digits.
    out: list[str] = []
    text = _CN_NUMBER.sub(lambda m: _cn_number(m.group()), text)
    chinese = bool(_CJK.search(text))  # there "36 个月" and "36个月" must read alike: digits one by one
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        out.extend(list(word) if _CJK.search(word) or (chinese and word.isdigit()) else [word])
    return out


def _longest_shared_run(a: list[str], b: list[str]) -> int:
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def missing_citation(answer: str, hits: Sequence[Hit]) -> int | None:
    """The number of the source an uncited answer quotes, or None (already cited, or quotes none).

    ``hits`` are the numbered sources as given to the model (``[1]`` is ``hits[0]``). Ties go to
    the higher-ranked source; "not covered" answers quote nothing and get no number.
    """
    if not answer.strip() or _CITATION.search(answer) or any(m in answer for m in NOT_FOUND_MESSAGE.values()):
        return None
    said = _words(answer)
    runs = [_longest_shared_run(said, _words(hit.text)) for hit in hits]
    best = max(runs, default=0)
    return runs.index(best) + 1 if best >= _MIN_QUOTED else None


def _recent_history(history: list[dict], room: int, count: CountTokens) -> list[dict]:
    kept: list[dict] = []
    for message in reversed(history):
        cost = count(str(message.get("content", ""))) + _MESSAGE_OVERHEAD
        if cost > room:
            break
        kept.insert(0, message)
        room -= cost
    if kept and kept[0]["role"] == "assistant":
        kept = kept[1:]  # never start with an answer whose question was trimmed away
    return kept


def _fit_sources(hits: Sequence[Hit], room: int, count: CountTokens, language: str) -> list[str]:
    lines: list[str] = []
    for number, hit in enumerate(hits, 1):
        line = format_source(number, hit, language)
        cost = count(line) + 1  # +1 for the newline
        if cost <= room:
            lines.append(line)
            room -= cost
            continue
        label_cost = count(format_source(number, hit, language, text="")) + 2
        if room - label_cost >= _MIN_TRUNCATED or (not lines and room > label_cost):
            lines.append(format_source(number, hit, language, text=_truncate(hit.text, room - label_cost, count)))
        break
    return lines


def _truncate(text: str, max_tokens: int, count: CountTokens) -> str:
    """The longest prefix of ``text`` (plus "…") within ``max_tokens``; binary search on length."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid] + "…") <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"
