"""rag.index: tokenization, dense + lexical add/remove/search, ANN switch, atomic persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.embedding import HashingEmbedder
from rag.index import CollectionIndex
from rag.tokenizer import tokenize

EMB = HashingEmbedder(64)
TEXTS = [
    "The warranty covers parts and labor for three years.",
    "Clean the dust filter every three months.",
    "机房温度应保持在十八度至二十七度之间。",
    "柴油发电机每月进行一次带载测试。",
    "Passwords are rotated every 90 days.",
]


def build(tmp_path, texts=TEXTS, ids=None, **kw) -> CollectionIndex:
    index = CollectionIndex(tmp_path / "index", EMB.dim, embedder=EMB.name, **kw)
    index.add(ids or list(range(1, len(texts) + 1)), EMB.embed(texts), [tokenize(t) for t in texts])
    return index


def test_tokenize_chinese_and_english():
    assert tokenize("The Warranty, covers PARTS!") == ["warranty", "covers", "parts"]
    zh = tokenize("柴油发电机多久测试一次？")
    assert "柴油" in zh and "发电机" in zh and "测试" in zh
    assert "多久" not in zh and "？" not in zh  # question word and punctuation dropped
    assert tokenize("ＡＢＣ１２３") == ["abc123"]  # full-width folded by NFKC


def test_dense_and_lexical_search_find_the_right_chunk(tmp_path):
    index = build(tmp_path)
    query = "how long is the warranty"
    assert index.search_dense(EMB.embed([query])[0], 2)[0][0] == 1
    lexical = index.search_lexical(tokenize("发电机 测试"), 3)
    assert lexical[0][0] == 4 and 0 < lexical[0][1] <= 1
    assert index.search_lexical(tokenize("nothing matches zebra"), 3) == []


def test_lexical_score_is_coverage_of_the_query(tmp_path):
    index = build(tmp_path)
    full = index.lexical_scores(tokenize("dust filter"), [2])[0]
    half = index.lexical_scores(tokenize("dust zebra"), [2])[0]
    assert 0 < half < full <= 1


def test_remove_deletes_vectors_and_postings(tmp_path):
    index = build(tmp_path)
    assert index.remove([1, 99]) == 1
    assert len(index) == 4 and 1 not in index
    assert all(cid != 1 for cid, _ in index.search_dense(EMB.embed(["warranty"])[0], 10))
    assert index.search_lexical(tokenize("warranty"), 5) == []
    assert index.dense_scores(EMB.embed(["warranty"])[0], [1])[0] == 0


def test_ids_must_be_new(tmp_path):
    index = build(tmp_path)
    with pytest.raises(ValueError):
        index.add([1], EMB.embed(["x"]), [["x"]])


def test_save_and_load_round_trip(tmp_path):
    index = build(tmp_path)
    index.remove([2])
    index.save()
    loaded = CollectionIndex.load(tmp_path / "index", EMB.dim, embedder=EMB.name)
    assert loaded.ids.tolist() == index.ids.tolist()
    vec, toks = EMB.embed(["temperature 机房温度"])[0], tokenize("机房温度")
    assert loaded.search_dense(vec, 3) == index.search_dense(vec, 3)
    assert loaded.search_lexical(toks, 3) == index.search_lexical(toks, 3)
    # still updatable after loading
    loaded.add([10], EMB.embed(["new text about zebras"]), [tokenize("new text about zebras")])
    assert loaded.search_lexical(tokenize("zebras"), 1)[0][0] == 10


def test_save_is_generational_and_cleans_up(tmp_path):
    index = build(tmp_path)
    index.save()
    (tmp_path / "index" / "arrays-7.npz.tmp").write_bytes(b"half-written by a crash")
    index.add([20], EMB.embed(["more"]), [["more"]])
    index.save()
    names = sorted(p.name for p in (tmp_path / "index").iterdir())
    assert names == ["arrays-2.npz", "index.json", "vocab-2.json"]
    assert json.loads((tmp_path / "index" / "index.json").read_text())["generation"] == 2


def test_a_crash_before_the_manifest_keeps_the_previous_generation(tmp_path, monkeypatch):
    index = build(tmp_path)
    index.save()
    index.add([30], EMB.embed(["late"]), [["late"]])
    import rag.index as mod

    real = mod._atomic_write

    def crash_on_manifest(path, write):
        if path.name == "index.json":
            raise OSError("disk full")
        real(path, write)

    monkeypatch.setattr(mod, "_atomic_write", crash_on_manifest)
    with pytest.raises(OSError):
        index.save()
    monkeypatch.undo()
    loaded = CollectionIndex.load(tmp_path / "index", EMB.dim, embedder=EMB.name)
    assert sorted(loaded.ids.tolist()) == [1, 2, 3, 4, 5]


def test_load_for_another_embedder_starts_empty(tmp_path):
    build(tmp_path).save()
    other = CollectionIndex.load(tmp_path / "index", EMB.dim, embedder="another-model")
    assert len(other) == 0
    assert len(CollectionIndex.load(tmp_path / "missing", EMB.dim)) == 0


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, dim))
    vectors = centers[rng.integers(0, 40, n)] + 0.5 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_ann_index_above_the_threshold_keeps_recall_and_supports_delete_and_reload(tmp_path):
    n, dim = 3000, 32
    vectors = clustered(n, dim)
    index = CollectionIndex(tmp_path / "index", dim, embedder="x", ann_threshold=1000)
    index.add(list(range(n)), vectors, [[f"t{i % 50}"] for i in range(n)])
    queries = clustered(20, dim, seed=1)
    exact = [set(np.argsort(-(vectors @ q))[:10].tolist()) for q in queries]
    found = [set(cid for cid, _ in index.search_dense(q, 10)) for q in queries]
    assert index.is_ann
    recall = np.mean([len(a & b) / 10 for a, b in zip(exact, found, strict=True)])
    assert recall >= 0.8
    index.remove(list(range(0, n, 2)))
    assert all(cid % 2 == 1 for q in queries for cid, _ in index.search_dense(q, 10))
    index.save()
    assert any(p.name.startswith("ann-") for p in (tmp_path / "index").iterdir())
    loaded = CollectionIndex.load(tmp_path / "index", dim, embedder="x", ann_threshold=1000)
    assert loaded.is_ann and len(loaded) == n // 2
    assert loaded.search_dense(queries[0], 5) == index.search_dense(queries[0], 5)


def test_index_falls_back_to_exact_search_when_it_shrinks(tmp_path):
    vectors = clustered(600, 16)
    index = CollectionIndex(tmp_path / "index", 16, ann_threshold=400)
    index.add(list(range(600)), vectors, [[] for _ in range(600)])
    index.search_dense(vectors[0], 1)
    assert index.is_ann
    index.remove(list(range(500)))
    assert index.search_dense(vectors[550], 1)[0][0] == 550
    assert not index.is_ann


FILLER = " ".join(f"filler{n}" for n in range(40))
TOGETHER = f"kiwi mango {FILLER}"  # the query's words side by side, as an answer's sentence has them
APART = f"kiwi {FILLER} mango"  # the same words and length, 40 tokens apart


def test_passage_score_is_the_query_share_in_the_best_window(tmp_path):
    index = build(tmp_path, texts=[TOGETHER, APART, "nothing relevant here"])
    query = tokenize("kiwi mango")
    together, apart, other, unknown = index.passage_scores(query, [1, 2, 3, 99], window=32)
    assert together == pytest.approx(1.0)
    assert 0.3 < apart < 0.7  # one of two equally rare words per window
    assert other == 0 and unknown == 0
    assert not index.passage_scores([], [1]).any()
    # BM25 alone cannot tell them apart: same words, same length.
    assert index.lexical_scores(query, [1])[0] == pytest.approx(index.lexical_scores(query, [2])[0])


def test_hybrid_search_prefers_the_chunk_whose_words_stand_together(tmp_path):
    from rag.retrieval import hybrid_search

    index = build(tmp_path, texts=[APART, TOGETHER])  # the scattered one has the lower id: wins ties
    query, vector = tokenize("kiwi mango"), EMB.embed(["kiwi mango"])[0]
    plain = hybrid_search(index, vector, query, dense_weight=0.0, lexical_weight=1.0, passage_weight=0.0)
    assert [s.chunk_id for s in plain] == [1, 2] and plain[0].score == pytest.approx(plain[1].score)
    scored = hybrid_search(index, vector, query, dense_weight=0.0, lexical_weight=1.0)
    assert [s.chunk_id for s in scored] == [2, 1] and scored[0].score > scored[1].score
    assert all(0.0 <= s.lexical <= 1.0 for s in scored)
