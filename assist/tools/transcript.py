"""An answer with tool calls as conversation messages: built from the loop's events, and back into a prompt.

A conversation (the Chat tab's history, a saved session) keeps one answer that used tools as:

    {"role": "assistant", "content": "", "tool_calls": [{"id", "name": "time.get_current_time",
                                                        "arguments": "{\\"timezone\\": \\"Asia/Tokyo\\"}"}]}
    {"role": "tool", "tool_call_id", "name": "time.get_current_time", "status": "ok", "content": "<result>"}
    {"role": "assistant", "content": "It is 01:50 in Tokyo.", "stats": "…"}

Names are ``server.tool`` there (what people see); ``engine_messages`` turns them into the names the
model sees (``assist.tools.naming``) with arguments as objects, as chat templates want them.
Reasoning is kept inside the content as ``<think>…</think>``, like the Chat tab's plain answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from assist.tools.loop import LoopDone, TextDelta, ToolCallEvent, ToolResultEvent, template_calls
from assist.tools.naming import ToolSet

__all__ = ["Transcript", "engine_messages", "readable", "PENDING", "RUNNING"]

PENDING, RUNNING = "pending", "running"  # a call waiting for Allow / Deny; a call being made


class Transcript:
    """The messages of one answer (``messages``), growing with each loop event."""

    def __init__(self, messages: list[dict] | None = None) -> None:
        # The Chat tab hands in the (empty) answer message it shows, so both stay the same objects.
        self.messages = messages if messages is not None else [{"role": "assistant", "content": ""}]
        self.done: LoopDone | None = None
        self._thinking = False

    @property
    def answer(self) -> dict:
        """The assistant message being written (a new one after tool results)."""
        if self.messages[-1]["role"] != "assistant":
            self._close_thinking()
            self.messages.append({"role": "assistant", "content": ""})
        return self.messages[-1]

    def _close_thinking(self) -> None:
        if self._thinking:
            last = next(m for m in reversed(self.messages) if m["role"] == "assistant")
            last["content"] += "</think>"
            self._thinking = False

    def feed(self, event) -> None:
        if isinstance(event, TextDelta):
            answer = self.answer
            if event.kind == "reasoning" and not self._thinking:
                answer["content"] += "<think>"
                self._thinking = True
            elif event.kind != "reasoning":
                self._close_thinking()
            answer["content"] += event.text
        elif isinstance(event, ToolCallEvent):
            self._close_thinking()
            self.answer.setdefault("tool_calls", []).append(
                {"id": event.id, "name": event.name, "arguments": json.dumps(event.arguments, ensure_ascii=False)})
            self.messages.append({"role": "tool", "tool_call_id": event.id, "name": event.name, "content": "",
                                  "status": PENDING if event.needs_approval else RUNNING})
        elif isinstance(event, ToolResultEvent):
            for message in self.messages:
                if message["role"] == "tool" and message.get("tool_call_id") == event.id:
                    message.update(content=event.result, status=event.status)
                    if event.duration_s:
                        message["duration_s"] = event.duration_s
        elif isinstance(event, LoopDone):
            self._close_thinking()
            self.done = event
            for message in self.messages:  # a Stop leaves no call waiting or running
                if message["role"] == "tool" and message.get("status") in (PENDING, RUNNING):
                    message["status"] = "cancelled"

    def approval(self, call_id: str, waiting: bool) -> None:
        """Mark a call as waiting for the user (or, when allowed, as running)."""
        for message in self.messages:
            if message["role"] == "tool" and message.get("tool_call_id") == call_id:
                message["status"] = PENDING if waiting else RUNNING


def _arguments(text: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def readable(history: Sequence[dict], engine) -> list[dict]:
    """The conversation as a model may read it: one that reads text only gets the earlier questions without
    their pictures (they were shown to another model); pictures on the newest message stay, and the engine
    refuses them with a sentence saying so (engine.images)."""
    history = list(history)
    if getattr(engine, "sees_images", False) or not any(m.get("images") for m in history[:-1]):
        return history
    return [{k: v for k, v in m.items() if k != "images"} if m.get("images") and i < len(history) - 1 else m
            for i, m in enumerate(history)]


def engine_messages(history: Sequence[dict], system_prompt: str, tools: ToolSet | None = None) -> list[dict]:
    """Conversation messages -> engine messages (system prompt first, tool names as the model sees them)."""
    tools = tools or ToolSet([])
    out = [{"role": "system", "content": system_prompt.strip()}] if (system_prompt or "").strip() else []
    for message in history:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            name = message.get("name") or ""
            out.append({"role": "tool", "tool_call_id": message.get("tool_call_id") or "",
                        "name": tools.model_name(name) if name else "", "content": content})
        elif role == "assistant" and message.get("tool_calls"):
            calls = [{"id": c.get("id") or "", "type": "function",
                      "function": {"name": tools.model_name(c["name"]), "arguments": _arguments(c["arguments"])}}
                     for c in message["tool_calls"]]
            out.append({"role": "assistant", "content": content, "tool_calls": template_calls(calls)})
        elif role == "user" and message.get("images"):  # pictures a question showed (engine.images)
            out.append({"role": role, "content": content, "images": list(message["images"])})
        else:
            out.append({"role": role, "content": content})
    return out

