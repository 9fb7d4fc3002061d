"""Tables as Markdown: cells to a Markdown table, Markdown tables found in text, PDF tables read.

Every format's tables end up as the same Markdown text in a page (``| a | b |`` rows under a
header row and a ``| --- |`` line), so BM25 and the embedder see the cell text with its column
names, the chunker can keep a table whole (or split it by rows with the header repeated, see
``rag.chunking``), passage selection can hand the model a row with its header (``rag.passages``),
and the model reads a format it knows. ``find_tables`` finds such tables in text, whatever
the file they came from (a Markdown file's own tables included).

PDF tables are read with pdfplumber, only on pages that draw enough lines or boxes to hold a ruled
table (pypdfium2 counts the path objects; pdfplumber's layout analysis costs ~20-80 ms a page, most
pages have no table); the rest of the text of such a page is read by pdfplumber too, outside the
tables' boxes, so the cells do not come twice.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["TableSpan", "find_tables", "is_table_line", "markdown_table", "pdf_table_pages", "replace_html_tables"]

log = logging.getLogger(__name__)

# A page needs this many drawn paths (lines, boxes) to be worth asking pdfplumber for ruled tables:
# a table of 2 x 2 cells draws at least 4; a page rule or an underline draws 1 or 2.
_MIN_PATHS = 4
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_CAPTION_CHARS = 100  # a line above a table this short (or shorter) is read as its caption
_LAYOUT_CELL_CHARS = 400  # an HTML cell this long holds running text: the table is page layout


@dataclass(frozen=True)
class TableSpan:
    """Character spans of one Markdown table in a text: ``caption`` is ``None`` or the line just
    above it; ``header`` covers the header row and the ``---`` line; ``rows`` the body rows."""

    start: int  # the caption's start, or the header's
    end: int
    caption: tuple[int, int] | None
    header: tuple[int, int]
    rows: tuple[tuple[int, int], ...]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = re.sub(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s*\n\s*(?=[\u3000-\u9fff\uff00-\uffef])", "", text)
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; the first row is the header. Line breaks inside cells become spaces (none
    between CJK characters), ``|`` is escaped, short rows are padded, empty rows dropped."""
    cleaned = [[_cell(c) for c in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cleaned]
    lines.insert(1, "|" + " --- |" * width)
    return "\n".join(lines)


def is_table_line(line: str) -> bool:
    """A line that may be a Markdown table row (it has a cell separator)."""
    stripped = line.strip()
    return "|" in stripped and not stripped.startswith(("```", "~~~"))


def find_tables(text: str, start: int = 0, end: int | None = None) -> list[TableSpan]:
    """The Markdown tables of ``text[start:end]``: a row line, a ``---`` line, then row lines."""
    end = len(text) if end is None else end
    lines: list[tuple[int, int]] = []
    pos = start
    for line in text[start:end].splitlines(keepends=True):
        lines.append((pos, pos + len(line.rstrip("\r\n"))))
        pos += len(line)
    out: list[TableSpan] = []
    i = 0
    while i + 1 < len(lines):
        (hs, he), (ss, se) = lines[i], lines[i + 1]
        if not (is_table_line(text[hs:he]) and _SEPARATOR.match(text[ss:se]) and "|" in text[ss:se]):
            i += 1
            continue
        j = i + 2
        while j < len(lines) and text[lines[j][0]:lines[j][1]].strip() and is_table_line(text[lines[j][0]:lines[j][1]]):
            j += 1
        caption = _caption(text, lines, i, out[-1].end if out else start)
        header = (hs + len(text[hs:he]) - len(text[hs:he].lstrip()), se)
        rows = tuple((a + len(text[a:b]) - len(text[a:b].lstrip()), b) for a, b in lines[i + 2:j])
        out.append(TableSpan(caption[0] if caption else header[0], rows[-1][1] if rows else se, caption, header, rows))
        i = j
    return out


def _caption(text: str, lines: list[tuple[int, int]], header: int, floor: int) -> tuple[int, int] | None:
    """The line above a table (one blank line between allowed) when it is short: "表 1 …", "Table 2."."""
    k = header - 1
    if k >= 0 and not text[lines[k][0]:lines[k][1]].strip():
        k -= 1
    if k < 0 or lines[k][0] < floor:
        return None
    s, e = lines[k]
    line = text[s:e]
    if not line.strip() or len(line.strip()) > _CAPTION_CHARS or is_table_line(line) or line.lstrip().startswith("#"):
        return None
    return s + len(line) - len(line.lstrip()), s + len(line.rstrip())


def pdf_table_pages(data: bytes, name: str, page_numbers: Sequence[int] | None = None) -> dict[int, list[tuple[str, str]]]:
    """For each 1-based page that holds a ruled table: its content as ``(kind, text)`` blocks in
    reading order, ``kind`` ``"text"`` (layout line breaks kept) or ``"table"`` (Markdown)."""
    candidates = _pages_with_paths(data, page_numbers)
    if not candidates:
        return {}
    import pdfplumber

    found: dict[int, list[tuple[str, str]]] = {}
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number in candidates:
            page = pdf.pages[number - 1]
            try:
                blocks = _page_blocks(page)
            except Exception as exc:  # pdfminer fails in many ways on odd pages; the pypdf text stays
                log.warning("%s: tables on page %d could not be read: %s", name, number, exc)
                continue
            finally:
                page.close()
            if blocks:
                found[number] = blocks
    return found


def _pages_with_paths(data: bytes, page_numbers: Sequence[int] | None) -> list[int]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    document = pdfium.PdfDocument(data)
    try:
        numbers = page_numbers if page_numbers is not None else range(1, len(document) + 1)
        out = []
        for number in numbers:
            page = document[number - 1]
            try:
                paths = page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH])
                if sum(1 for _, __ in zip(range(_MIN_PATHS), paths, strict=False)) >= _MIN_PATHS:
                    out.append(number)
            finally:
                page.close()
        return out
    finally:
        document.close()


def _page_blocks(page) -> list[tuple[str, str]]:
    """Text bands between the tables, and the tables, top to bottom; ``[]`` without a real table."""
    tables = [t for t in page.find_tables() if _real(t)]
    if not tables:
        return []
    tables.sort(key=lambda t: (t.bbox[1], t.bbox[0]))
    left, top, right, bottom = page.bbox
    blocks: list[tuple[str, str]] = []
    for table in tables:
        t0, t1 = max(table.bbox[1], top), min(table.bbox[3], bottom)
        if t0 > top:
            blocks.append(("text", _text(page, (left, top, right, t0))))
        if t1 > t0:  # text beside a narrow table, before it
            blocks.append(("text", _text(page, (left, t0, right, t1), outside=table.bbox)))
        blocks.append(("table", markdown_table(table.extract())))
        top = max(top, t1)
    if top < bottom:
        blocks.append(("text", _text(page, (left, top, right, bottom))))
    return [(kind, text) for kind, text in blocks if text.strip()]


def _text(page, bbox: tuple[float, float, float, float], outside: tuple | None = None) -> str:
    band = page.within_bbox(bbox)
    return (band.outside_bbox(outside) if outside else band).extract_text() or ""


def _real(table) -> bool:
    """At least two rows and two columns with text: a boxed paragraph or a frame is not a table."""
    rows = [row for row in table.extract() if any((c or "").strip() for c in row)]
    return len(rows) >= 2 and max((sum(bool((c or "").strip()) for c in row) for row in rows), default=0) >= 2


def replace_html_tables(soup) -> None:
    """Each data ``<table>`` of a BeautifulSoup tree replaced by its Markdown text (its ``<caption>``
    on the line above), innermost first. A table used for page layout (one column, a table inside,
    or a cell of running text) is left in place with each cell on lines of its own."""
    for table in reversed(soup.find_all("table")):
        head = [tr for tr in table.find_all("tr") if tr.find_parent("thead") is not None]
        rows = head + [tr for tr in table.find_all("tr") if tr not in head]
        cells = []
        for tr in rows:
            row = []
            for cell in tr.find_all(["td", "th"]):
                span = str(cell.get("colspan", "1"))
                row.extend([cell.get_text(" ", strip=True)] * (int(span) if span.isdigit() and 0 < int(span) < 50 else 1))
            cells.append(row)
        if _layout(table, cells):
            for cell in table.find_all(["td", "th"]):
                cell.insert_after("\n")
            continue
        caption = table.find("caption")
        title = caption.get_text(" ", strip=True) if caption is not None else ""
        text = markdown_table(cells)
        table.replace_with(f"\n\n{title}\n{text}\n\n" if title else f"\n\n{text}\n\n")


def _layout(table, cells: list[list[str]]) -> bool:
    nested = table.find("table") is not None or "\n| --- |" in table.get_text()
    return nested or max((len(row) for row in cells), default=0) < 2 or any(
        len(cell) > _LAYOUT_CELL_CHARS for row in cells for cell in row)
