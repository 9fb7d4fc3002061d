"""Document Q&A benchmark: search latency/recall at scale (ingest speed is ``bench/ingest_bench.py``).

``run(quick)`` returns a dict (printed as JSON by ``python -m bench.rag_bench [--quick]``):

* ``search``: hybrid search p50/p95 over 10k (and, unless quick, 100k) synthetic chunks —
  clustered random unit vectors for the dense side, Zipf-distributed words for BM25 — with the
  exact index and with the IVF index used above ``ann_threshold``, plus ANN recall@10 against
  exact search, and the one-off build costs (BM25 matrix, IVF training).

Quick mode takes well under a minute on 2 CPU cores; the full run a few minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["run"]

DIM = 384
WORDS = ("pump warranty filter server rack voltage backup network storage leave travel expense policy "
         "temperature humidity power supply firmware update password security badge report invoice").split()


def _synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[list[str]]]:
    centers = rng.normal(size=(max(16, n // 100), DIM)).astype(np.float32)
    vectors = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vocab = np.array([f"w{i}" for i in range(50_000)], dtype=object)
    ranks = np.minimum(rng.zipf(1.2, size=(n, 120)) - 1, len(vocab) - 1)
    return vectors, [list(vocab[row]) for row in ranks]


def _percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def bench_search(n: int, queries: int = 100) -> dict:
    from rag.index import CollectionIndex
    from rag.retrieval import hybrid_search

    rng = np.random.default_rng(n)
    vectors, tokens = _synthetic(n, rng)
    picks = rng.integers(0, n, queries)
    qvecs = vectors[picks] + 0.3 * rng.normal(size=(queries, DIM)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    qtoks = [list(rng.choice(tokens[p], 4)) for p in picks]
    result: dict = {"chunks": n}
    top: dict[str, list[set[int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, threshold in (("exact", n + 1), ("ann", n // 2)):
            index = CollectionIndex(Path(tmp) / kind, DIM, ann_threshold=threshold)
            t = time.perf_counter()
            index.add(range(n), vectors, tokens)
            add = time.perf_counter() - t
            t = time.perf_counter()
            index.search_dense(qvecs[0], 1)
            dense_build = time.perf_counter() - t
            t = time.perf_counter()
            index.search_lexical(qtoks[0], 1)
            bm25_build = time.perf_counter() - t
            top[kind] = [{cid for cid, _ in index.search_dense(q, 10)} for q in qvecs]
            dense_lat, hybrid_lat = [], []
            for q, toks in zip(qvecs, qtoks, strict=True):
                t = time.perf_counter()
                index.search_dense(q, 50)
                dense_lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                hybrid_search(index, q, toks, top_k=5, candidates=50)
                hybrid_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            index.save()
            save = time.perf_counter() - t
            result[kind] = {"dense": _percentiles(dense_lat), "hybrid": _percentiles(hybrid_lat),
                            "build_s": {"add": round(add, 2), "dense_index": round(dense_build, 2),
                                        "bm25": round(bm25_build, 2), "save": round(save, 2)}}
            if kind == "ann":
                result[kind]["nlist"] = int(index._dense.nlist)
                result[kind]["nprobe"] = int(index._dense.nprobe)
            del index
    result["ann_recall_at_10"] = round(float(np.mean(
        [len(a & e) / 10 for a, e in zip(top["ann"], top["exact"], strict=True)])), 3)
    return result


def run(quick: bool = False) -> dict:
    """Measure search; ``quick`` uses only 10k chunks (ingest is ``bench/ingest_bench.py``)."""
    started = time.perf_counter()
    import os

    import faiss

    # Latency depends heavily on other load: on a busy 2-core box OpenMP threads spin and wait.
    out = {"quick": quick, "cpus": os.cpu_count(), "faiss_threads": faiss.omp_get_max_threads(),
           "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
           "search": [bench_search(n, 30 if quick else 200) for n in ((10_000,) if quick else (10_000, 100_000))]}
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
