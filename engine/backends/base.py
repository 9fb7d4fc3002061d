"""The protocol every backend implements, and what it reports about itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

from engine.config import SamplingParams
from engine.kv_cache import CacheStats
from engine.stats import GenerationStats

__all__ = ["EngineInfo", "BackendState", "ChatBackend"]


@dataclass(frozen=True)
class EngineInfo:
    model: str
    backend: str
    device: str  # kind: dcu / cuda / rocm / cpu / remote
    device_name: str
    dtype: str
    quantization: str | None
    context_length: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    backend_detail: str = ""  # e.g. which llama.cpp build and CPU features / GPU backend serve

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BackendState:
    """A backend's live work, as the System tab, /metrics and health report it."""

    peak_batch: int = 0  # largest decoding batch so far; 0 where the backend does not batch itself
    kv_cache: CacheStats | None = None  # KV caches kept for reuse across turns; None where not kept here
    # remote models: each upstream server (engine/backends/replica_pool.py Replica.snapshot)
    replicas: tuple[dict, ...] = ()


class ChatBackend(Protocol):
    info: EngineInfo
    capacity: int  # requests the engine lets in at once
    sees_images: bool  # user turns may carry "images" (engine/images.py); the engine checks before calling

    def state(self) -> BackendState: ...

    def stream_chat(
        self,
        messages: list[dict],
        params: SamplingParams,
        session_id: str | None,
        cancel: threading.Event,
    ) -> Iterator[str | GenerationStats]:
        """Text deltas, then one GenerationStats; closing it stops generation."""

    def count_tokens(self, text: str) -> int: ...
