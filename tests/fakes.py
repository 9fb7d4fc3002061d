"""Fake engine for UI handler tests: scripted deltas, real stats records, real cancellation."""

from __future__ import annotations

import threading
import time

from engine.backends.base import EngineInfo
from engine.errors import EngineError
from engine.stats import GenerationStats


class FakeEngine:
    info = EngineInfo(model="fake-model", backend="fake", device="cpu", device_name="test CPU",
                      dtype="float32", quantization=None, context_length=2048)

    def __init__(self, reply: str = "Hello there, friend.", delay: float = 0.0, error: Exception | None = None):
        self.reply = reply
        self.delay = delay
        self.error = error
        self.calls: list[dict] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream_chat(self, messages, params=None, session_id=None, cancel=None):
        self.calls.append({"messages": messages, "params": params, "session_id": session_id})
        cancel = cancel or threading.Event()
        if self.error is not None:
            raise self.error
        words = self.reply.split(" ")
        sent = 0
        for i, word in enumerate(words):
            if cancel.is_set():
                break
            if self.delay:
                time.sleep(self.delay)
            yield word if i == 0 else " " + word
            sent += 1
        yield GenerationStats(prompt_tokens=sum(len(m["content"].split()) for m in messages),
                              completion_tokens=sent, ttft_s=0.01, total_s=0.02,
                              finish_reason="cancelled" if cancel.is_set() else "stop", device="cpu")

    def chat(self, messages, params=None, session_id=None):
        parts, stats = [], None
        for item in self.stream_chat(messages, params, session_id):
            if isinstance(item, GenerationStats):
                stats = item
            else:
                parts.append(item)
        return "".join(parts), stats


class FakeError(EngineError):
    http_status = 503
