"""rag.embedding: the hashing fake, the protocol, and that loading is explicit and offline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rag.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from rag.errors import EmbedderUnavailable


def test_hashing_embedder_is_deterministic_normalized_and_meaningful():
    emb = HashingEmbedder(128)
    assert isinstance(emb, Embedder) and emb.dim == 128 and emb.name == "hashing-128"
    vectors = emb.embed(["pump warranty three years", "the pump warranty is three years", "食堂早上八点开门", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (4, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert np.array_equal(vectors, emb.embed(["pump warranty three years", "the pump warranty is three years",
                                              "食堂早上八点开门", ""]))
    assert emb.embed([]).shape == (0, 128)


def test_hashing_embedder_counts_words_and_cjk_characters():
    emb = HashingEmbedder()
    assert emb.count_tokens("Hello, world") == 3
    assert emb.count_tokens("食堂开门") == 4


def test_vectors_are_identical_across_processes():
    code = ("from rag.embedding import HashingEmbedder; "
            "print(HashingEmbedder(16).embed(['same text'])[0].round(5).tolist())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(runs) == 1


def test_sentence_transformer_embedder_loads_nothing_until_asked():
    emb = SentenceTransformerEmbedder()
    assert emb._model is None and emb.name == "all-MiniLM-L6-v2" and emb.languages == ("en",)
    assert SentenceTransformerEmbedder("/some/model").languages is None


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(EmbedderUnavailable, match="No sentence-transformers model"):
        SentenceTransformerEmbedder(tmp_path / "nothing").load()


def test_importing_rag_loads_no_heavy_library():
    code = ("import sys, rag, rag.store, rag.prompts; "
            "print(sorted(m for m in ('torch', 'faiss', 'bm25s', 'jieba', 'sentence_transformers', 'pypdf', "
            "'docx', 'bs4', 'engine', 'gradio', 'fastapi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
