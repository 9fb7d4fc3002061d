"""RAG fixtures for integration tests: the real bundled embedder, loaded once per session, and
a store holding the test corpus (``tests/data/rag_corpus.json``) as PDFs generated here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
# Debian's fonts-wqy-microhei (the Makefile installs it); fonts-noto-cjk works too.
CJK_FONTS = [
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
]


def cjk_font() -> Path | None:
    return next((p for p in CJK_FONTS if p.is_file()), None)


def make_pdf(pages: list[str], font: Path | None = None) -> bytes:
    """A PDF with one page per string; ``font`` (a TTF/TTC with CJK glyphs) for non-Latin text."""
    from fpdf import FPDF

    pdf = FPDF()
    if font is not None:
        pdf.add_font("cjk", fname=str(font), collection_font_number=0)
        pdf.set_font("cjk", size=11)
    else:
        pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


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
