"""Tables as Markdown: PDFs with real ruled tables (fpdf2), DOCX and HTML tables, the chunker
keeping tables whole or splitting them by rows with the header repeated, passages keeping rows
with their header, and neighbouring pieces of a split table joined back into one table."""

from __future__ import annotations

import io

import pytest

from rag.chunking import chunk_document
from rag.parsing import parse_document
from rag.passages import select_passages
from rag.retrieval import Hit, join_overlapping
from rag.tables import find_tables, markdown_table

ROWS = [["Framework", "Throughput", "Memory use", "High concurrency"],
        ["vLLM", "1980", "21 GB", "Yes"], ["Ollama", "410", "6.1 GB", "No"],
        ["llama.cpp server", "455", "5.4 GB", "Limited"]]


def words(text: str) -> int:
    return len(text.split())


def ruled_pdf(pages: list[tuple[str, list[list[str]] | None, str]]) -> bytes:
    """One page per (text above, table rows or None, text below); tables drawn with cell borders."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for above, rows, below in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, above, new_x="LMARGIN", new_y="NEXT")
        if rows:
            with pdf.table() as table:
                for row in rows:
                    cells = table.row()
                    for cell in row:
                        cells.cell(cell)
        pdf.multi_cell(0, 6, below, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def test_markdown_table_cleans_cells():
    text = markdown_table([["a", "b|c"], ["line\nbreak", None, "extra"], ["", ""], ["表格\n内容", "x"]])
    assert text.splitlines() == ["| a | b\\|c |  |", "| --- | --- | --- |", "| line break |  | extra |",
                                 "| 表格内容 | x |  |"]
    assert markdown_table([]) == ""


def test_find_tables_with_caption_header_and_rows():
    text = "Intro.\nTable 1. Speeds\n\n| a | b |\n|:---|---:|\n| 1 | 2 |\n| 3 | 4 |\nAfter | not a row?\n\nEnd."
    (table,) = find_tables(text)
    assert text[table.caption[0]:table.caption[1]] == "Table 1. Speeds"
    assert text[table.header[0]:table.header[1]] == "| a | b |\n|:---|---:|"
    assert [text[s:e] for s, e in table.rows] == ["| 1 | 2 |", "| 3 | 4 |", "After | not a row?"]
    assert table.start == table.caption[0] and table.end == table.rows[-1][1]
    assert find_tables("a | b\nno separator\n| x |") == []


def test_a_ruled_pdf_table_becomes_a_markdown_table_on_its_page():
    data = ruled_pdf([("Overview of the test.", None, "Nothing else here."),
                      ("Results at 32 clients.\nTable 1. Serving frameworks", ROWS, "We chose vLLM.")])
    doc = parse_document(data, "report.pdf")
    assert [p.number for p in doc.pages] == [1, 2]
    assert doc.pages[0].text == "Overview of the test.\nNothing else here."
    text = doc.pages[1].text
    assert markdown_table(ROWS) in text
    assert text.index("Table 1. Serving frameworks") < text.index("| Framework |") < text.index("We chose vLLM.")
    assert text.count("6.1 GB") == 1  # the cells are not also read as loose words
    (table,) = find_tables(text)
    assert text[table.caption[0]:table.caption[1]] == "Table 1. Serving frameworks"


def test_a_pdf_without_tables_reads_as_before():
    from pypdf import PdfReader

    from rag.parsing import _unwrap_lines

    data = ruled_pdf([("Just a paragraph of text. It has two sentences.", None, "A closing line.")])
    expected = _unwrap_lines(PdfReader(io.BytesIO(data)).pages[0].extract_text())
    assert parse_document(data, "plain.pdf").pages[0].text == expected


def test_docx_tables_in_body_order():
    import docx

    document = docx.Document()
    document.add_heading("Results", level=1)
    document.add_paragraph("Table 1. Serving frameworks")
    table = document.add_table(rows=len(ROWS), cols=len(ROWS[0]))
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("We chose vLLM.")
    out = io.BytesIO()
    document.save(out)
    text = parse_document(out.getvalue(), "report.docx").pages[0].text
    assert text == f"# Results\nTable 1. Serving frameworks\n{markdown_table(ROWS)}\n\nWe chose vLLM."


def test_html_tables_with_head_caption_colspan_and_nesting():
    html = b"""<h2>Results</h2><p>Intro.</p>
    <table><caption>Table 1. Serving frameworks</caption>
    <tbody><tr><td>vLLM</td><td>1980</td></tr><tr><td colspan="2">see <b>notes</b></td></tr></tbody>
    <thead><tr><th>Framework</th><th>Throughput</th></tr></thead></table>
    <table><tr><td><p>Menu</p></td><td><p>Prices</p>
    <table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>3 EUR</td></tr></table></td></tr></table>
    <table><tr><td>A one-column box</td></tr><tr><td>used for layout</td></tr></table>"""
    text = parse_document(html, "page.html").pages[0].text
    assert "## Results\nIntro.\n\nTable 1. Serving frameworks\n| Framework | Throughput |\n| --- | --- |\n" \
           "| vLLM | 1980 |\n| see notes | see notes |" in text
    # A layout table around a data table: its cells are text lines, the inner table a Markdown table.
    assert "Menu\n\nPrices\n\n| Item | Price |\n| --- | --- |\n| Tea | 3 EUR |" in text
    assert "A one-column box\n\nused for layout" in text
    assert len(find_tables(text)) == 2


def _doc(text: str, fmt: str = "md"):
    from rag.parsing import Page, ParsedDocument

    return ParsedDocument(name="t." + fmt, format=fmt, pages=[Page(1 if fmt == "pdf" else None, text)])


def test_a_table_that_fits_stays_whole_with_its_caption():
    prose = " ".join(f"Sentence number {n} says little." for n in range(12))
    text = f"# Results\n{prose}\nTable 1. Serving frameworks\n{markdown_table(ROWS)}\n\n{prose}"
    chunks = chunk_document(_doc(text), "d", words, chunk_tokens=60, chunk_overlap=10)
    holding = [c for c in chunks if "| vLLM |" in c.text]
    assert len(holding) == 1
    assert "Table 1. Serving frameworks\n" + markdown_table(ROWS) in holding[0].text
    assert holding[0].text.startswith("Results\n")
    for c in chunks:
        assert c.body == text[c.char_start:c.char_end]


def test_a_long_table_is_split_by_rows_with_the_header_repeated():
    rows = [ROWS[0]] + [[f"framework-{n}", str(100 * n), f"{n} GB", "Yes" if n % 2 else "No"] for n in range(30)]
    text = f"Results.\nTable 2. Many frameworks\n{markdown_table(rows)}\nAfter the table."
    doc = _doc(text, "pdf")
    chunks = chunk_document(doc, "d", words, chunk_tokens=40, chunk_overlap=8, titles=True)
    pieces = [c for c in chunks if "framework-" in c.text]
    assert len(pieces) >= 3
    header = "| Framework | Throughput | Memory use | High concurrency |\n| --- | --- | --- | --- |"
    seen = []
    for piece in pieces:
        assert piece.text.startswith("t\n") and "Table 2. Many frameworks" in piece.text and header in piece.text
        assert piece.body == text[piece.char_start:piece.char_end]
        body_rows = [line for line in piece.body.splitlines() if line.startswith("| framework-")]
        assert all(line.endswith(" |") for line in body_rows)  # never cut inside a row
        seen += body_rows
    assert seen == [line for line in text.splitlines() if line.startswith("| framework-")]
    assert chunks[-1].text.endswith("After the table.")


def test_neighbouring_pieces_of_a_split_table_join_into_one_table():
    first = "Table 2\n| a | b |\n| --- | --- |\n| 1 | 2 |"
    second = "Table 2\n| a | b |\n| --- | --- |\n| 3 | 4 |"
    assert join_overlapping(first, second, first) == first + "\n| 3 | 4 |"
    assert join_overlapping("Prose.", "| a | b |\n| --- | --- |\n| 3 | 4 |", "x") == \
        "Prose.\n| a | b |\n| --- | --- |\n| 3 | 4 |"
    assert join_overlapping(first, "Then prose.", first) == first + "\nThen prose."


def _hit(text: str, n: int = 0, source: str = "report.pdf", page: int = 2) -> Hit:
    return Hit(document_id="d", chunk_id=n, source=source, page=page, text=text, score=1.0)


def test_passages_keep_a_matching_row_whole_with_header_and_caption():
    filler = " ".join(f"Other remark {n} about hardware and setup." for n in range(30))
    rows = ROWS + [[f"framework-{n}", str(n), f"{n} GB", "No"] for n in range(20)]
    text = f"{filler}\nTable 1. Serving frameworks\n{markdown_table(rows)}\n{filler}"
    (kept,) = select_passages("How much memory does Ollama use?", [_hit(text)], words, 60)
    lines = kept.text.splitlines()
    assert "| Ollama | 410 | 6.1 GB | No |" in lines
    start = lines.index("Table 1. Serving frameworks")
    assert lines[start + 1:start + 3] == ["| Framework | Throughput | Memory use | High concurrency |",
                                          "| --- | --- | --- | --- |"]
    assert len(find_tables(kept.text)) == 1


def test_passages_bring_a_column_question_the_whole_small_table():
    text = "Intro words here.\n" + markdown_table(ROWS) + "\nWe chose vLLM for the shared server."
    (kept,) = select_passages("Which framework has high concurrency support?", [_hit(text)], words, 80)
    for row in ROWS[1:]:
        assert "| " + " | ".join(row) + " |" in kept.text


@pytest.mark.parametrize("question", ["性能对比表中 TensorRT-LLM 的内存占用是多少？"])
def test_a_chinese_row_question(question):
    rows = [["框架", "吞吐", "内存占用"], ["vLLM", "2450", "38 GB"], ["TensorRT-LLM", "2810", "31 GB"],
            ["llama.cpp", "620", "9 GB"]]
    text = "测试环境说明。" * 20 + "\n表 1 主流推理框架性能对比表\n" + markdown_table(rows) + "\n" + "结论说明。" * 20
    (kept,) = select_passages(question, [_hit(text)], lambda t: len(t) // 2, 70)
    assert "| TensorRT-LLM | 2810 | 31 GB |" in kept.text and "| 框架 | 吞吐 | 内存占用 |" in kept.text
