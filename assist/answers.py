"""Document Q&A: search a collection, then answer from the hits with the model. No UI here.

``rag`` never imports ``engine``; this module is where the two meet, and both the Docs tab and
the REST routes call it. ``answer_stream`` yields, in order:

1. ``("hits", hits)`` — the numbered sources the model is given (``[1]`` is ``hits[0]``; the
   hits as retrieved, while the model reads the passages ``rag.passages`` chose from them), as soon
   as the prompt is built (the selection and the token counts for the budget: ``prompt_s``) and
   before the request is queued or prefilled: the generator runs on only at the caller's next
   ``next``, after it has shown them;
2. ``str`` deltas of the answer (when the model quoted a source but cited none, a last delta
   adds that source's number, ``" [2]"``; ``stats.extra["citation_added"]`` says so);
3. one ``GenerationStats``; ``extra`` holds ``search_s`` (search and neighbouring chunks) and
   ``prompt_s`` (passage selection and prompt build) beside the engine's queue and TTFT.

In strict mode, when no hit reaches the relevance threshold, the answer is the "not covered"
message in the question's language and the model is not called at all (``stats.extra`` then
says ``not_found``). The prompt fits the engine's token budget (``Engine.prompt_budget``: the
model's context minus the room kept for the answer), shared by the question (always kept), the
recent history and the sources; the sources get at most ``DEFAULT_SOURCE_TOKENS`` of it.
``layout`` (one of ``PROMPT_LAYOUTS``) is for ``bench/docs_answer_bench.py``, which compares the
default (``"passages"``) with whole hits under the same rule (``"whole_hits"``) and with the prompt
before issue 19 (``"before_issue_19"``: whole hits, sources before the rules and a worked example).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from assist.errors import AssistError
from assist.quotas import metered
from engine.config import SamplingParams
from engine.stats import GenerationStats
from rag.prompts import (
    DEFAULT_SOURCE_TOKENS,
    NOT_FOUND_MESSAGE,
    GroundedPrompt,
    build_grounded_messages,
    detect_language,
    missing_citation,
    no_relevant_hits,
)
from rag.retrieval import Hit

__all__ = ["AskResult", "InvalidQuestion", "answer_stream", "ask", "default_params",
           "DEFAULT_MAX_TOKENS", "DEFAULT_TEMPERATURE"]

# Grounded answers should stick to the sources' wording: greedy (sampling at 0.2 let the default model
# answer "coal" instead of quoting "colza oil" in one run of the Docs browser test).
DEFAULT_TEMPERATURE = 0.0
DEFAULT_MAX_TOKENS = 384  # a CPU decodes a few tokens per second; the UI and API can ask for more
PROMPT_LAYOUTS = ("passages", "whole_hits", "before_issue_19")
_HISTORY_MESSAGES = 8  # older turns rarely help retrieval-grounded answers and cost prefill time

Item = tuple[str, list[Hit]] | str | GenerationStats


class InvalidQuestion(AssistError):
    """The question (or search query) is empty or otherwise unusable."""

    http_status = 400


@dataclass
class AskResult:
    """A joined answer: the text, the sources it was given, and what it cost."""

    answer: str
    hits: list[Hit]
    stats: GenerationStats
    not_found: bool = False

    def to_dict(self) -> dict:
        return {"answer": self.answer, "hits": [h.to_dict() for h in self.hits],
                "stats": self.stats.to_dict(), "not_found": self.not_found}


def default_params(max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = DEFAULT_TEMPERATURE) -> SamplingParams:
    """Sampling for grounded answers (raises ``ConfigError`` for out-of-range values)."""
    return SamplingParams(temperature=float(temperature), max_new_tokens=int(max_tokens))


def _config(services):
    return services.rag_config or services.store.config


def answer_stream(
    services,
    collection: str,
    question: str,
    top_k: int | None = None,
    strict: bool | None = None,
    history: Sequence[dict] | None = None,
    cancel: threading.Event | None = None,
    *,
    params: SamplingParams | None = None,
    session_id: str | None = None,
    user: str | None = None,
    model: str | None = None,
    layout: str = "passages",
) -> Iterator[Item]:
    """``("hits", hits)``, then answer deltas, then one ``GenerationStats`` (see module docstring).

    ``collection`` is the store's name for it (``assist.collections`` resolves what a user typed);
    with ``user``, the answer runs under their limits (``assist.quotas``): ``QuotaExceeded`` is
    raised by the first ``next``, before the search. ``model`` names one of the served models
    (``services.models``; default: the first). ``layout``: see the module docstring."""
    if layout not in PROMPT_LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(PROMPT_LAYOUTS)}")
    return metered(getattr(services, "quotas", None), user,
                   _answer(services, collection, question, top_k, strict, history, cancel, params, session_id,
                           model, layout))


def _answer(services, collection: str, question: str, top_k: int | None, strict: bool | None,
            history: Sequence[dict] | None, cancel: threading.Event | None, params: SamplingParams | None,
            session_id: str | None, model: str | None, layout: str) -> Iterator[Item]:
    services.models.resolve(model)  # an unknown model fails before the search
    with services.models.use(model) as engine:  # kept loaded until the answer ends
        yield from _grounded(services, engine, collection, question, top_k, strict, history, cancel, params,
                             session_id, layout)


def _grounded(services, engine, collection: str, question: str, top_k: int | None, strict: bool | None,
              history: Sequence[dict] | None, cancel: threading.Event | None, params: SamplingParams | None,
              session_id: str | None, layout: str = "passages") -> Iterator[Item]:
    config = _config(services)
    question = (question or "").strip()
    if not question:
        raise InvalidQuestion("Type a question first.")
    strict = config.strict if strict is None else bool(strict)
    params = params or default_params()
    language = detect_language(question)
    started = time.perf_counter()
    hits = services.store.search(collection, question, top_k=int(top_k or config.top_k))
    if strict and no_relevant_hits(hits, config.relevance_threshold):
        yield ("hits", [])
        yield NOT_FOUND_MESSAGE[language]
        yield GenerationStats(device=engine.info.device, extra={"not_found": True, "language": language,
                                                                "search_s": _since(started)})
        return
    recent = [{"role": m["role"], "content": str(m["content"])} for m in (history or [])
              if isinstance(m, dict) and m.get("role") in ("user", "assistant")][-_HISTORY_MESSAGES:]
    # The model reads each hit with its neighbouring chunks (answers often straddle a chunk
    # boundary); the cited hits stay the ones that matched. Measured in bench/rag_quality.py.
    context = services.store.expand(collection, hits, config.neighbour_chunks)
    searched = time.perf_counter()
    prompt = _prompt(services, engine, question, context, recent, strict, language, params, layout)
    # The Sources panel shows the hits as retrieved; the model read the passages chosen from them.
    retrieved = {(h.document_id, h.chunk_id): h for h in hits}
    given = [retrieved[(p.document_id, p.chunk_id)] for p in prompt.hits]
    timings = {"search_s": round(searched - started, 4), "prompt_s": _since(searched)}
    yield ("hits", given)  # before the model is asked: nothing below runs until the caller shows them
    parts: list[str] = []
    for item in engine.stream_chat(prompt.messages, params, session_id=session_id, cancel=cancel):
        if isinstance(item, GenerationStats):
            # A model that quoted a source without citing it (small models: see rag.prompts) gets its number.
            cancelled = item.finish_reason == "cancelled"
            number = None if cancelled else missing_citation("".join(parts), prompt.hits, question)
            if number is not None:
                yield f" [{number}]"
                item.extra["citation_added"] = number
            item.extra.update(timings)
        else:
            parts.append(item)
        yield item


def _prompt(services, engine, question: str, context: list[Hit], recent: list[dict], strict: bool, language: str,
            params: SamplingParams, layout: str) -> GroundedPrompt:
    """Passages within ``DEFAULT_SOURCE_TOKENS`` after the fixed rule (base models: sources first),
    or another of ``PROMPT_LAYOUTS``."""
    return build_grounded_messages(
        question, context, recent, strict=strict, language=language, count_tokens=engine.count_tokens,
        budget_tokens=engine.prompt_budget(params),
        source_tokens=DEFAULT_SOURCE_TOKENS if layout == "passages" else None,
        sources_first=layout == "before_issue_19" or _completion_format(engine), embedder=services.store.embedder)


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)


def _completion_format(engine) -> bool:
    """Whether the model is prompted in the base-model completion format (no chat template): it
    keeps the sources-first layout (see ``rag.prompts``). Remote and fake engines have none."""
    fmt = getattr(getattr(engine, "backend", None), "prompt_format", None)
    return bool(getattr(fmt, "completion", False))


def ask(services, collection: str, question: str, top_k: int | None = None, strict: bool | None = None,
        history: Sequence[dict] | None = None, cancel: threading.Event | None = None, *,
        params: SamplingParams | None = None, session_id: str | None = None, user: str | None = None,
        model: str | None = None, layout: str = "passages") -> AskResult:
    """The non-streaming call: joins ``answer_stream``."""
    hits: list[Hit] = []
    parts: list[str] = []
    stats = GenerationStats()
    for item in answer_stream(services, collection, question, top_k, strict, history, cancel,
                              params=params, session_id=session_id, user=user, model=model,
                              layout=layout):
        if isinstance(item, GenerationStats):
            stats = item
        elif isinstance(item, tuple):
            hits = item[1]
        else:
            parts.append(item)
    return AskResult("".join(parts), hits, stats, not_found=bool(stats.extra.get("not_found")))
