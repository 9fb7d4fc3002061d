"""Grounded prompts for document Q&A, and the "not found in the documents" behaviour.

``build_grounded_messages`` returns plain ``{"role", "content"}`` messages (the engine applies
the chat template): a system message with instructions and numbered sources
(``[1] report.pdf p.3: …``), the recent history, and the question. Under a token budget the
question and instructions are always kept; history is limited to the most recent turns that
fit in half of what remains; sources fill the rest in rank order — the lowest-ranked are
dropped first, and the last one that partly fits is truncated.

``no_relevant_hits`` lets the caller answer ``NOT_FOUND_MESSAGE`` without calling the model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from rag.retrieval import Hit, detect_language

__all__ = ["NOT_FOUND_MESSAGE", "build_grounded_messages", "detect_language", "estimate_tokens",
           "format_source", "no_relevant_hits"]

NOT_FOUND_MESSAGE = {
    "en": "The documents do not cover this question.",
    "zh": "文档中没有涉及这个问题的内容。",
}

_INSTRUCTIONS = {
    ("en", True): (
        "Answer the question using only the numbered sources below, which are excerpts from the user's "
        "documents. Cite every source you use with its number in square brackets, like [1] or [2][3]. "
        f"If the sources do not contain the answer, reply exactly: \"{NOT_FOUND_MESSAGE['en']}\" "
        "Do not use outside knowledge."),
    ("en", False): (
        "Answer the question using the numbered sources below, which are excerpts from the user's documents, "
        "and cite every source you use with its number in square brackets, like [1] or [2][3]. If the sources "
        "do not contain the answer, say so first, then answer from general knowledge and make clear that this "
        "part does not come from the documents."),
    ("zh", True): (
        "请只根据下面编号的资料（摘自用户的文档）回答问题。引用资料时用方括号标注编号，例如 [1] 或 [2][3]。"
        f"如果资料中没有答案，请直接回答：“{NOT_FOUND_MESSAGE['zh']}”不要使用资料以外的知识。"),
    ("zh", False): (
        "请根据下面编号的资料（摘自用户的文档）回答问题，引用资料时用方括号标注编号，例如 [1] 或 [2][3]。"
        "如果资料中没有答案，请先说明这一点，再根据常识回答，并说明这部分内容不是来自文档。"),
}
_SOURCES_TITLE = {"en": "Sources:", "zh": "资料："}
_NO_SOURCES = {"en": "(no sources were found)", "zh": "（没有找到相关资料）"}
_MESSAGE_OVERHEAD = 4  # role markers and separators that the chat template adds per message
_MIN_TRUNCATED = 32  # a truncated source shorter than this is not worth its citation number

CountTokens = Callable[[str], int]
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, one per ~4 other characters."""
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


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
) -> list[dict]:
    """Messages for a grounded answer; ``history`` is never mutated."""
    language = language if language in ("en", "zh") else "en"
    count = count_tokens or estimate_tokens
    instructions = _INSTRUCTIONS[(language, bool(strict))]
    history = [dict(m) for m in (history or []) if m.get("role") in ("user", "assistant")]
    if budget_tokens is None:
        kept_history, sources = history, [format_source(n, h, language) for n, h in enumerate(hits, 1)]
    else:
        fixed = count(instructions) + count(_SOURCES_TITLE[language]) + count(question) + 2 * _MESSAGE_OVERHEAD
        room = max(0, budget_tokens - fixed)
        kept_history = _recent_history(history, room // 2, count)
        room -= sum(count(m["content"]) + _MESSAGE_OVERHEAD for m in kept_history)
        sources = _fit_sources(hits, room, count, language)
    body = "\n".join(sources) if sources else _NO_SOURCES[language]
    system = f"{instructions}\n\n{_SOURCES_TITLE[language]}\n{body}"
    return [{"role": "system", "content": system}, *kept_history, {"role": "user", "content": question}]


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
