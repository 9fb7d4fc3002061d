"""Per-collection search indexes: FAISS over normalized vectors, BM25 (bm25s) over jieba tokens.

One ``CollectionIndex`` holds, row-aligned, the chunk ids, their vectors and their token ids.
Those arrays are the persisted truth; the FAISS index and the bm25s score matrix are derived
from them and rebuilt lazily after changes (bm25s has no incremental update). Up to
``ann_threshold`` vectors the dense index is exact (``IndexIDMap2`` over ``IndexFlatIP``); above
it an ``IndexIVFFlat`` is trained, which supports adding and removing ids without retraining.

Persistence is crash-safe: each save writes a new generation of files (temp file + fsync +
``os.replace``), then atomically replaces ``index.json`` naming that generation, then removes
older generations. A crash leaves either the old or the new generation in force.

Not thread-safe: ``rag.store`` serializes access with a lock per collection.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.tokenizer import tokenize

__all__ = ["CollectionIndex", "tokenize"]  # tokenize re-exported for callers

log = logging.getLogger(__name__)

MANIFEST = "index.json"
FORMAT_VERSION = 1

class CollectionIndex:
    """Dense + lexical index of one collection's chunks, addressed by integer chunk id."""

    def __init__(self, directory: Path, dim: int, *, embedder: str = "", ann_threshold: int = 50_000) -> None:
        self.directory = Path(directory)
        self.dim = dim
        self.embedder = embedder
        self.ann_threshold = ann_threshold
        self.generation = 0
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._tokens: list[np.ndarray] = []
        self._vocab: dict[str, int] = {}
        self._row: dict[int, int] = {}
        self._dense = None  # faiss index, built lazily
        self._dense_trained_on = 0
        self._bm25 = None  # bm25s.BM25, built lazily
        self._df = np.zeros(0, dtype=np.int64)
        self._lexical_cache: tuple[tuple[str, ...], np.ndarray] | None = None  # last query's scores

    # ------------------------------------------------------------ contents

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._row

    @property
    def ids(self) -> np.ndarray:
        return self._ids.copy()

    @property
    def is_ann(self) -> bool:
        return self._dense is not None and not hasattr(self._dense, "id_map")

    def add(self, ids: Sequence[int], vectors: np.ndarray, tokens: Sequence[Sequence[str]]) -> None:
        """Add chunks; ``vectors`` must be L2-normalized, ``tokens`` from ``tokenize``."""
        ids_arr = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids_arr), self.dim)
        if len(ids_arr) != len(tokens):
            raise ValueError("ids, vectors and tokens must have the same length")
        if len(set(ids_arr.tolist())) != len(ids_arr) or any(int(i) in self._row for i in ids_arr):
            raise ValueError("chunk ids must be new and unique")
        base = len(self._ids)
        self._ids = np.concatenate([self._ids, ids_arr])
        self._vectors = np.concatenate([self._vectors, vectors])
        for offset, (chunk_id, toks) in enumerate(zip(ids_arr.tolist(), tokens, strict=True)):
            self._row[chunk_id] = base + offset
            self._tokens.append(np.array([self._vocab.setdefault(t, len(self._vocab)) for t in toks], dtype=np.int32))
        if self._dense is not None and self._dense_kind_ok():
            self._dense.add_with_ids(vectors, ids_arr)
        else:
            self._dense = None
        self._bm25 = self._lexical_cache = None

    def remove(self, ids: Sequence[int]) -> int:
        """Remove chunks by id; unknown ids are ignored. Returns how many were removed."""
        doomed = {int(i) for i in ids if int(i) in self._row}
        if not doomed:
            return 0
        keep = np.array([int(i) not in doomed for i in self._ids.tolist()], dtype=bool)
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        self._tokens = [t for t, k in zip(self._tokens, keep.tolist(), strict=True) if k]
        self._row = {cid: row for row, cid in enumerate(self._ids.tolist())}
        if self._dense is not None and self._dense_kind_ok():
            self._dense.remove_ids(np.fromiter(doomed, dtype=np.int64))
        else:
            self._dense = None
        self._bm25 = self._lexical_cache = None
        return len(doomed)

    # ------------------------------------------------------------ dense

    def _dense_kind_ok(self) -> bool:
        """Is the current FAISS index still the right kind for the current size?"""
        n, ann = len(self._ids), self.is_ann
        if not ann:
            return n <= self.ann_threshold
        # Hysteresis back to exact search; retrain once the data outgrew the training set 4x.
        return n >= self.ann_threshold // 2 and n <= 4 * max(self._dense_trained_on, 1)

    def _dense_index(self):
        import faiss

        if self._dense is not None and self._dense_kind_ok():
            return self._dense
        n = len(self._ids)
        if n <= self.ann_threshold:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        else:
            # 2*sqrt(n) lists probed 1/8 at a time: recall@10 ~0.94 on clustered 100k x 384
            # (bench/rag_bench.py), several times faster than exact search.
            nlist = int(min(65536, max(16, 2 * math.sqrt(n))))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            # k-means on 64 points per list is plenty for centroids and keeps training to seconds.
            sample = np.random.default_rng(0).choice(n, size=min(n, nlist * 64), replace=False)
            index.train(self._vectors[np.sort(sample)])
            index.nprobe = max(16, nlist // 8)
            self._dense_trained_on = n
        if n:
            index.add_with_ids(self._vectors, self._ids)
        self._dense = index
        return index

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top ``k`` chunks by cosine similarity (exact or approximate, see module docstring)."""
        if not len(self._ids) or k < 1:
            return []
        scores, ids = self._dense_index().search(np.asarray(vector, dtype=np.float32).reshape(1, self.dim), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def dense_scores(self, vector: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Exact cosine similarity of the given chunks (0 for unknown ids)."""
        rows = [self._row.get(int(i), -1) for i in ids]
        out = np.zeros(len(rows), dtype=np.float32)
        known = [n for n, r in enumerate(rows) if r >= 0]
        if known:
            out[known] = self._vectors[[rows[n] for n in known]] @ np.asarray(vector, dtype=np.float32).reshape(-1)
        return out

    # ------------------------------------------------------------ lexical

    def _lexical(self):
        import bm25s

        if self._bm25 is None and len(self._ids):
            bm25 = bm25s.BM25()
            vocab_size = max(len(self._vocab), 1)
            bm25.index(([t.tolist() for t in self._tokens], {str(i): i for i in range(vocab_size)}),
                       show_progress=False)
            indptr = np.asarray(bm25.scores["indptr"], dtype=np.int64)
            self._df = indptr[1:vocab_size + 1] - indptr[:vocab_size]
            self._bm25 = bm25
        return self._bm25

    def lexical_scores_all(self, tokens: Sequence[str]) -> np.ndarray:
        """Per-row lexical relevance in [0, 1]: the BM25 score divided by the sum of the query
        terms' IDF. A chunk with every query term once, at average length, scores about 1;
        unknown query terms count with the highest IDF, so they lower every score."""
        n = len(self._ids)
        terms = tuple(dict.fromkeys(tokens))
        if self._lexical_cache is not None and self._lexical_cache[0] == terms:
            return self._lexical_cache[1]  # hybrid search asks twice: shortlist, then exact scores
        bm25 = self._lexical()
        if not n or not terms or bm25 is None:
            return np.zeros(n, dtype=np.float32)
        known = [self._vocab[t] for t in terms if t in self._vocab]
        df = np.zeros(len(terms), dtype=np.float64)
        df[: len(known)] = self._df[known] if known else []
        # Same IDF as bm25s's default "lucene" method.
        idf_total = float(np.log1p((n - df + 0.5) / (df + 0.5)).sum())
        raw = bm25.get_scores_from_ids(known) if known else np.zeros(n, dtype=np.float32)
        scores = np.minimum(1.0, np.asarray(raw, dtype=np.float32) / max(idf_total, 1e-9))
        self._lexical_cache = (terms, scores)
        return scores

    def search_lexical(self, tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        scores = self.lexical_scores_all(tokens)
        if not len(scores) or k < 1:
            return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._ids[r]), float(scores[r])) for r in top if scores[r] > 0]

    def passage_scores(self, tokens: Sequence[str], ids: Sequence[int], window: int = 32) -> np.ndarray:
        """Per-chunk share of the query's IDF found inside the chunk's best window of ``window``
        tokens, in [0, 1] (0 for unknown ids). BM25 rewards terms anywhere in a chunk; this
        rewards the terms standing together, as an answer's sentence has them."""
        out = np.zeros(len(ids), dtype=np.float32)
        n = len(self._ids)
        terms = list(dict.fromkeys(tokens))
        if not n or not terms:
            return out
        self._lexical()  # document frequencies
        df = np.array([self._df[self._vocab[t]] if t in self._vocab else 0 for t in terms], dtype=np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))  # bm25s's "lucene" IDF, as lexical_scores_all
        weight = {self._vocab[t]: idf[k] for k, t in enumerate(terms) if t in self._vocab}
        if not weight:
            return out
        wanted = np.fromiter(weight, dtype=np.int64)
        values = np.array([weight[int(t)] for t in wanted])
        step = max(1, window // 4)
        for j, chunk_id in enumerate(ids):
            row = self._row.get(int(chunk_id))
            if row is None:
                continue
            # (tokens x query terms) presence; each window counts a term once.
            hits = self._tokens[row][:, None] == wanted[None, :]
            if not hits.any():
                continue
            starts = range(0, max(1, len(hits) - window + 1), step)
            out[j] = max(float(values[hits[s:s + window].any(axis=0)].sum()) for s in starts)
        return np.minimum(1.0, out / max(float(idf.sum()), 1e-9)).astype(np.float32)

    def lexical_scores(self, tokens: Sequence[str], ids: Sequence[int]) -> np.ndarray:
        scores = self.lexical_scores_all(tokens)
        return np.array([scores[self._row[int(i)]] if int(i) in self._row else 0.0 for i in ids], dtype=np.float32)

    # ------------------------------------------------------------ persistence

    def save(self) -> None:
        """Write a new generation atomically, then drop older generations."""
        self.directory.mkdir(parents=True, exist_ok=True)
        gen = self.generation + 1
        lengths = np.array([len(t) for t in self._tokens], dtype=np.int64)
        flat = np.concatenate(self._tokens) if self._tokens else np.zeros(0, dtype=np.int32)
        _atomic_write(self.directory / f"arrays-{gen}.npz", lambda f: np.savez(
            f, ids=self._ids, vectors=self._vectors, token_lengths=lengths, tokens=flat))
        vocab = sorted(self._vocab, key=self._vocab.__getitem__)
        _atomic_write(self.directory / f"vocab-{gen}.json", lambda f: f.write(json.dumps(vocab).encode()))
        ann = self.is_ann and self._dense_kind_ok()
        if ann:
            import faiss

            # The trained IVF is worth keeping: k-means takes seconds; exact indexes rebuild instantly.
            _atomic_write(self.directory / f"ann-{gen}.faiss",
                          lambda f: f.write(faiss.serialize_index(self._dense).tobytes()))
        manifest = {"version": FORMAT_VERSION, "generation": gen, "dim": self.dim, "embedder": self.embedder,
                    "count": len(self._ids), "ann": ann, "ann_trained_on": self._dense_trained_on}
        _atomic_write(self.directory / MANIFEST, lambda f: f.write(json.dumps(manifest).encode()))
        self.generation = gen
        self._remove_other_generations()

    def _remove_other_generations(self) -> None:
        for path in self.directory.iterdir():
            match = re.fullmatch(r"(?:arrays|vocab|ann)-(\d+)\.(?:npz|json|faiss)(?:\.tmp)?", path.name)
            if match and int(match.group(1)) != self.generation or path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path, dim: int, *, embedder: str = "", ann_threshold: int = 50_000) -> CollectionIndex:
        """The saved index, or an empty one when none is saved or it was built for another
        embedder (the caller re-embeds what the metadata says should be indexed)."""
        index = cls(directory, dim, embedder=embedder, ann_threshold=ann_threshold)
        try:
            manifest = json.loads((Path(directory) / MANIFEST).read_text())
        except FileNotFoundError:
            return index
        if manifest.get("dim") != dim or manifest.get("embedder") != embedder:
            log.warning("Index in %s was built with %s (dim %s); it will be rebuilt for %s.",
                        directory, manifest.get("embedder"), manifest.get("dim"), embedder)
            index.generation = int(manifest.get("generation", 0))
            return index
        gen = int(manifest["generation"])
        with np.load(Path(directory) / f"arrays-{gen}.npz") as arrays:
            index._ids = arrays["ids"].astype(np.int64)
            index._vectors = arrays["vectors"].astype(np.float32).reshape(-1, dim)
            bounds = np.cumsum(arrays["token_lengths"])[:-1]
            index._tokens = list(np.split(arrays["tokens"].astype(np.int32), bounds)) if len(index._ids) else []
        vocab = json.loads((Path(directory) / f"vocab-{gen}.json").read_text())
        index._vocab = {tok: i for i, tok in enumerate(vocab)}
        index._row = {cid: row for row, cid in enumerate(index._ids.tolist())}
        index.generation = gen
        ann_path = Path(directory) / f"ann-{gen}.faiss"
        if manifest.get("ann") and ann_path.is_file():
            import faiss

            dense = faiss.deserialize_index(np.fromfile(ann_path, dtype=np.uint8))
            if dense.ntotal == len(index._ids):
                index._dense, index._dense_trained_on = dense, int(manifest.get("ann_trained_on", 0))
        index._remove_other_generations()
        return index


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
