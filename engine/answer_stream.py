"""An engine text stream as typed answer events: reasoning, content and tool-call deltas.

``Engine.stream_chat`` yields raw text (what the model wrote, markers included) and a final
``GenerationStats``; consumers that show structure (``/v1``, the Chat tab) pass it through
``answer_events``. The stats record gains what the structure says: the thinking's token count
(``extra["reasoning_tokens"]``), whether the thinking was cut off, and ``finish_reason``
"tool_calls" when the answer ended in calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from engine.reasoning import Piece, ReasoningSplitter
from engine.stats import GenerationStats
from engine.tool_calls import ToolCall, ToolCallDelta, ToolCallParser
from engine.tool_json import Tools, tool_schemas

__all__ = ["AnswerParser", "answer_events", "Piece", "ToolCallDelta", "tool_schemas"]

Event = Piece | ToolCallDelta


class AnswerParser:
    """Raw output deltas in, events out. ``tools`` (name -> parameter schema, or names) empty: no
    tool calls are looked for."""

    def __init__(self, tools: Tools = (), max_calls: int | None = None) -> None:
        self.reasoning = ReasoningSplitter()
        self.tools = ToolCallParser(tools, max_calls) if tools else None

    def _content(self, pieces: list[Piece], final: bool) -> list[Event]:
        out: list[Event] = []
        for piece in pieces:
            if piece.kind == "content" and self.tools is not None:
                out.extend(self.tools.feed(piece.text))
            else:
                out.append(piece)
        if final and self.tools is not None:
            out.extend(self.tools.finish())
        return out

    def feed(self, delta: str) -> list[Event]:
        return self._content(self.reasoning.feed(delta), final=False)

    def finish(self) -> list[Event]:
        return self._content(self.reasoning.finish(), final=True)

    @property
    def calls(self) -> list[ToolCall]:
        return self.tools.calls if self.tools is not None else []


def answer_events(stream: Iterable[str | GenerationStats], tools: Tools = (),
                  count_tokens: Callable[[str], int] | None = None,
                  max_calls: int | None = None) -> Iterator[Event | GenerationStats]:
    """Events of ``stream``, then its stats record with reasoning tokens and the finish reason.
    ``tools``: name -> parameter schema (``tool_schemas`` of the request's tools), or names only.
    ``max_calls``: at most that many tool calls are returned (``parallel_tool_calls: false`` is 1)."""
    parser = AnswerParser(tools, max_calls)
    stats = GenerationStats()
    items = iter(stream)
    try:
        for item in items:
            if isinstance(item, GenerationStats):
                stats = item
            elif item:
                yield from parser.feed(item)
    finally:  # closing this generator closes the engine's stream, which stops the device work
        close = getattr(items, "close", None)
        if close is not None:
            close()
    yield from parser.finish()
    if parser.reasoning.reasoning:
        stats.extra["reasoning_tokens"] = (count_tokens(parser.reasoning.reasoning) if count_tokens
                                           else len(parser.reasoning.reasoning.split()))
        if parser.reasoning.cut_off:
            stats.extra["reasoning_cut_off"] = True
    if parser.calls and stats.finish_reason == "stop":
        stats.finish_reason = "tool_calls"
    yield stats
