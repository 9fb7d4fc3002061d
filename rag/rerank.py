"""Optional second stage of retrieval: a cross-encoder rescoring the fused shortlist.

A cross-encoder reads the query and a chunk together, so it can tell "how do I keep the input
file" from a chunk that merely shares its words; it is far too slow to score a whole collection,
so ``rag.store`` gives it the best ``rerank_candidates`` hybrid hits and keeps its order.
No reranker ships with dcu-chat: ``--reranker-model DIR`` names a local sentence-transformers
``CrossEncoder`` directory (for example a downloaded ms-marco-MiniLM or bge-reranker copy), loaded
on the accelerator when one is present. Without it retrieval is the hybrid ranking alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.embedding import Progress, resolve_device
from rag.errors import RerankerUnavailable

__all__ = ["CrossEncoderReranker", "Reranker"]

log = logging.getLogger(__name__)


@runtime_checkable
class Reranker(Protocol):
    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One relevance score per text, higher is better (any scale)."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` from a local directory; loaded on first use."""

    def __init__(self, model: str | Path, device: str = "auto", batch_size: int = 16) -> None:
        self.path = Path(model).expanduser()
        self._device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()  # one tokenizer, shared mutable state: one caller at a time

    @property
    def name(self) -> str:
        return str(self.path)

    def load(self, progress: Progress | None = None) -> Any:
        with self._lock:
            return self._load(progress)

    def _load(self, progress: Progress | None = None) -> Any:
        if self._model is not None:
            return self._model
        if not (self.path / "config.json").is_file():
            raise RerankerUnavailable(
                f"No cross-encoder model at {self.path}; pass a local sentence-transformers CrossEncoder "
                "directory (with config.json) to --reranker-model, or leave the option out.")
        if progress:
            progress(0.0, f"Loading reranker {self.name}")
        from sentence_transformers import CrossEncoder

        device = resolve_device(self._device)
        try:
            self._model = CrossEncoder(str(self.path), device=device, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise RerankerUnavailable(f"The reranker at {self.path} could not be loaded: {exc}") from exc
        log.info("Loaded reranker %s on %s", self.name, device)
        if progress:
            progress(1.0, f"Reranker {self.name} ready on {device}")
        return self._model

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            model = self._load()
            scores = model.predict([(query, text) for text in texts], batch_size=self.batch_size,
                                   show_progress_bar=False, convert_to_numpy=True)
        scores = np.asarray(scores, dtype=np.float32)
        # A model with several labels (e.g. NLI heads) has no single relevance score; use the last.
        return scores[:, -1] if scores.ndim == 2 else scores
