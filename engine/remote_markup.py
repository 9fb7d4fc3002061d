"""A remote server's structured deltas back into the text markup our parsers read.

Servers like vLLM split reasoning (``reasoning_content`` / ``reasoning``) and tool calls
(``tool_calls``) out of the text themselves. Our backends all yield plain text, with thinking
in ``<think>…</think>`` and calls as Hermes ``<tool_call>`` blocks, and ``answer_events``
recovers the structure; so the remote backend writes those markers back around what the
server split off. Tool-call pieces are gathered and written once the stream ends, because a
call's arguments arrive in pieces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from engine.images import openai_content

__all__ = ["RemoteMarkup", "wire_messages"]


class RemoteMarkup:
    def __init__(self) -> None:
        self._thinking = False
        self._calls: dict[int, dict] = {}

    def feed(self, delta: dict) -> Iterator[str]:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            if not self._thinking:
                self._thinking = True
                yield "<think>\n"
            yield reasoning
        content = delta.get("content")
        if content:
            if self._thinking:
                self._thinking = False
                yield "\n</think>\n\n"
            yield content
        for piece in delta.get("tool_calls") or []:
            call = self._calls.setdefault(int(piece.get("index", len(self._calls))), {"name": "", "arguments": ""})
            function = piece.get("function") or {}
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""

    def finish(self, cut_off: bool) -> Iterator[str]:
        """Close the think block (unless the answer was cut off inside it) and write the calls."""
        if self._thinking and (self._calls or not cut_off):
            yield "\n</think>\n\n"
        for index in sorted(self._calls):
            call = self._calls[index]
            try:
                arguments = json.loads(call["arguments"] or "{}")
            except ValueError:
                arguments = call["arguments"]
            yield "<tool_call>\n" + json.dumps({"name": call["name"], "arguments": arguments},
                                               ensure_ascii=False) + "\n</tool_call>\n"


def wire_messages(messages: list[dict]) -> list[dict]:
    """Engine messages as OpenAI sends them: tool-call arguments as JSON text, images as ``image_url`` parts."""
    out = []
    for message in messages:
        if message.get("images"):
            message = {k: v for k, v in message.items() if k != "images"} | {"content": openai_content(message)}
        if message.get("tool_calls"):
            calls = [{**c, "function": {**c["function"], "arguments": c["function"]["arguments"]
                                        if isinstance(c["function"]["arguments"], str)
                                        else json.dumps(c["function"]["arguments"])}} for c in message["tool_calls"]]
            message = {**message, "tool_calls": calls}
        out.append(message)
    return out
