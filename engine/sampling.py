"""Choose the next token of one request, with that request's own sampling parameters.

The batch runner decodes many requests at once but each keeps its own repetition penalty,
temperature, top-k, top-p and seed (a private ``torch.Generator``, so one request's random draws
never depend on another's). The semantics are those of ``model.generate``: repetition penalty
(transformers' processor), then temperature, top-k, top-p. Top-p is computed over the top-k
candidates only: with a 262k vocabulary, sorting the whole vocabulary per token costs ~28 ms on
two CPU cores, the top-k subset well under one.
"""

from __future__ import annotations

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

from engine.config import SamplingParams

__all__ = ["Sampler"]


class Sampler:
    def __init__(self, params: SamplingParams, device: str | torch.device = "cpu", constraint=None) -> None:
        # ``constraint`` (engine/constrained.JsonConstraint): a grammar that masks each step's logits.
        self.constraint = constraint
        self.greedy = params.greedy
        self.penalty = (RepetitionPenaltyLogitsProcessor(params.repetition_penalty)
                        if params.repetition_penalty != 1.0 else None)
        self.temperature = params.temperature
        self.top_k = params.top_k
        self.top_p = params.top_p
        self.generator = None
        if params.seed is not None and not self.greedy:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(params.seed)

    def __call__(self, logits: torch.Tensor, ids: torch.Tensor | None) -> int:
        """``logits``: [1, vocab] for the next position; ``ids``: [1, n], every token so far (or None
        when there is no repetition penalty)."""
        scores = logits.float()
        if self.penalty is not None:
            scores = self.penalty(ids, scores)
        if self.constraint is not None:
            scores = self.constraint.mask(scores)
        token = self._choose(scores)
        if self.constraint is not None:
            self.constraint.accept(token)
        return token

    def _choose(self, scores: torch.Tensor) -> int:
        if self.greedy:
            return int(scores.argmax(dim=-1))
        if self.temperature != 1.0:
            scores = scores / self.temperature
        if self.top_k:
            values, index = scores.topk(min(self.top_k, scores.shape[-1]), dim=-1)
        else:
            values, index = scores.sort(dim=-1, descending=True)
        probs = torch.softmax(values, dim=-1)
        if self.top_p < 1.0:
            # Keep the smallest head whose mass reaches top_p: drop a token once the mass before it does.
            drop = (probs.cumsum(dim=-1) - probs) >= self.top_p
            drop[..., 0] = False
            probs = probs.masked_fill(drop, 0.0)
        choice = torch.multinomial(probs, 1, generator=self.generator)
        return int(index[0, choice[0, 0]])
