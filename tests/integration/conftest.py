"""RAG fixtures for integration tests: the real bundled embedder, loaded once per session, and
a store holding the test corpus (``tests/data/rag_corpus.json``) as PDFs generated here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from docs_support import cjk_font, make_pdf

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def rag_corpus() -> dict:
    return json.loads((DATA / "rag_corpus.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def rag_questions() -> dict:
    return json.loads((DATA / "rag_questions.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def corpus_pdfs(rag_corpus) -> list[tuple[str, bytes]]:
    """(file name, PDF bytes) for every corpus document; skips when a CJK font is missing."""
    font = cjk_font()
    if font is None:
        pytest.skip("No CJK font for the Chinese test PDFs: apt-get install fonts-wqy-microhei")
    return [(doc["name"], make_pdf(doc["pages"], font if doc["language"] == "zh" else None))
            for doc in rag_corpus["documents"]]


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once per session."""
    from rag.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def corpus_store(tmp_path_factory, real_embedder, corpus_pdfs):
    """A DocumentStore (default config, real embedder) with the corpus in collection ``corpus``."""
    from rag.config import RagConfig
    from rag.store import DocumentStore

    store = DocumentStore(RagConfig(data_dir=tmp_path_factory.mktemp("rag-corpus")), real_embedder)
    store.create_collection("corpus")
    result = store.add_files("corpus", corpus_pdfs)
    assert not result.errors, result.errors
    yield store
    store.close()


@pytest.fixture(scope="session")
def llama_engine():
    """The real embedded default on llama.cpp (what ``--backend auto`` serves on a CPU), once per session."""
    pytest.importorskip("xllamacpp")
    from engine.config import EngineConfig
    from engine.engine import Engine

    engine = Engine.load(EngineConfig(backend="llamacpp", max_batch=4), progress=lambda m: print(m, flush=True))
    yield engine
    engine.backend.close()
