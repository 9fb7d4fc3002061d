"""Helpers for Document Q&A tests: PDFs made with fpdf2, and Services over a real store."""

from __future__ import annotations

from pathlib import Path

# Debian's fonts-wqy-microhei (the Makefile installs it); fonts-noto-cjk works too.
CJK_FONTS = [
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
]

REPORT_PAGES = [
    "Quarterly report of the Harbor Pump Company. Revenue grew in all regions this quarter.",
    "Warranty terms. The warranty period for the X200 pump is 36 months from the date of delivery.",
    "Maintenance schedule. Replace the intake filter of the X200 pump every six months.",
]
MANUAL_PAGES = [
    "Installation guide for the Model K kettle. Unpack the kettle and remove all stickers.",
    "Descaling. Descale the Model K kettle with citric acid once a month in hard water areas.",
]


def cjk_font() -> Path | None:
    return next((p for p in CJK_FONTS if p.is_file()), None)


def make_pdf(pages: list[str], font: Path | None = None, password: str | None = None) -> bytes:
    """A PDF with one page per string (``font`` for CJK text; ``password`` encrypts it)."""
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
    data = bytes(pdf.output())
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
