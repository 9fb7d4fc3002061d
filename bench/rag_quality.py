"""Retrieval quality per stage: hit@1 / hit@5 on the generated and the real question sets.

Each stage is the previous one plus one change, measured through the real ``DocumentStore``
(parse -> chunk -> embed with the bundled MiniLM -> FAISS + BM25 -> hybrid search -> optional
reranker), so the table says what each change bought:

* ``baseline``: the retrieval before issue 14 (no document titles in chunks, question words of
  the original stop list only, hybrid weights 0.5 / 0.5);
* ``+titles``: every chunk starts with its document's title (``RagConfig.chunk_titles``);
* ``+zh query``: question and function words dropped from queries only (``rag.tokenizer``);
* ``+passages``: a chunk's lexical score blends in its best 32-token window's share of the
  query's IDF (``rag.retrieval.PASSAGE_WEIGHT``; issue 23) — kept: real hit@1 0.698 -> 0.714;
* ``tried: zh bigrams`` (not kept): Chinese character bigrams added to document and query tokens,
  so compounds split differently by jieba still meet — real zh hit@1 0.719 -> 0.688 and hit@5
  0.844 -> 0.781 (English gained one top hit as document lengths shifted), and lexical scores shrank
  towards the relevance threshold;
* ``tried: zh dense 0.2`` (not kept): the MiniLM cosine weighed 0.2 for Chinese queries instead of
  0 — hit@5 up (0.889 -> 0.905), hit@1 down (0.714 -> 0.683), and at 0.3 the generated set lost
  one top hit; the embedder does not know Chinese, so its rank order stays out;
* ``+reranker``: a cross-encoder over the fused top ``rerank_candidates`` — only with
  ``--reranker-model DIR`` (none is bundled, so by default this stage says "skipped").

Fusion weights are swept on the final stage without a reranker (``weights``); the defaults stay
where that sweep is flat. Also tried on the real set and not kept (issue 23, no stage): windows of
16 or 24 tokens, a passage share of 0.5, or the max of chunk and window (hit@1 0.62-0.67). ``context`` is how often the expected answer text lies inside the top
hit alone versus the top hit widened by its neighbouring chunks (``DocumentStore.expand``).

Embeddings are cached by text within the run, so stages that keep chunk texts reuse them.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import numpy as np

from bench.corpora import QUESTION_SETS, Corpus, load_corpus, rank_of

__all__ = ["CachingEmbedder", "evaluate", "run"]


class CachingEmbedder:
    """Wraps an embedder; vectors are remembered by text (the stages re-ingest the same chunks)."""

    def __init__(self, inner) -> None:
        self.inner, self._cache = inner, {}
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens
        self.languages = getattr(inner, "languages", None)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts, batch_size: int = 32, progress=None) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.embed(missing, batch_size=batch_size), strict=True))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


@contextmanager
def _old_query_tokens() -> Iterator[None]:
    """The query tokenizer as it was before the query-only stop words (documents are unchanged)."""
    from rag import tokenizer

    with mock.patch("rag.store.tokenize", lambda text, query=False: tokenizer.tokenize(text)):
        yield


@contextmanager
def _no_passages() -> Iterator[None]:
    """Hybrid search without passage-level lexical scoring (before issue 23)."""
    from functools import partial

    from rag.retrieval import hybrid_search

    with mock.patch("rag.store.hybrid_search", partial(hybrid_search, passage_weight=0.0)):
        yield


@contextmanager
def _before_passages() -> Iterator[None]:
    with _old_query_tokens(), _no_passages():
        yield


_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")


@contextmanager
def _zh_bigrams() -> Iterator[None]:
    """Tried: every Chinese character bigram not already a token, in documents and queries."""
    import unicodedata

    from rag import tokenizer

    def tokenize(text: str, query: bool = False) -> list[str]:
        tokens = tokenizer.tokenize(text, query=query)
        have = set(tokens) | tokenizer._STOPWORDS | (tokenizer._QUERY_STOPWORDS if query else frozenset())
        runs = _CJK_RUN.findall(unicodedata.normalize("NFKC", text).lower())
        return tokens + [run[i:i + 2] for run in runs for i in range(len(run) - 1) if run[i:i + 2] not in have]

    with mock.patch("rag.store.tokenize", tokenize):
        yield


@contextmanager
def _zh_dense(weight: float = 0.2) -> Iterator[None]:
    """Tried: the embedder's cosine weighed ``weight`` for Chinese queries instead of 0."""
    from rag.retrieval import detect_language, hybrid_search
    from rag.store import DocumentStore

    original = DocumentStore.search

    def store_search(self, collection, query, *args, **kwargs):
        zh = {"dense_weight": weight, "lexical_weight": 1 - weight} if detect_language(query) == "zh" else {}
        with mock.patch("rag.store.hybrid_search", lambda *a, **kw: hybrid_search(*a, **(kw | zh))):
            return original(self, collection, query, *args, **kwargs)

    with mock.patch.object(DocumentStore, "search", store_search):
        yield


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def evaluate(store, corpus: Corpus, collection: str = "bench") -> dict:
    """hit@1 / hit@5 over a corpus already in ``collection``, in total and per language."""
    ranks = {"en": [], "zh": []}
    context = {"top_hit": 0, "with_neighbours": 0, "n": 0}
    for q in corpus.questions:
        hits = store.search(collection, q["q"], top_k=5, min_score=0.0)
        ranks[q["lang"]].append(rank_of(q, hits))
        if q.get("expect") and hits:
            context["n"] += 1
            context["top_hit"] += _norm(q["expect"]) in _norm(hits[0].text)
            context["with_neighbours"] += _norm(q["expect"]) in _norm(store.expand(collection, hits[:1])[0].text)

    def rates(values: list) -> dict:
        n = len(values)
        return {"hit@1": round(sum(r == 1 for r in values) / max(n, 1), 3),
                "hit@5": round(sum(r is not None for r in values) / max(n, 1), 3), "n": n}

    result = rates(ranks["en"] + ranks["zh"]) | {lang: rates(v) for lang, v in ranks.items() if v}
    if context["n"]:
        result["context"] = context
    return result


def _measure(embedder, corpus: Corpus, config: dict, patch: Callable, reranker=None) -> dict:
    from rag.config import RagConfig
    from rag.store import DocumentStore

    with tempfile.TemporaryDirectory() as tmp, patch():
        store = DocumentStore(RagConfig(data_dir=Path(tmp), **config), embedder, reranker)
        try:
            store.create_collection("bench")
            added = store.add_files("bench", corpus.files)
            if added.errors:
                raise RuntimeError(f"ingest failed: {added.errors}")
            return evaluate(store, corpus)
        finally:
            store.close()


def run(quick: bool = False, reranker_model: str | None = None) -> dict:
    """All stages on both question sets; ``quick`` skips the weight sweep."""
    from rag.embedding import SentenceTransformerEmbedder

    started = time.perf_counter()
    inner = SentenceTransformerEmbedder()
    inner.load()
    embedder = CachingEmbedder(inner)
    corpora = {name: load_corpus(name) for name in QUESTION_SETS}
    reranker = None
    if reranker_model:
        from rag.rerank import CrossEncoderReranker

        reranker = CrossEncoderReranker(reranker_model)
        reranker.load()
    final: dict = {}
    stages = [("baseline", {"chunk_titles": False}, _before_passages),
              ("+titles", {"chunk_titles": True}, _before_passages),
              ("+zh query", final, _no_passages),
              ("+passages", final, nullcontext),
              ("tried: zh bigrams", final, _zh_bigrams),
              ("tried: zh dense 0.2", final, _zh_dense)]
    out: dict = {"embedder": inner.name, "device": inner.device, "stages": [],
                 "sets": {name: {"questions": len(c.questions), "files": len(c.files)} for name, c in corpora.items()}}
    for stage, config, patch in stages:
        row = {"stage": stage, "config": config}
        for name, corpus in corpora.items():
            row[name] = _measure(embedder, corpus, config, patch)
        out["stages"].append(row)
    if reranker is not None:
        row = {"stage": "+reranker", "config": {"reranker_model": reranker_model}}
        for name, corpus in corpora.items():
            row[name] = _measure(embedder, corpus, final, nullcontext, reranker)
        out["stages"].append(row)
    else:
        out["stages"].append({"stage": "+reranker", "skipped": "no --reranker-model given (none is bundled)"})
    if not quick:
        out["weights"] = []
        for dense in (0.3, 0.4, 0.5, 0.6, 0.7):
            config = final | {"dense_weight": dense, "lexical_weight": round(1 - dense, 2)}
            out["weights"].append({"dense_weight": dense, **{name: _measure(embedder, corpus, config, nullcontext)
                                                             for name, corpus in corpora.items()}})
    out["wall_s"] = round(time.perf_counter() - started, 1)
    return out


def markdown_rows(quality: dict) -> list[list[str]]:
    """Rows ``stage | set | hit@1 | hit@5 | notes`` for ``bench.report``."""
    rows = []
    for row in quality.get("stages", []):
        if "skipped" in row:
            rows.append([row["stage"], "both", "-", "-", row["skipped"]])
            continue
        for name in QUESTION_SETS:
            r = row.get(name, {})
            langs = ", ".join(f"{lang} {r[lang]['hit@1']}/{r[lang]['hit@5']}" for lang in ("en", "zh") if lang in r)
            ctx = r.get("context")
            note = f"{langs} (n={r.get('n')})"
            if ctx:
                note += f"; answer text in top hit {ctx['top_hit']}/{ctx['n']}, with neighbours {ctx['with_neighbours']}/{ctx['n']}"
            rows.append([row["stage"], name, str(r.get("hit@1")), str(r.get("hit@5")), note])
    for row in quality.get("weights", []):
        rows.append([f"weights {row['dense_weight']}/{round(1 - row['dense_weight'], 2)}", "generated / real",
                     f"{row['generated']['hit@1']} / {row['real']['hit@1']}",
                     f"{row['generated']['hit@5']} / {row['real']['hit@5']}", "dense / lexical weight sweep"])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="no weight sweep")
    parser.add_argument("--reranker-model", default=None, help="local CrossEncoder directory for the reranker stage")
    args = parser.parse_args(argv)
    result = run(args.quick, args.reranker_model)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print("| retrieval stage | question set | hit@1 | hit@5 | notes |\n|---|---|---|---|---|")
    print("\n".join("| " + " | ".join(row) + " |" for row in markdown_rows(result)))


if __name__ == "__main__":
    main()
