"""The ``Engine`` facade the UI and the API talk to.

It owns one backend (in-process llama.cpp or transformers, vLLM, or a remote OpenAI-compatible
server; ``auto`` chooses between the in-process two, see engine/backends/auto.py),
a fair queue in front of it, and the per-request bookkeeping (queue time, metrics hooks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

from engine.admission import CancelledWhileWaiting, FairQueue
from engine.backends.base import BackendState, ChatBackend, EngineInfo
from engine.config import EngineConfig, SamplingParams
from engine.errors import ConfigError
from engine.history import prompt_budget
from engine.images import ImagesNotSupported, has_images
from engine.json_schema import check_schema, for_decoding
from engine.stats import GenerationStats

__all__ = ["Engine", "EngineStatus", "Observer"]

# Called once per finished request with its stats; metrics hang off this.
Observer = Callable[[GenerationStats], None]


@dataclass(frozen=True)
class EngineStatus:
    """What the engine is and is doing now: read by /api/health, the System tab and /metrics."""

    info: EngineInfo
    waiting: int  # requests queued for the model
    running: int  # requests on the model now
    capacity: int  # requests the model takes at once
    backend: BackendState

    def to_dict(self) -> dict:
        return asdict(self)


class Engine:
    def __init__(self, backend: ChatBackend, config: EngineConfig | None = None) -> None:
        config = config or EngineConfig()
        self.backend = backend
        self.config = config
        self.queue = FairQueue(max_waiting=config.max_queue, capacity=backend.capacity)
        self.observers: list[Observer] = []

    @classmethod
    def load(cls, config: EngineConfig, progress: Callable[[str], None] | None = None) -> Engine:
        """Build the configured backend; this is where the model is loaded."""
        if config.backend == "auto":
            from engine.backends.auto import load_auto

            return cls(load_auto(config, progress), config)
        if config.backend == "openai":
            from engine.backends.openai import OpenAIBackend as backend_cls
        elif config.backend == "vllm":
            from engine.backends.vllm import VLLMBackend as backend_cls
        elif config.backend == "llamacpp":
            from engine.backends.llamacpp import LlamaCppBackend as backend_cls
        else:
            from engine.backends.transformers import TransformersBackend as backend_cls
        return cls(backend_cls.load(config, progress), config)

    @property
    def info(self) -> EngineInfo:
        return self.backend.info

    @property
    def sees_images(self) -> bool:
        """Whether messages may carry images (``engine.images``): the backend's word, False if it says nothing."""
        return bool(getattr(self.backend, "sees_images", False))

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def prompt_budget(self, params: SamplingParams) -> int:
        """Tokens of message contents a request with ``params`` may send (the rest is the answer's)."""
        return prompt_budget(self.info.context_length, params.max_new_tokens)

    def close(self) -> None:
        """Free the model (the registry unloads idle models); backends without a close keep theirs
        until the engine is collected."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def status(self) -> EngineStatus:
        return EngineStatus(self.info, waiting=self.queue.depth, running=self.queue.active,
                            capacity=self.queue.capacity, backend=self.backend.state())

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams | None = None,
        session_id: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str | GenerationStats]:
        """Text deltas, then one GenerationStats. Closing the iterator or setting ``cancel`` stops it."""
        params = params or SamplingParams()
        cancel = cancel or threading.Event()
        if has_images(messages) and not self.sees_images:  # a text-only backend never gets them
            raise ImagesNotSupported(f"{self.info.model} reads text only and cannot look at images; choose a model "
                                     "that can see, or send the text alone.")
        if params.json_schema is not None:
            self.check_json_schema(params.json_schema)
            params = replace(params, json_schema=for_decoding(params.json_schema))
        try:
            with self.queue.slot(cancel) as waited:
                stream = self.backend.stream_chat(messages, params, session_id, cancel)
                fmt = getattr(self.backend, "prompt_format", None)  # remote backends render nothing themselves
                for item in _after_answer_label(stream) if fmt is not None and fmt.completion else stream:
                    if isinstance(item, GenerationStats):
                        item.queue_s = waited
                        self._notify(item)
                    yield item
        except CancelledWhileWaiting:
            stats = GenerationStats(finish_reason="cancelled", device=self.info.device)
            self._notify(stats)
            yield stats

    def check_json_schema(self, schema: dict) -> None:
        """Raise ConfigError (a 400) unless this backend can enforce ``schema`` while decoding."""
        check_schema(schema)
        if not getattr(self.backend, "enforces_json_schema", False):
            raise ConfigError(f"The {self.info.backend} backend cannot constrain decoding to a JSON schema here, so "
                              "structured output and forced tool calls are not available with it; use the "
                              "llama.cpp backend (--backend llamacpp), or install xgrammar "
                              "(pip install 'dcu-chat[structured]') for the transformers backend.")

    def chat(self, messages: list[dict], params: SamplingParams | None = None,
             session_id: str | None = None) -> tuple[str, GenerationStats]:
        """The non-streaming call: joins the stream."""
        parts: list[str] = []
        stats = GenerationStats()
        for item in self.stream_chat(messages, params, session_id):
            if isinstance(item, GenerationStats):
                stats = item
            else:
                parts.append(item)
        return "".join(parts), stats

    def _notify(self, stats: GenerationStats) -> None:
        for observer in self.observers:
            observer(stats)


def _after_answer_label(stream: Iterator[str | GenerationStats]) -> Iterator[str | GenerationStats]:
    """The completion format's prompt ends with "Answer:", so a base model's first token starts with a
    space (" Paris."): the answer itself begins after it."""
    started = False
    for item in stream:
        if not started and isinstance(item, str):
            item = item.lstrip()
            if not item:
                continue
            started = True
        yield item
