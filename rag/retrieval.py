"""Hybrid retrieval: dense (embedding) and lexical (BM25) candidates fused into one ranking.

Fusion is a weighted blend of two scores that both live in [0, 1] and mean something on their
own: cosine similarity (clipped at 0) and lexical coverage (BM25 divided by the query's total
IDF, see ``CollectionIndex.lexical_scores_all``). Unlike reciprocal-rank fusion, an absolute
blend lets a single threshold say "nothing here is relevant", and it lets BM25 carry Chinese
queries, where the bundled English MiniLM gives every Chinese text a similar cosine (~0.6),
so its rank order is noise that RRF would weigh as much as a real match. For the same reason
``rag.store`` sets the dense weight to 0 for a query in a language the embedder does not know
(``embedder.languages``; the bundled MiniLM declares English only). Weights and threshold were
tuned on ``tests/data/rag_questions.json`` (see ``tests/integration/test_rag_retrieval.py``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.index import CollectionIndex
from rag.rerank import Reranker
from rag.tables import find_tables, is_table_line

__all__ = ["PASSAGE_WEIGHT", "Hit", "Scored", "detect_language", "hybrid_search", "join_overlapping", "rerank_hits"]

# Passage-level lexical scoring: a chunk's lexical score is 70% its BM25 coverage, 30% the share
# of the query's IDF inside its best 32-token window. Measured in bench/rag_quality.py
# ("+passages"): real set hit@1 0.698 -> 0.714, hit@5 0.873 -> 0.889; windows of 16-24 tokens
# or a larger share (0.5, or the max of both) did worse.
PASSAGE_WEIGHT = 0.3
PASSAGE_TOKENS = 32
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def detect_language(text: str) -> str:
    """``"zh"`` when CJK characters make up at least a fifth of the non-space text, else ``"en"``."""
    chars = sum(not ch.isspace() for ch in text)
    return "zh" if chars and len(_CJK.findall(text)) * 5 >= chars else "en"


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. ``page`` is 1-based, ``None`` for files without pages."""

    document_id: str
    source: str
    page: int | None
    text: str
    score: float
    chunk_id: int
    dense: float = 0.0
    lexical: float = 0.0
    rerank: float | None = None  # the cross-encoder's score when a reranker ordered the hits

    def to_dict(self) -> dict:
        """The HTTP contract's shape: ``document_id, source, page, text, score`` and ``chunk_id`` (the
        passage a page preview marks: ``…/pages/{page}.png?chunk=``)."""
        return {"document_id": self.document_id, "source": self.source, "page": self.page,
                "text": self.text, "score": round(self.score, 4), "chunk_id": self.chunk_id}


@dataclass(frozen=True)
class Scored:
    chunk_id: int
    score: float
    dense: float
    lexical: float


def hybrid_search(
    index: CollectionIndex,
    vector: np.ndarray,
    tokens: Sequence[str],
    *,
    top_k: int = 5,
    candidates: int = 50,
    dense_weight: float = 0.5,
    lexical_weight: float = 0.5,
    min_score: float = 0.0,
    passage_weight: float = PASSAGE_WEIGHT,
) -> list[Scored]:
    """Best ``top_k`` chunks with blended score >= ``min_score``, best first.

    Candidates are the union of the dense and the lexical top ``candidates``; every candidate
    then gets both scores exactly, so a chunk found by one retriever is not penalized for
    being just outside the other's shortlist. A candidate's lexical score is its BM25 coverage
    blended (``passage_weight``) with the coverage of its best ``PASSAGE_TOKENS``-token window.
    """
    if not len(index) or top_k < 1:
        return []
    pool = max(candidates, top_k)
    ids = list(dict.fromkeys(
        ([cid for cid, _ in index.search_dense(vector, pool)] if dense_weight > 0 else [])
        + ([cid for cid, _ in index.search_lexical(tokens, pool)] if lexical_weight > 0 else [])
    ))
    if not ids:
        return []
    dense = np.clip(index.dense_scores(vector, ids), 0.0, 1.0)
    lexical = index.lexical_scores(tokens, ids)
    if passage_weight > 0:
        lexical = (1 - passage_weight) * lexical + passage_weight * index.passage_scores(tokens, ids, PASSAGE_TOKENS)
    total = dense_weight + lexical_weight
    blended = (dense_weight * dense + lexical_weight * lexical) / total
    order = sorted(range(len(ids)), key=lambda n: (-blended[n], ids[n]))
    results = [Scored(ids[n], float(blended[n]), float(dense[n]), float(lexical[n])) for n in order]
    return [r for r in results if r.score >= min_score][:top_k]


def rerank_hits(reranker: Reranker, query: str, hits: Sequence[Hit]) -> list[Hit]:
    """``hits`` in the reranker's order (ties keep the hybrid order), each with its ``rerank`` score."""
    scores = reranker.score(query, [h.text for h in hits])
    order = sorted(range(len(hits)), key=lambda n: -float(scores[n]))  # sorted() is stable
    return [dataclasses.replace(hits[n], rerank=float(scores[n])) for n in order]


def join_overlapping(first: str, second: str, anchor: str) -> str:
    """``first`` then ``second`` with the text they share (chunk overlap) once, and without a
    repeated heading line: both chunks of a section start with the same heading path as ``anchor``.
    Tables stay tables: a piece of a split table loses its repeated header, and text next to a
    table goes on a line of its own."""
    head = anchor.split("\n", 1)[0] + "\n" if "\n" in anchor else None
    if head and second.startswith(head) and first.startswith(head):
        second = second[len(head):]
    for size in range(min(len(first), len(second)), 0, -1):
        if first.endswith(second[:size]) and second[:size] != "|":  # two rows share a "|", not text
            return first + second[size:]
    tables = find_tables(second)
    if tables and not second[:tables[0].start].strip():
        header = second[tables[0].header[0]:tables[0].header[1]]
        return first + "\n" + (second[tables[0].header[1]:].lstrip("\n") if header in first else second)
    return first + ("\n" if is_table_line(first[first.rfind("\n") + 1:]) else " ") + second
