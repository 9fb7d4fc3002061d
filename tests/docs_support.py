"""Helpers for Document Q&A tests: PDFs made with fpdf2, and Services over a real store."""

from __future__ import annotations

from pathlib import Path

from bench.corpora import cjk_font, paragraph_pdf  # noqa: F401 (cjk_font: the tests take it from here)

REPORT_PAGES = [
    "Quarterly report of the Harbor Pump Company. Revenue grew in all regions this quarter.",
    "Warranty terms. The warranty period for the X200 pump is 36 months from the date of delivery.",
    "Maintenance schedule. Replace the intake filter of the X200 pump every six months.",
]
MANUAL_PAGES = [
    "Installation guide for the Model K kettle. Unpack the kettle and remove all stickers.",
    "Descaling. Descale the Model K kettle with citric acid once a month in hard water areas.",
]


def make_pdf(pages: list[str], font: Path | None = None, password: str | None = None) -> bytes:
    """A PDF with one page per string (``font`` for CJK text; ``password`` encrypts it)."""
    data = paragraph_pdf(pages, font)
    return encrypt_pdf(data, password) if password else data


def encrypt_pdf(data: bytes, password: str) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=password, owner_password=password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_services(data_dir: Path, engine, embedder=None, **rag_options):
    """Services with ``engine``, a real DocumentStore in ``data_dir``, the hashing embedder (or
    ``embedder``) and background upload jobs.

    The relevance threshold is pinned (0.2 unless given): the default is tuned for the real
    embedder, and these tests are about what happens above and below it, not about its value.
    """
    from assist.ingest_jobs import IngestJobs
    from rag.config import RagConfig
    from rag.embedding import HashingEmbedder
    from rag.store import DocumentStore
    from webui.services import Services, WebConfig

    config = RagConfig(data_dir=data_dir, **{"relevance_threshold": 0.2, **rag_options})
    embedder = embedder or HashingEmbedder()
    store = DocumentStore(config, embedder)
    return Services(engine=engine, web=WebConfig(data_dir=data_dir), store=store, embedder=embedder,
                    rag_config=config, jobs=IngestJobs(store, data_dir))
