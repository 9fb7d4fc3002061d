"""What ``bench.gpu`` measures, in priority order, and the budget rule that decides what still fits.

Each step has a rough cost on a 7B model on one H200 (``estimate_s``); the run scales every
estimate by how its finished steps compared with theirs, so a slower card skips more. A *core*
step runs while its own estimate fits the time left; an *extra* step only when it also leaves
the core steps of the configurations after it their time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Step", "Configuration", "CONFIGURATIONS", "PREPARE_ESTIMATE_S", "Budget"]


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # single | generate | streams | ttft | kv | oom
    arg: int = 1  # concurrency (streams, generate batch) or prompt tokens (ttft)
    core: bool = True
    estimate_s: float = 10.0

    @property
    def concurrency(self) -> int:
        return self.arg if self.kind in ("streams", "generate") else 1


@dataclass(frozen=True)
class Configuration:
    key: str
    label: str
    dtype: str
    quantization: str  # the engine's --quantization
    load_estimate_s: float
    steps: tuple[Step, ...] = field(default_factory=tuple)


def _streams(count: int, core: bool, estimate: float) -> Step:
    return Step(f"engine, {count} concurrent streams", "streams", count, core, estimate)


_SINGLE = Step("engine, 1 stream", "single", 1, True, 10)
_GENERATE = Step("transformers generate, 1 stream", "generate", 1, True, 10)

# Estimates: HF eager decoding of a 7B on one H200 at ~30-40 tok/s per step, loads of ~15 GB from
# the page cache; together the core rows take ~400 s, inside the default 420 s budget.
CONFIGURATIONS: tuple[Configuration, ...] = (
    Configuration("bf16", "bf16", "bfloat16", "none", 60, (
        _SINGLE, _GENERATE, _streams(4, True, 5), _streams(16, True, 6), _streams(64, True, 12),
        Step("TTFT, 1k-token prompt", "ttft", 1024, True, 3), Step("TTFT, 4k-token prompt", "ttft", 4096, True, 4),
        Step("KV reuse, chat turn 8 vs turn 1", "kv", 8, True, 12), Step("OOM recovery", "oom", 1, True, 5),
        Step("transformers generate, batch of 16", "generate", 16, False, 6),
        Step("transformers generate, batch of 64", "generate", 64, False, 8),
    )),
    Configuration("fp16", "fp16", "float16", "none", 60, (
        _SINGLE, _GENERATE, _streams(16, True, 6), _streams(64, False, 12), _streams(4, False, 5),
        Step("TTFT, 4k-token prompt", "ttft", 4096, False, 4),
    )),
    Configuration("nf4", "NF4 4-bit (bitsandbytes, bf16 compute)", "bfloat16", "4bit", 90, (
        Step("engine, 1 stream", "single", 1, True, 12), Step("transformers generate, 1 stream", "generate", 1, True, 12),
        _streams(16, True, 10), _streams(64, False, 20), _streams(4, False, 8),
        Step("TTFT, 4k-token prompt", "ttft", 4096, False, 5),
    )),
)
PREPARE_ESTIMATE_S = 60.0  # build the random 7B on the card and save it for the loader


class Budget:
    """Time left before ``deadline`` (``time.monotonic()``), with estimates scaled by experience."""

    def __init__(self, deadline: float, scale: float = 1.0) -> None:
        self.deadline = deadline
        self.scale = scale  # --tiny starts from a much smaller guess
        self._ratios: list[float] = []

    def learn(self, estimate_s: float, actual_s: float) -> None:
        if estimate_s > 0:
            self._ratios.append(actual_s / (estimate_s * self.scale))

    def estimate(self, estimate_s: float) -> float:
        factor = 1.0
        if self._ratios:
            ordered = sorted(self._ratios)
            factor = min(5.0, max(0.5, ordered[len(ordered) // 2]))
        return estimate_s * self.scale * factor

    def left(self, now: float) -> float:
        return self.deadline - now

    def core_cost(self, configurations) -> float:
        """What the core steps (and loads) of ``configurations`` are expected to take."""
        return sum(self.estimate(c.load_estimate_s) + sum(self.estimate(s.estimate_s) for s in c.steps if s.core)
                   for c in configurations)

    def fits(self, estimate_s: float, now: float, reserve_s: float = 0.0) -> bool:
        return self.estimate(estimate_s) + reserve_s <= self.left(now)
