"""Grounded prompts for document Q&A, and the "not found in the documents" behaviour.

``build_grounded_messages`` returns a ``GroundedPrompt``: plain ``{"role", "content"}`` messages
(the engine applies the chat template) and the hits numbered in them (``[1] report.pdf p.3: …``).

Layout. By default the part that never changes comes first: a system message with the rule —
the same text for every question of a language and strictness — then the recent history, then
one user message with the numbered sources and the question. llama.cpp's prompt cache (and our
transformers KV reuse) then skip everything up to the sources on every question after the
first; with the sources first, nothing after the template header was reusable. The rule is one
short sentence: the embedded instruction-tuned model answers far better without being told to
cite or to reply "not covered" (see ``_CHAT_RULES``); the citation numbers are added from what
the answer quotes (``missing_citation``). ``sources_first=True`` is the layout before issue 19
(sources, then rules and a worked example right above the question, all in the system
message): base models in the completion format keep it (a small base model copies the example
just above the question far better than it follows a rule; see docs/performance.md), and the
answer bench compares against it.

Sources. With ``source_tokens`` (``DEFAULT_SOURCE_TOKENS`` for document answers) the sources are
passages picked by ``rag.passages`` (the sentences that answer the question, within that many
tokens); without it, whole hits in rank order as before. Under a token budget the question and
instructions are always kept (the caller gives the budget and the model's token counter: the
engine alone decides what a prompt may cost); history is limited to the most recent turns that
fit in half of what remains; sources fill the rest — passages within ``source_tokens``, or whole
hits lowest-ranked dropped first, the last one that partly fits truncated.

``no_relevant_hits`` lets the caller answer ``NOT_FOUND_MESSAGE`` without calling the model;
``missing_citation`` (``rag.citations``) finds the source an uncited answer quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rag import citations
from rag.passages import select_passages
from rag.retrieval import Hit, detect_language

__all__ = ["DEFAULT_SOURCE_TOKENS", "NOT_FOUND_MESSAGE", "GroundedPrompt", "build_grounded_messages",
           "detect_language", "format_source", "instructions", "sources_block", "sources_message", "no_relevant_hits",
           "missing_citation"]

NOT_FOUND_MESSAGE = {
    "en": "The documents do not cover this question.",
    "zh": "文档中没有涉及这个问题的内容。",
}

# The layout before issue 19, kept for base models: rules and a worked example right above the
# question, after the sources. A small base model copies the shape of an example far better than
# it follows a rule (measured on Gemma 3 270M; see docs/performance.md).
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
# Models with a chat template get one short rule instead. The embedded Qwen2.5-Coder-0.5B answers
# 7-9 of 12 checkable questions with it and 0-2 with the rules above: told to cite and to reply
# "not covered" exactly, it replies "not covered" to nearly everything (bench/docs_answer_bench.py).
# The numbers are added afterwards from what the answer quotes (rag.citations); strict answers
# still say "not covered" without the model when no hit is relevant (assist.answers).
_CHAT_RULES = {
    ("en", True): "You are a helpful assistant. Answer the question from the sources given with it.",
    ("en", False): ("You are a helpful assistant. Answer the question from the sources given with it. If they do "
                    "not cover it, say so, then answer from general knowledge."),
    ("zh", True): "你是一个乐于助人的助手。请根据问题附带的资料回答问题。",
    ("zh", False): "你是一个乐于助人的助手。请根据问题附带的资料回答问题。如果资料没有涉及，请先说明，再根据常识回答。",
}
_EXAMPLE = {
    "en": "For example, if a source said \"[4] shop.txt: The shop opens at 9:00.\", then:\n"
          "Question: When does the shop open?\nAnswer: The shop opens at 9:00 [4].",
    "zh": "例如，如果资料是“[4] shop.txt: 商店九点开门。”，那么：\n问题：商店几点开门？\n回答：商店九点开门 [4]。",
}
_SOURCES_TITLE = {"en": "Sources:", "zh": "资料："}
_QUESTION_LABEL = {"en": "Question: ", "zh": "问题："}  # as in the worked example
_NO_SOURCES = {"en": "(no sources were found)", "zh": "（没有找到相关资料）"}
#: Tokens of selected passages a document answer reads: with the rule, the question and the chat
#: template, the embedded model's grounded prompt is then ~290 tokens at the median (goal: <= 450;
#: every token is ~7 ms of waiting on 2 CPU cores). Measured in bench/docs_answer_bench.py.
DEFAULT_SOURCE_TOKENS = 260
_MESSAGE_OVERHEAD = 4  # role markers and separators that the chat template adds per message
_MIN_TRUNCATED = 32  # a truncated source shorter than this is not worth its citation number

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class GroundedPrompt:
    """The messages to send, and the hits numbered in them (``[1]`` is ``hits[0]``); each hit's
    ``text`` is what the model reads (the selected passage, or the hit as given)."""

    messages: list[dict]
    hits: list[Hit]


def no_relevant_hits(hits: Sequence[Hit], threshold: float = 0.0) -> bool:
    """True when no hit scores at least ``threshold``: answer ``NOT_FOUND_MESSAGE`` directly."""
    return not any(hit.score >= threshold for hit in hits)


def missing_citation(answer: str, hits: Sequence[Hit], question: str = "") -> int | None:
    """The number of the source an uncited answer quotes, or None (see ``rag.citations``)."""
    return citations.missing_citation(answer, hits, NOT_FOUND_MESSAGE.values(), question)


def format_source(number: int, hit: Hit, language: str = "en", text: str | None = None) -> str:
    """``[1] report.pdf p.3: text`` (``第3页`` in Chinese; no page part for unpaged files)."""
    page = "" if hit.page is None else (f" 第{hit.page}页" if language == "zh" else f" p.{hit.page}")
    return f"[{number}] {hit.source}{page}: {hit.text if text is None else text}"


def sources_block(hits: Sequence[Hit], language: str = "en", first: int = 1) -> str:
    """``Sources:`` and one numbered line per hit (``[first]`` for the first)."""
    language = language if language in ("en", "zh") else "en"
    lines = [format_source(n, hit, language) for n, hit in enumerate(hits, first)]
    return f"{_SOURCES_TITLE[language]}\n" + ("\n".join(lines) if lines else _NO_SOURCES[language])


def sources_message(question: str, hits: Sequence[Hit], language: str = "en", first: int = 1) -> str:
    """The user message of a grounded prompt: the numbered sources, then the question (Chat's files too)."""
    language = language if language in ("en", "zh") else "en"
    return f"{sources_block(hits, language, first)}\n\n{_QUESTION_LABEL[language]}{question}"


def instructions(language: str = "en", strict: bool = True, sources_first: bool = False) -> str:
    """The fixed part of a grounded prompt: the short rule (stable-first layout), or the rules and
    the worked example that follow the sources (``sources_first``)."""
    language = language if language in ("en", "zh") else "en"
    if not sources_first:
        return _CHAT_RULES[(language, bool(strict))]
    return f"{_INSTRUCTIONS[(language, bool(strict))]}\n\n{_EXAMPLE[language]}"


def build_grounded_messages(
    question: str,
    hits: Sequence[Hit],
    history: Sequence[dict] | None = None,
    strict: bool = True,
    language: str = "en",
    count_tokens: CountTokens | None = None,
    budget_tokens: int | None = None,
    *,
    source_tokens: int | None = None,
    sources_first: bool = False,
    embedder=None,
) -> GroundedPrompt:
    """Messages for a grounded answer, within ``budget_tokens`` (counted by the model's
    ``count_tokens``) when one is given; ``source_tokens`` selects passages (``rag.passages``)
    within that many tokens (asking ``embedder`` where the words match weakly); ``history`` is
    never mutated."""
    if (budget_tokens is not None or source_tokens is not None) and count_tokens is None:
        raise ValueError("A token budget needs the model's count_tokens.")
    language = language if language in ("en", "zh") else "en"
    fixed_text = instructions(language, strict, sources_first)
    history = [dict(m) for m in (history or []) if m.get("role") in ("user", "assistant")]
    kept_history, room = history, None
    if budget_tokens is not None:
        fixed = (count_tokens(fixed_text) + count_tokens(_SOURCES_TITLE[language])
                 + count_tokens(_QUESTION_LABEL[language] + question) + 2 * _MESSAGE_OVERHEAD)
        room = max(0, budget_tokens - fixed)
        kept_history = _recent_history(history, room // 2, count_tokens)
        room -= sum(count_tokens(m["content"]) + _MESSAGE_OVERHEAD for m in kept_history)
    given = _sources(question, hits, language, count_tokens, room, source_tokens, embedder)
    if sources_first:
        system, last = f"{sources_block(given, language)}\n\n{fixed_text}", question
    else:
        system, last = fixed_text, sources_message(question, given, language)
    messages = [{"role": "system", "content": system}, *kept_history, {"role": "user", "content": last}]
    return GroundedPrompt(messages, given)


def _sources(question: str, hits: Sequence[Hit], language: str, count: CountTokens | None, room: int | None,
             source_tokens: int | None, embedder) -> list[Hit]:
    """The numbered sources: selected passages, or whole hits (all, or those that fit ``room``)."""
    if source_tokens is not None:
        budget = source_tokens if room is None else min(source_tokens, room)
        return select_passages(question, hits, count, budget, embedder=embedder,
                               label_tokens=lambda hit: count(format_source(len(hits), hit, language, text="")))
    if room is None:
        return list(hits)
    return _fit_sources(hits, room, count, language)


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


def _fit_sources(hits: Sequence[Hit], room: int, count: CountTokens, language: str) -> list[Hit]:
    """Whole hits in rank order while they fit; the last one that partly fits truncated."""
    kept: list[Hit] = []
    for number, hit in enumerate(hits, 1):
        cost = count(format_source(number, hit, language)) + 1  # +1 for the newline
        if cost <= room:
            kept.append(hit)
            room -= cost
            continue
        label_cost = count(format_source(number, hit, language, text="")) + 2
        if room - label_cost >= _MIN_TRUNCATED or (not kept and room > label_cost):
            kept.append(replace(hit, text=_truncate(hit.text, room - label_cost, count)))
        break
    return kept


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
