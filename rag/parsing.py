"""Turn uploaded bytes into text pages: PDF (pypdf), images (OCR), TXT, Markdown, HTML (bs4), DOCX, source code.

A ``ParsedDocument`` is a display name plus a list of ``Page`` values. Page numbers are 1-based
for PDFs and images (a TIFF may hold several pages) and ``None`` for formats without pages. PDF
pages without a text layer that draw an image (scans) and image files are read by OCR
(``rag.ocr``); in a mixed PDF only those pages are OCR'd. Headings found in HTML and DOCX are written as
Markdown ``#`` lines so the chunker can carry them into chunk text the same way for all three.
Tables of PDFs (ruled ones, read by pdfplumber), HTML and DOCX become Markdown tables (``rag.tables``).
Every failure becomes a ``RagError`` subclass whose message names the file and says what to do.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.errors import (
    CorruptFile,
    EmptyFile,
    EncryptedFile,
    FileTooLarge,
    NoTextLayer,
    RagError,
    TooManyPages,
    UnsupportedFile,
)
from rag.ocr import OcrOptions, ocr_image_file, ocr_pdf_pages, pages_with_images
from rag.tables import markdown_table, pdf_table_pages, replace_html_tables

__all__ = ["Page", "ParsedDocument", "parse_document", "sanitize_name", "SUPPORTED_EXTENSIONS", "CODE_EXTENSIONS",
           "HEADING_FORMATS", "PAGED_FORMATS"]

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf", ".txt": "txt", ".text": "txt", ".log": "txt", ".csv": "txt",
    ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".docx": "docx",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image", ".tiff": "image",
}
# Source code is read as text (format "code", the extension kept as its language for fences).
CODE_EXTENSIONS = (".py", ".js", ".ts", ".tsx", ".jsx", ".java", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".go",
                   ".rs", ".rb", ".php", ".sh", ".bash", ".sql", ".kt", ".swift", ".scala", ".lua", ".r", ".m",
                   ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".xml", ".css", ".tex", ".rst")
SUPPORTED_EXTENSIONS.update({ext: "code" for ext in CODE_EXTENSIONS})
# Formats whose text carries Markdown-style heading lines (see module docstring).
HEADING_FORMATS = frozenset({"md", "html", "docx"})
# Formats whose pages are numbered (citations say "p.N").
PAGED_FORMATS = frozenset({"pdf", "image"})
# A PDF page with fewer visible characters than this has no real text layer (a lone page number
# stamped on a scan does not count).
_MIN_TEXT_CHARS = 3

Progress = Callable[[float, str], None]

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word 97-2003 files and encrypted Office files
_SENTENCE_END = tuple("。！？；.!?;:：”’\"）)")
_BULLET = re.compile(r"^([-•*·▪●]\s|\d{1,3}[.)、]\s?|[（(]?[一二三四五六七八九十]{1,3}[、)）])")


@dataclass(frozen=True)
class Page:
    number: int | None
    text: str


@dataclass(frozen=True)
class ParsedDocument:
    name: str
    format: str
    pages: list[Page]
    ocr_pages: tuple[int, ...] = field(default=())  # the pages whose text came from OCR

    @property
    def page_count(self) -> int | None:
        """Pages of a paged format (PDF, image); ``None`` for plain text, Markdown, HTML, DOCX."""
        return len(self.pages) if self.format in PAGED_FORMATS else None


def sanitize_name(filename: str) -> str:
    """A display name without directories or control characters (no path traversal)."""
    base = re.split(r"[/\\]", filename or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return base[:200] or "document"


def parse_document(
    data: bytes, filename: str, *, max_bytes: int | None = None, max_pages: int | None = None,
    ocr: OcrOptions | None = OcrOptions(), progress: Progress | None = None,  # noqa: B008 - frozen, shared
) -> ParsedDocument:
    """Parse one uploaded file; raises a ``RagError`` subclass on any problem.

    ``ocr=None`` turns OCR off (scans are then refused); ``progress(fraction, message)`` is
    called as pages are read and OCR'd.
    """
    name = sanitize_name(filename)
    ext = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    fmt = SUPPORTED_EXTENSIONS.get(ext)
    if fmt is None:
        kinds = ", ".join(sorted({e.lstrip(".") for e in SUPPORTED_EXTENSIONS}))
        raise UnsupportedFile(f"{name}: this file type is not supported; upload one of: {kinds}.")
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLarge(
            f"{name} is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.1f} MiB. "
            "Split it into smaller files."
        )
    if not data.strip():
        raise EmptyFile(f"{name} is empty.")
    report = progress or (lambda fraction, message: None)
    if fmt == "pdf":
        return _parse_pdf(data, name, max_pages, ocr, report)
    if fmt == "image":
        return _parse_image(data, name, max_pages, ocr, report)
    if fmt == "docx":
        pages = [Page(None, _parse_docx(data, name))]
    elif fmt == "html":
        pages = [Page(None, _parse_html(data))]
    else:
        pages = [Page(None, _decode_text(data, name))]
    if not pages[0].text.strip():
        raise EmptyFile(f"{name} contains no text.")
    return ParsedDocument(name=name, format=fmt, pages=pages)


# ---------------------------------------------------------------- PDF


def _parse_pdf(data: bytes, name: str, max_pages: int | None, ocr: OcrOptions | None,
               report: Progress) -> ParsedDocument:
    from pypdf import PasswordType, PdfReader

    if b"%PDF-" not in data[:1024]:
        raise CorruptFile(f"{name} is not a PDF file (no PDF header); it may be damaged or misnamed.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            # An empty user password opens "owner-password only" PDFs; anything else needs the user.
            raise EncryptedFile(f"{name} is encrypted; decrypt it and upload again.")
        count = len(reader.pages)
    except RagError:
        raise
    except Exception as exc:  # pypdf raises many types on malformed input; all mean "damaged"
        if "decrypt" in str(exc).lower() or "crypt" in type(exc).__name__.lower():
            raise EncryptedFile(f"{name} is encrypted; decrypt it and upload again.") from exc
        raise CorruptFile(f"{name} could not be read as a PDF ({exc}); it may be damaged or truncated.") from exc
    if count == 0:
        raise EmptyFile(f"{name} has no pages.")
    if max_pages is not None and count > max_pages:
        raise TooManyPages(f"{name} has {count} pages; the limit is {max_pages}. Split it into smaller files.")
    texts, failed = [], 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one broken page should not lose the rest of the document
            log.warning("%s: page %d could not be read: %s", name, number, exc)
            failed, text = failed + 1, ""
        texts.append(text)
        if number % 10 == 0 or number == count:
            report(0.1 * number / count, f"Reading {name}: page {number}/{count}")
    if failed == count:
        raise CorruptFile(f"{name}: no page could be read; the file may be damaged.")
    bare = [n for n, text in enumerate(texts, start=1) if len("".join(text.split())) < _MIN_TEXT_CHARS]
    scanned = pages_with_images(data, bare) if bare else []
    if scanned and ocr is None:
        raise NoTextLayer(f"{name} has {len(scanned)} scanned page(s) without a text layer, and OCR is turned off.")
    if scanned:
        report(0.1, f"OCR of {name}: {len(scanned)} scanned page(s)")
        read = ocr_pdf_pages(data, name, scanned, ocr, lambda done, todo: report(
            0.1 + 0.9 * done / todo, f"OCR of {name}: page {scanned[done - 1]} ({done}/{todo})"))
        for number, text in read.items():
            texts[number - 1] = text
    pages = [Page(number, _unwrap_lines(text)) for number, text in enumerate(texts, start=1)]
    read = [n for n, page in enumerate(pages, start=1) if page.text.strip() and n not in scanned]
    for number, blocks in _pdf_tables(data, name, read).items():
        pages[number - 1] = Page(number, "\n\n".join(
            text if kind == "table" else _unwrap_lines(text) for kind, text in blocks))
    if not any(p.text.strip() for p in pages):
        if scanned:
            raise NoTextLayer(f"{name}: OCR found no text on its {len(scanned)} scanned page(s); the scan may be "
                              "blank or too faint. Scan it again at 300 DPI.")
        raise NoTextLayer(f"{name} has no extractable text and no scanned pages to read.")
    report(1.0, f"Read {name}")
    return ParsedDocument(name=name, format="pdf", pages=pages, ocr_pages=tuple(scanned))


def _pdf_tables(data: bytes, name: str, numbers: list[int]) -> dict[int, list[tuple[str, str]]]:
    """Pages with ruled tables, as text and Markdown table blocks; none if the file defeats pdfplumber."""
    try:
        return pdf_table_pages(data, name, numbers) if numbers else {}
    except Exception as exc:  # pdfminer/pdfium errors on a file pypdf read: keep pypdf's text
        log.warning("%s: tables could not be read: %s", name, exc)
        return {}


def _parse_image(data: bytes, name: str, max_pages: int | None, ocr: OcrOptions | None,
                 report: Progress) -> ParsedDocument:
    if ocr is None:
        raise NoTextLayer(f"{name} is an image; reading it needs OCR, which is turned off.")
    report(0.0, f"OCR of {name}")
    texts = ocr_image_file(data, name, ocr, max_pages, lambda done, todo: report(
        done / todo, f"OCR of {name}: page {done}/{todo}"))
    pages = [Page(number, _unwrap_lines(text)) for number, text in enumerate(texts, start=1)]
    if not any(p.text.strip() for p in pages):
        raise NoTextLayer(f"{name}: OCR found no text in this image; it may be blank, too small or too faint. "
                          "Scan it again at 300 DPI.")
    return ParsedDocument(name=name, format="image", pages=pages, ocr_pages=tuple(p.number for p in pages))


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"


def _unwrap_lines(text: str) -> str:
    """Join PDF layout line breaks inside paragraphs so sentences stay whole.

    A break is kept after sentence-ending punctuation, before list items and around blank lines;
    otherwise CJK lines join without a space and Latin lines with one (re-joining hyphenated words).
    """
    out: list[str] = []
    for raw in text.replace("\r", "\n").replace("\x00", "").split("\n"):
        line = re.sub(r"[ \t\u00a0]+", " ", raw).strip()
        prev = out[-1] if out else ""
        if prev and line and not prev.endswith(_SENTENCE_END) and not _BULLET.match(line):
            if _is_cjk(prev[-1]) or _is_cjk(line[0]):
                out[-1] = prev + line
            elif prev.endswith("-") and prev[-2:-1].isalpha() and line[0].islower():
                out[-1] = prev[:-1] + line
            else:
                out[-1] = prev + " " + line
        else:
            out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


# ---------------------------------------------------------------- text


def _decode_text(data: bytes, name: str) -> str:
    """Decode plain text: BOMs, UTF-8, then charset-normalizer (GBK/GB18030, Big5, Latin-1 …)."""
    from charset_normalizer import from_bytes

    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = _strict(data, "utf-32" if data.startswith(b"\xff\xfe\x00\x00") else "utf-16", name)
    elif b"\x00" in data[:65536]:
        raise UnsupportedFile(f"{name} looks like a binary file, not text; upload the document itself.")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            best = from_bytes(data).best()
            if best is None:
                raise UnsupportedFile(f"{name} looks like a binary file, not text; upload the document itself.") from None
            text = str(best)
            if best.encoding in ("cp949", "euc_kr", "johab") and _hanja_ratio(text) > 0.2:
                # Short GBK texts are often guessed as Korean; real Korean is mostly Hangul.
                text = _strict(data, "gb18030", name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text[:100_000])
    if printable < 0.95 * min(len(text), 100_000):
        raise UnsupportedFile(f"{name} looks like a binary file, not text; upload the document itself.")
    return text


def _strict(data: bytes, encoding: str, name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CorruptFile(f"{name} is not valid {encoding} text ({exc.reason}).") from exc


def _hanja_ratio(text: str) -> float:
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    hangul = sum("\uac00" <= ch <= "\ud7a3" for ch in text)
    return han / max(1, han + hangul)


# ---------------------------------------------------------------- HTML and DOCX

_BLOCK_TAGS = ("p", "div", "li", "tr", "br", "section", "article", "pre", "blockquote", "table",
               "ul", "ol", "dd", "dt", "header", "footer", "main", "aside", "nav", "figcaption", "hr")


def _parse_html(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")  # bs4's UnicodeDammit detects the encoding
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    replace_html_tables(soup)
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            tag.replace_with(f"\n{'#' * level} {tag.get_text(' ', strip=True)}\n")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_after("\n")
    lines = (re.sub(r"[ \t\u00a0]+", " ", ln).strip() for ln in soup.get_text().split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _parse_docx(data: bytes, name: str) -> str:
    import docx
    from docx.table import Table

    if data.startswith(_OLE_MAGIC):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedFile(f"{name} is encrypted; remove the password in Word and upload again.")
        raise UnsupportedFile(f"{name} is an old Word 97-2003 file; save it as .docx and upload again.")
    try:
        document = docx.Document(io.BytesIO(data))
        parts: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):  # a blank line after it: the next paragraph is not a row
                rows = [[cell.text for cell in row.cells] for row in block.rows]
                one_column = max(map(len, rows), default=0) < 2  # a text box, not a table
                parts.extend(["\n".join(row[0] for row in rows if row) if one_column else markdown_table(rows), ""])
                continue
            text, style = block.text.strip(), (block.style.name if block.style is not None else "") or ""
            match = re.match(r"(?:Heading|标题)\s*(\d)", style)
            if text and (match or style == "Title"):
                text = "#" * (int(match.group(1)) if match else 1) + " " + text
            parts.append(text)
    except Exception as exc:  # python-docx raises zip, XML and key errors on damaged files
        raise CorruptFile(f"{name} could not be read as a Word document ({exc}); it may be damaged.") from exc
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).strip()
