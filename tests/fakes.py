"""Fake engine for UI handler tests: scripted deltas, real stats records, real cancellation."""

from __future__ import annotations

import dataclasses
import threading
import time

from engine.backends.base import BackendState, EngineInfo
from engine.engine import EngineStatus
from engine.errors import EngineError, OutOfMemory
from engine.history import prompt_budget
from engine.stats import GenerationStats


class FakeEngine:
    info = EngineInfo(model="fake-model", backend="fake", device="cpu", device_name="test CPU",
                      dtype="float32", quantization=None, context_length=2048)

    def __init__(self, reply: str = "Hello there, friend.", delay: float = 0.0, error: Exception | None = None,
                 *, deltas: list[str] | None = None, fail_after: int | None = None,
                 gate: threading.Event | None = None):
        """``reply`` is streamed word by word, or ``deltas`` exactly as given; ``fail_after=i`` raises
        OutOfMemory before delta ``i``; ``gate`` holds the stream before the second delta until set."""
        self.reply = reply
        self.deltas = list(deltas) if deltas is not None else None
        self.delay = delay
        self.error = error
        self.fail_after = fail_after
        self.gate = gate
        self.calls: list[dict] = []
        self.sent: list[str] = []  # deltas actually handed out
        self.observers: list = []

    def status(self) -> EngineStatus:
        return EngineStatus(self.info, waiting=0, running=0, capacity=1, backend=BackendState())

    def prompt_budget(self, params) -> int:
        return prompt_budget(self.info.context_length, params.max_new_tokens)  # the engine's own rule

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream_chat(self, messages, params=None, session_id=None, cancel=None):
        cancel = cancel or threading.Event()
        self.calls.append({"messages": messages, "params": params, "session_id": session_id, "cancel": cancel})
        if self.error is not None:
            raise self.error
        deltas = self.deltas if self.deltas is not None else [
            word if i == 0 else " " + word for i, word in enumerate(self.reply.split(" "))]
        sent = 0
        for i, delta in enumerate(deltas):
            if self.fail_after is not None and i == self.fail_after:
                raise OutOfMemory("The device ran out of memory; try a shorter input.")
            if self.gate is not None and i == 1:
                self.gate.wait(5)
            if cancel.is_set():
                break
            if self.delay:
                time.sleep(self.delay)
            self.sent.append(delta)
            sent += 1
            yield delta
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


class ScriptedBackend:
    """A backend for a real ``Engine`` that writes scripted raw outputs, a few characters per "token".

    It honours ``max_new_tokens`` (cut off: finish "length") and stop strings as a model would,
    checks messages as every backend does, and records what it was asked; so /v1 tests run the
    real engine facade, parsers and wire format around it.
    """

    capacity = 4
    enforces_json_schema = True

    def __init__(self, *outputs: str, chars_per_token: int = 3, opened_thinking: bool = False,
                 enforces_json_schema: bool = True):
        self.outputs = list(outputs) or ["Hello there, friend."]
        self.chars_per_token = chars_per_token
        self.opened_thinking = opened_thinking
        self.enforces_json_schema = enforces_json_schema
        self.calls: list[dict] = []
        self.info = EngineInfo(model="scripted-model", backend="scripted", device="cpu", device_name="test CPU",
                               dtype="float32", quantization=None, context_length=4096)

    def count_tokens(self, text: str) -> int:
        return -(-len(text) // self.chars_per_token)

    def state(self) -> BackendState:
        return BackendState()

    def stream_chat(self, messages, params, session_id, cancel):
        from engine.history import validate_messages

        messages = validate_messages(messages)
        self.calls.append({"messages": messages, "params": params})
        text = self.outputs[min(len(self.calls), len(self.outputs)) - 1]
        finish = "stop"
        for stop in params.stop:
            if stop in text:
                text = text[:text.index(stop)]
        tokens = [text[i:i + self.chars_per_token] for i in range(0, len(text), self.chars_per_token)]
        if len(tokens) > params.max_new_tokens:
            tokens, finish = tokens[:params.max_new_tokens], "length"
        if self.opened_thinking:
            yield "<think>"
        sent = 0
        for token in tokens:
            if cancel.is_set():
                finish = "cancelled"
                break
            yield token
            sent += 1
        yield GenerationStats(prompt_tokens=sum(self.count_tokens(m["content"]) for m in messages),
                              completion_tokens=sent, ttft_s=0.01, total_s=0.02, finish_reason=finish)


class FakeModelEngine(FakeEngine):
    """A fake engine loaded for one configured model: it answers with the model's path, and records
    being closed (unloaded)."""

    def __init__(self, config) -> None:
        super().__init__(reply=f"answer from {config.model}")
        self.info = dataclasses.replace(FakeEngine.info, model=f"{config.model}-name")
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeModelLoader:
    """``ModelRegistry``'s loader, recording what it loaded (and saying so through ``progress``)."""

    def __init__(self) -> None:
        self.loads: list[str] = []
        self.engines: list[FakeModelEngine] = []

    def __call__(self, config, progress) -> FakeModelEngine:
        progress(f"loading {config.model}")
        self.loads.append(config.model)
        self.engines.append(FakeModelEngine(config))
        return self.engines[-1]


def fake_models(*names: str, max_loaded: int = 2, budget: int = 0, loader=None):
    """A registry of models ``/models/<name>`` called ``<name>``, loaded by ``loader`` (a FakeModelLoader)."""
    from engine.config import EngineConfig, ModelsConfig
    from engine.model_spec import ModelSpec
    from engine.models import ModelRegistry

    specs = [ModelSpec(name, EngineConfig(model=f"/models/{name}")) for name in names]
    return ModelRegistry(specs, ModelsConfig(max_loaded, budget), loader or FakeModelLoader())
