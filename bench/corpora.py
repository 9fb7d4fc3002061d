"""The two retrieval question sets as uploadable files: generated and real documents.

* ``generated``: ``tests/data/rag_corpus.json`` (short generated manuals, one paragraph a page)
  with ``tests/data/rag_questions.json``, rendered exactly as the integration tests render them.
* ``real``: ``tests/data/real_docs`` (man pages as printed, paged manuals — running headers,
  footers with page numbers, option lists, tables, code listings — English and Chinese, plus a
  Markdown README; sources and licences in its README.md; two short reports whose Markdown tables
  become ruled PDF tables, ``table_pdf``) with ``tests/data/real_questions.json``.

A question is answered at rank r when the r-th hit is from the expected file and on the expected
page (PDF) or, for files without pages, under the expected section heading.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CJK_FONTS", "Corpus", "QUESTION_SETS", "cjk_font", "generated_corpus", "load_corpus", "paragraph_pdf", "rank_of",
           "real_corpus", "table_pdf"]

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# Debian's fonts-wqy-microhei (the Makefile installs it for the tests); Noto CJK works too.
CJK_FONTS = [
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
]
QUESTION_SETS = ("generated", "real")


@dataclass(frozen=True)
class Corpus:
    name: str
    files: list[tuple[str, bytes]]
    questions: list[dict]


def cjk_font() -> Path | None:
    return next((p for p in CJK_FONTS if p.is_file()), None)


def paragraph_pdf(pages: Sequence[str], font: Path | None) -> bytes:
    """One flowing paragraph per page (the generated set's layout)."""
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


def _printed_pdf(pages: Sequence[str], font: Path) -> bytes:
    """Each page's lines set at fixed positions in a monospaced font, as ``man -t`` prints a
    manual: indentation, option columns and tables stay where the formatter put them."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    # Index 1 of WenQuanYi Micro Hei is its monospaced face: CJK glyphs two columns wide, as man counts them.
    pdf.add_font("mono", fname=str(font), collection_font_number=1 if "microhei" in font.name else 0)
    pdf.set_font("mono", size=8.5)
    pdf.set_auto_page_break(False)
    for page in pages:
        pdf.add_page()
        for row, line in enumerate(page.split("\n")):
            if line.strip():
                pdf.text(15, 14 + 4.35 * row, line)
    return bytes(pdf.output())


def table_pdf(pages: Sequence[str], font: Path) -> bytes:
    """Markdown pages as a report: ``#`` headings, paragraphs, and each Markdown table drawn as a
    ruled table (fpdf2's ``table()``: cell borders, header row in bold), one PDF page a page."""
    from fpdf import FPDF

    from rag.tables import find_tables

    pdf = FPDF(format="A4")
    for style in ("", "B"):
        pdf.add_font("cjk", style=style, fname=str(font), collection_font_number=0)
    for page in pages:
        pdf.add_page()
        pos = 0
        for table in [*find_tables(page), None]:
            for line in page[pos:table.start if table else len(page)].split("\n"):
                heading = len(line) - len(line.lstrip("#"))
                pdf.set_font("cjk", style="B" if heading else "", size=14 - 1.5 * heading if heading else 10.5)
                if line.strip():
                    pdf.multi_cell(0, 6.5, line.lstrip("# ").strip(), new_x="LMARGIN", new_y="NEXT")
                else:
                    pdf.ln(2)
            if table is None:
                break
            if table.caption:
                pdf.set_font("cjk", style="B", size=10.5)
                pdf.multi_cell(0, 7, page[table.caption[0]:table.caption[1]], new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("cjk", size=9.5)
            lines = [page[table.header[0]:table.header[1]].split("\n")[0]] + [page[s:e] for s, e in table.rows]
            with pdf.table(line_height=6) as drawn:
                for line in lines:
                    row = drawn.row()
                    for cell in line.strip().strip("|").split("|"):
                        row.cell(cell.strip())
            pdf.ln(3)
            pos = table.end
    return bytes(pdf.output())


def generated_corpus(font: Path) -> Corpus:
    corpus = json.loads((DATA / "rag_corpus.json").read_text(encoding="utf-8"))
    questions = json.loads((DATA / "rag_questions.json").read_text(encoding="utf-8"))["questions"]
    files = [(doc["name"], paragraph_pdf(doc["pages"], font if doc["language"] == "zh" else None))
             for doc in corpus["documents"]]
    langs = {doc["name"]: doc["language"] for doc in corpus["documents"]}
    return Corpus("generated", files, [dict(q, lang=langs[q["source"]]) for q in questions])


def real_corpus(font: Path) -> Corpus:
    spec = json.loads((DATA / "real_questions.json").read_text(encoding="utf-8"))
    files = []
    for doc in spec["documents"]:
        text = (DATA / "real_docs" / doc["file"]).read_text(encoding="utf-8")
        if doc["name"].endswith(".pdf"):
            render = table_pdf if doc["kind"] == "report" else _printed_pdf
            files.append((doc["name"], render(text.rstrip("\n").split("\f"), font)))
        else:
            files.append((doc["name"], text.encode("utf-8")))
    return Corpus("real", files, spec["questions"])


def load_corpus(name: str) -> Corpus:
    """``generated`` or ``real``; raises ``FileNotFoundError`` without a CJK font."""
    font = cjk_font()
    if font is None:
        raise FileNotFoundError("No CJK font for the Chinese PDFs: apt-get install fonts-wqy-microhei")
    return {"generated": generated_corpus, "real": real_corpus}[name](font)


def rank_of(question: dict, hits: Sequence) -> int | None:
    """1-based rank of the first hit that answers ``question``, or ``None``."""
    for rank, hit in enumerate(hits, start=1):
        if hit.source != question["source"]:
            continue
        if question.get("page") is not None:
            if hit.page == question["page"]:
                return rank
        elif question.get("section", "") in hit.text.split("\n", 1)[0]:
            return rank
    return None
