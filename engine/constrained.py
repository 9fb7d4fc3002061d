"""Constrained decoding on the transformers backend: JSON-schema grammars from xgrammar.

llama.cpp builds its own grammar from a JSON schema; for transformers we use xgrammar (chosen
over lm-format-enforcer by measured per-token cost on the 262k-token Gemma vocabulary, see
docs/structured-output.md). A schema is compiled once per tokenizer (cached), and each request
gets a matcher that masks the logits of every step to the tokens the grammar allows; when the
JSON is complete only end-of-sequence is allowed, so the answer ends there.

xgrammar is optional (``pip install 'dcu-chat[structured]'``); without it the transformers
backend refuses schemas with a 400 that says how to get it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable

import torch

from engine.errors import ConfigError

__all__ = ["GrammarCompiler", "JsonConstraint", "available"]

_CACHED_GRAMMARS = 64


def available() -> bool:
    try:
        import xgrammar  # noqa: F401
    except ImportError:
        return False
    return True


class JsonConstraint:
    """One request's matcher: ``mask`` the next step's logits, then ``accept`` the chosen token."""

    def __init__(self, compiled, vocab_size: int) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` [1, vocab] (float, on the CPU or the device) with forbidden tokens at -inf."""
        self._matcher.fill_next_token_bitmask(self._bitmask)
        self._xgr.apply_token_bitmask_inplace(scores, self._bitmask.to(scores.device))
        return scores

    def accept(self, token: int) -> None:
        self._matcher.accept_token(int(token))

    @property
    def finished(self) -> bool:
        return self._matcher.is_terminated()


class GrammarCompiler:
    """Compiles JSON schemas for one tokenizer; the tokenizer's table is built on first use."""

    def __init__(self, tokenizer, vocab_size: int, stop_ids: Iterable[int]) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._stop_ids = sorted(set(stop_ids))
        self._compiler = None
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def _ensure(self):
        if self._compiler is None:
            import xgrammar as xgr

            info = xgr.TokenizerInfo.from_huggingface(self._tokenizer, vocab_size=self._vocab_size,
                                                      stop_token_ids=self._stop_ids or None)
            self._compiler = xgr.GrammarCompiler(info, max_threads=2)
        return self._compiler

    def constraint(self, schema: dict) -> JsonConstraint:
        key = json.dumps(schema, sort_keys=True)
        with self._lock:
            compiled = self._cache.get(key)
            if compiled is None:
                try:
                    # Not the sorted key: properties are generated in the schema's order (a call's
                    # "name" before its "arguments", as the tool-call parser reads it).
                    compiled = self._ensure().compile_json_schema(json.dumps(schema), any_whitespace=False)
                except (RuntimeError, ValueError) as exc:
                    raise ConfigError(f"This JSON schema cannot be turned into a grammar: {exc}") from exc
                self._cache[key] = compiled
                while len(self._cache) > _CACHED_GRAMMARS:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
        return JsonConstraint(compiled, self._vocab_size)
