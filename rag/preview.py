"""Previews of a cited page: the page as an image with the passage marked, or its text with the
passage's offsets.

``rag.store.DocumentStore.page_source`` gathers what one page needs (a ``PageSource``: the
document, the page's chunks, the original file if it was kept); ``page_png`` and ``page_text``
turn it into bytes or text. Rendered pages are cached under the collection
(``rag.document_files``), keyed by page, width and the passage, so a second click costs a file
read. OCR'd word boxes of a scanned page are cached too: marking another passage of the same
page needs no second OCR.

The text of a file without pages is read again from its original (cheap for text, Markdown,
HTML and Word); a PDF page's text (and any page whose original was not kept) is put back
together from its chunks, which are slices of the page's text at known offsets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rag.document_files import cache_path, write_atomic
from rag.errors import NoPageImage, RagError
from rag.ocr import OcrOptions
from rag.parsing import PAGED_FORMATS

__all__ = ["PageSource", "PageText", "page_png", "page_text"]

ChunkRow = tuple[int, "int | None", int, int, str]  # id, page, char_start, char_end, text


@dataclass(frozen=True)
class PageSource:
    document_id: str
    name: str
    format: str
    pages: int | None
    page: int | None  # None: a file without pages (one "page")
    original: Path | None  # the uploaded bytes, when they were kept
    directory: Path  # the collection's folder (for the cache)
    chunks: list[ChunkRow]
    chunk_id: int | None = None  # the cited passage, when one was asked for

    @property
    def passage(self) -> tuple[int, int, str] | None:
        """``(char_start, char_end, text)`` of the cited chunk on its page, without its heading prefix."""
        for chunk_id, _, start, end, text in self.chunks:
            if chunk_id == self.chunk_id:
                return start, end, text[len(text) - (end - start):] if len(text) >= end - start else text
        return None


@dataclass(frozen=True)
class PageText:
    document_id: str
    name: str
    format: str
    page: int | None
    pages: int | None
    text: str
    passage: tuple[int, int] | None  # offsets of the cited passage in ``text``

    def to_dict(self) -> dict:
        start, end = self.passage or (None, None)
        return {"document_id": self.document_id, "name": self.name, "format": self.format, "page": self.page,
                "pages": self.pages, "text": self.text,
                "passage": None if self.passage is None else {"start": start, "end": end}}


def page_png(source: PageSource, ocr: OcrOptions | None = None, width: int | None = None) -> bytes:
    """The page as PNG bytes, the cited passage (if any) marked; cached on disk."""
    from rag.page_image import WIDTH, render_page

    width = width or WIDTH
    if source.format not in PAGED_FORMATS:
        raise NoPageImage(f"{source.name} is a text file without page images; open its text instead.")
    if source.original is None:
        raise NoPageImage(f"The original file of {source.name} was not kept (it was added before page previews "
                          "existed); upload it again to see its pages.")
    passage = source.passage
    marked = hashlib.sha256(passage[2].encode()).hexdigest()[:16] if passage else "plain"
    key = cache_path(source.directory, source.document_id, f"p{source.page}-w{width}-{marked}.png")
    if key.is_file():
        return key.read_bytes()
    png = render_page(source.original.read_bytes(), source.format, source.page, passage[2] if passage else None,
                      ocr, width, _words_cache(source))
    write_atomic(key, png)
    return png


def _words_cache(source: PageSource):
    path = cache_path(source.directory, source.document_id, f"p{source.page}-words.json")

    def get(compute):
        if path.is_file():
            return [(w, tuple(box)) for w, box in json.loads(path.read_text(encoding="utf-8"))]
        words = compute()
        write_atomic(path, json.dumps(words, ensure_ascii=False).encode())
        return words

    return get


def page_text(source: PageSource) -> PageText:
    """The page's text and the cited passage's offsets in it."""
    passage = source.passage
    text = None
    if source.format not in PAGED_FORMATS and source.original is not None:
        text = _reparsed(source)
        if text is not None and passage and text[passage[0]:passage[1]] != passage[2]:
            text = None  # read differently than when indexed (another parser version): use the chunks
    if text is None:
        text = _from_chunks(source.chunks)
    return PageText(source.document_id, source.name, source.format, source.page, source.pages, text,
                    (passage[0], passage[1]) if passage else None)


def _reparsed(source: PageSource) -> str | None:
    from rag.parsing import parse_document

    try:
        return parse_document(source.original.read_bytes(), source.name, ocr=None).pages[0].text
    except (RagError, OSError):
        return None


def _from_chunks(chunks: list[ChunkRow]) -> str:
    """A page's text from its chunks, each at its offsets; what no chunk holds (blank space between
    sentences) becomes spaces, so the offsets stay true."""
    end = max((row[3] for row in chunks), default=0)
    buffer = [" "] * end
    for _, _, start, stop, text in chunks:
        body = text[len(text) - (stop - start):] if len(text) >= stop - start else text
        buffer[start:start + len(body)] = body
    return "".join(buffer).rstrip()
