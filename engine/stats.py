"""The record that ends every generation stream."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["GenerationStats"]


@dataclass
class GenerationStats:
    """What one answer cost. ``finish_reason`` is "stop", "length", "cancelled" or "error"."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0
    finish_reason: str = "stop"
    peak_memory_bytes: int = 0
    device: str = "cpu"
    queue_s: float = 0.0
    trimmed_messages: int = 0
    extra: dict = field(default_factory=dict)
    # Set by backends that time decoding themselves (llama.cpp's own timings); else derived below.
    decode_tokens_per_s: float | None = None

    @property
    def tokens_per_s(self) -> float:
        if self.decode_tokens_per_s is not None:
            return self.decode_tokens_per_s
        decode_s = self.total_s - self.ttft_s
        if self.completion_tokens <= 1 or decode_s <= 0:
            return 0.0
        return (self.completion_tokens - 1) / decode_s

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tokens_per_s"] = round(self.tokens_per_s, 2)
        return data

    def summary(self) -> str:
        """One line for under an answer, e.g. ``TTFT 0.42 s · 18.3 tok/s · 12+64 tokens · 1.1 GiB``."""
        parts = [f"TTFT {self.ttft_s:.2f} s", f"{self.tokens_per_s:.1f} tok/s",
                 f"{self.prompt_tokens}+{self.completion_tokens} tokens"]
        if self.extra.get("reasoning_tokens"):  # of the completion tokens, how many were thinking
            parts.append(f"{self.extra['reasoning_tokens']} thinking")
        if self.cached_tokens:
            parts.append(f"{self.cached_tokens} cached")
        if self.peak_memory_bytes:
            parts.append(f"{self.device} {self.peak_memory_bytes / 1024**3:.2f} GiB")
        if self.finish_reason not in ("stop",):
            parts.append(self.finish_reason)
        return " · ".join(parts)
