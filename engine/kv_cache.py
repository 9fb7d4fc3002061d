"""Re-use the KV cache of earlier requests so a conversation's next turn only prefills what is new.

A chat resends its whole history every turn; without reuse the model re-reads all of it and the
time to the first token grows with the conversation. ``PrefixCache`` keeps the KV cache of recent
requests (one entry per UI session, plus recent anonymous API prompts) and hands back a copy of
the longest cached prefix of a new prompt, cropped to that prefix. It is bounded by a byte
budget and evicts the least recently used entries first.

Correctness rules:

* At least one prompt token is always left to prefill (the model needs logits for it).
* A stored entry is never mutated: lookups return a shallow copy whose layers share the stored
  tensors read-only (transformers' dynamic layers grow by ``torch.cat``, never in place), and
  cropping a copy only re-slices its own views.
* Sliding-window layers that already dropped tokens cannot be cropped (Gemma 3's window is 512):
  such an entry is only reused when no crop is needed. The engine avoids the problem by caching
  with full layers (``new_cache``) and letting the attention mask apply the window.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["PrefixCache", "CacheStats", "new_cache", "cache_nbytes", "common_prefix_length"]


def new_cache():
    """An empty cache with full (non-sliding) layers: croppable at any length.

    Sliding-window models stay exact: the mask still limits each sliding layer to its window,
    the layer merely keeps older keys it will not attend to.
    """
    from transformers import DynamicCache

    return DynamicCache()


def cache_nbytes(cache) -> int:
    total = 0
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if tensor is not None and hasattr(tensor, "nbytes"):
                total += int(tensor.nbytes)
    return total


def common_prefix_length(a, b) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _croppable_to(cache, length: int) -> bool:
    """Whether ``cache`` can be cut back to ``length`` tokens without losing needed keys."""
    current = cache.get_seq_length()
    if length == current:
        return True
    for layer in cache.layers:
        window = getattr(layer, "sliding_window", None)
        if getattr(layer, "is_sliding", False) and window is not None and layer.get_seq_length() >= window:
            return False  # the layer already dropped keys a shorter prefix would need
    return True


def _cropped_copy(cache, length: int):
    clone = copy.copy(cache)
    clone.layers = [copy.copy(layer) for layer in cache.layers]
    if length < clone.get_seq_length():
        clone.crop(length - clone.get_seq_length())
    return clone


@dataclass
class _Entry:
    ids: tuple[int, ...]
    cache: object
    nbytes: int


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int


class PrefixCache:
    """LRU store of KV caches keyed by session id (or an anonymous id), bounded by bytes."""

    def __init__(self, max_bytes: int, min_prefix: int = 4) -> None:
        self.max_bytes = max_bytes
        self.min_prefix = min_prefix
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._anonymous = itertools.count()
        self.hits = 0
        self.misses = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._entries), self._bytes, self.max_bytes, self.hits, self.misses)

    def lookup(self, ids: list[int], session_id: str | None = None) -> tuple[object | None, int]:
        """(a private copy of the cache cropped to the longest usable prefix, its length) or (None, 0)."""
        limit = len(ids) - 1  # leave at least one token to prefill
        best_key, best_len = None, 0
        with self._lock:
            for key, entry in self._entries.items():
                usable = min(common_prefix_length(entry.ids, ids), limit)
                better = usable > best_len or (usable == best_len and usable and key == session_id)
                if better and usable >= self.min_prefix and _croppable_to(entry.cache, usable):
                    best_key, best_len = key, usable
            if best_key is None:
                self.misses += 1
                return None, 0
            self.hits += 1
            self._entries.move_to_end(best_key)
            entry = self._entries[best_key]
            return _cropped_copy(entry.cache, best_len), best_len

    def store(self, ids: list[int], cache, session_id: str | None = None) -> bool:
        """Keep ``cache`` (holding the KV of ``ids``); returns False when it does not fit the budget."""
        ids = tuple(ids)
        if len(ids) != cache.get_seq_length():
            raise ValueError(f"cache holds {cache.get_seq_length()} tokens but {len(ids)} ids were given")
        nbytes = cache_nbytes(cache)
        if nbytes > self.max_bytes or len(ids) < self.min_prefix:
            return False
        with self._lock:
            key = session_id if session_id is not None else f"~anonymous-{next(self._anonymous)}"
            # An entry whose tokens are a prefix of the new one can never win a lookup again.
            dominated = [k for k, e in self._entries.items()
                         if k == key or (len(e.ids) <= len(ids) and ids[:len(e.ids)] == e.ids)]
            for k in dominated:
                self._bytes -= self._entries.pop(k).nbytes
            self._entries[key] = _Entry(ids, cache, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
        return True

    def drop(self, session_id: str) -> None:
        with self._lock:
            entry = self._entries.pop(session_id, None)
            if entry is not None:
                self._bytes -= entry.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
