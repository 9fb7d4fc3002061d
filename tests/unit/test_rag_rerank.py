"""rag.rerank: a tiny random-weight cross-encoder (built here, loaded through sentence-transformers'
CrossEncoder) re-orders the fused shortlist exactly as its scores say; the threshold still applies
to the hybrid score; a missing model gives a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import RagConfig
from rag.embedding import HashingEmbedder
from rag.errors import InvalidConfig, RerankerUnavailable
from rag.rerank import CrossEncoderReranker
from rag.store import DocumentStore, rerank_hits

WORDS = ("pump filter warranty months replace intake kettle descale water monthly citric acid "
         "server rack voltage power supply backup nightly retention days the a of is every").split()

DOCS = {
    "pump.txt": "The pump warranty is 36 months. Replace the intake filter every six months.",
    "kettle.txt": "Descale the kettle monthly with citric acid. Use fresh water.",
    "rack.txt": "The server rack power supply accepts any voltage. Backup runs nightly.",
    "retention.txt": "Backup retention is 30 days. The filter of the rack is cleaned every month.",
    "water.txt": "Water pump intake must be checked every month. The filter is replaced yearly.",
}


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A 1-layer BERT with random weights, a word-level vocabulary and one output label."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "."]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1)
    model = BertForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_store(tmp_path, reranker=None, **options) -> DocumentStore:
    store = DocumentStore(RagConfig(data_dir=tmp_path, relevance_threshold=0.0, **options), HashingEmbedder(), reranker)
    result = store.add_files("default", [(name, text.encode()) for name, text in DOCS.items()])
    assert not result.errors
    return store


def test_the_cross_encoder_orders_the_shortlist_by_its_own_scores(tmp_path, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    reranker = CrossEncoderReranker(tiny_cross_encoder, device="cpu")
    query = "how often is the pump intake filter replaced"
    plain = make_store(tmp_path / "plain")
    reranked = make_store(tmp_path / "reranked", reranker, rerank_candidates=5)
    fused = plain.search("default", query, top_k=5)
    hits = reranked.search("default", query, top_k=5)
    assert len(fused) == len(hits) >= 4
    assert {h.chunk_id for h in hits} == {h.chunk_id for h in fused}  # same shortlist, new order
    # The scores are the model's own, computed independently here, and the order follows them.
    expected = CrossEncoder(str(tiny_cross_encoder), device="cpu").predict([(query, h.text) for h in hits])
    assert np.allclose([h.rerank for h in hits], expected, atol=1e-5)
    assert [h.rerank for h in hits] == sorted((h.rerank for h in hits), reverse=True)
    assert [h.score for h in hits] == [next(f.score for f in fused if f.chunk_id == h.chunk_id) for h in hits]
    assert all(h.rerank is None for h in fused)
    plain.close()
    reranked.close()


class FixedScores:
    """A reranker that prefers texts containing a given word, and remembers what it was shown."""

    def __init__(self, word: str) -> None:
        self.word, self.seen = word, []

    def score(self, query, texts):
        self.seen.append(list(texts))
        return np.array([float(self.word in t) for t in texts], dtype=np.float32)


def test_the_reranker_sees_the_fused_top_n_and_top_k_is_cut_after_it(tmp_path):
    reranker = FixedScores("kettle")
    store = make_store(tmp_path, reranker, rerank_candidates=4)
    hits = store.search("default", "filter replaced every month", top_k=2)
    assert len(reranker.seen[0]) == 4  # the shortlist, not just top_k
    assert len(hits) == 2
    if any("kettle" in t for t in reranker.seen[0]):
        assert "kettle" in hits[0].text  # promoted from wherever the hybrid ranking had it
    store.close()


def test_the_threshold_applies_before_reranking(tmp_path):
    reranker = FixedScores("kettle")
    store = make_store(tmp_path, reranker)
    high = max(h.score for h in store.search("default", "pump intake filter", top_k=5)) + 0.01
    assert store.search("default", "pump intake filter", min_score=high) == []
    store.close()


def test_rerank_hits_keeps_the_hybrid_order_on_ties(tmp_path):
    store = make_store(tmp_path)
    hits = store.search("default", "filter", top_k=5)
    assert rerank_hits(FixedScores("no such word"), "filter", hits) == [
        h.__class__(**{**h.__dict__, "rerank": 0.0}) for h in hits]
    store.close()


def test_a_missing_reranker_model_says_what_to_pass(tmp_path):
    with pytest.raises(RerankerUnavailable, match="--reranker-model"):
        CrossEncoderReranker(tmp_path / "nothing-here").load()


def test_reranker_config_is_validated():
    with pytest.raises(InvalidConfig):
        RagConfig(rerank_candidates=0)
    with pytest.raises(InvalidConfig):
        RagConfig(reranker_device="tpu")
    assert RagConfig().reranker_model is None  # off unless asked for: no reranker is bundled


def test_expand_adds_the_neighbouring_chunks_of_the_same_page_once(tmp_path):
    sentences = [f"Step {n} of the pump service sets valve {n} to position {n * 3}." for n in range(30)]
    store = DocumentStore(RagConfig(data_dir=tmp_path, relevance_threshold=0.0, chunk_tokens=40, chunk_overlap=10),
                          HashingEmbedder())
    store.add_files("default", [("service.txt", " ".join(sentences).encode()), ("kettle.txt", DOCS["kettle.txt"].encode())])
    hit = next(h for h in store.search("default", "valve 15 position 45", top_k=10) if "valve 15 " in h.text)
    wide = store.expand("default", [hit])[0]
    assert hit.text in wide.text and len(wide.text) > len(hit.text)
    assert not wide.text.startswith("service")  # the title prefix is for the retrievers, not shown
    assert all(wide.text.count(s) == 1 for s in sentences if s in wide.text)  # chunk overlaps joined once
    assert sum(s in wide.text for s in sentences) > sum(s in hit.text for s in sentences)
    assert (wide.chunk_id, wide.page, wide.source, wide.score) == (hit.chunk_id, hit.page, hit.source, hit.score)
    assert "kettle" not in wide.text.lower()  # never another document's chunk
    assert store.expand("default", [hit], neighbours=0) == [hit]
    store.close()
