"""What an upload becomes before it is written: a file read, chunked, embedded and tokenized
(``Prepared``), or the reason it could not be (``FileError``); and the per-file outcome of an
upload (``AddResult``). Nothing here takes a lock or touches a collection: ``rag.store`` does
this work outside the collection lock and then writes the results under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rag.chunking import chunk_document
from rag.config import RagConfig
from rag.embedding import Embedder, Progress
from rag.errors import EmptyFile
from rag.metadata import DocumentInfo, NewDocument
from rag.ocr import OcrOptions
from rag.parsing import ParsedDocument, parse_document, sanitize_name
from rag.tokenizer import tokenize

__all__ = ["AddResult", "FileError", "Prepared", "prepare_file", "prepare_parsed"]

# The share of a file's progress bar that reading takes (with OCR the slow part); embedding most of the rest.
_READING = 0.3
_EMBEDDING = 0.65


@dataclass(frozen=True)
class FileError:
    name: str
    error: str

    def to_dict(self) -> dict:
        return {"name": self.name, "error": self.error}


@dataclass(frozen=True)
class AddResult:
    """One entry per uploaded file: in ``documents`` (new or already present) or in ``errors``."""

    documents: list[DocumentInfo] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"documents": [d.to_dict() for d in self.documents], "errors": [e.to_dict() for e in self.errors]}


@dataclass
class Prepared:
    """A file parsed, chunked and embedded, not yet written (its name is ``doc.name``)."""

    doc: NewDocument
    vectors: np.ndarray
    tokens: list[list[str]]
    original: bytes | None = None  # kept for previews (rag.document_files)


def prepare_file(filename: str, data: bytes, sha: str, config: RagConfig, embedder: Embedder,
                 report: Progress) -> Prepared:
    """An uploaded file read (OCR where configured) and prepared; ``RagError`` when it cannot be."""
    report(0.0, f"Parsing {sanitize_name(filename)}")
    ocr = OcrOptions(config.ocr_langs, config.ocr_dpi) if config.ocr_langs else None
    parsed = parse_document(data, filename, max_bytes=config.max_file_bytes, max_pages=config.max_pages,
                            ocr=ocr, progress=lambda f, m: report(_READING * f, m))
    return prepare_parsed(parsed, sha, config, embedder, report, original=data)


def prepare_parsed(parsed: ParsedDocument, sha: str, config: RagConfig, embedder: Embedder, report: Progress,
                   original: bytes | None = None) -> Prepared:
    """A parsed document chunked, embedded and tokenized; its id is the first 16 characters of ``sha``."""
    limit = min(config.chunk_tokens, embedder.max_tokens)
    chunks = chunk_document(parsed, sha[:16], embedder.count_tokens, limit,
                            min(config.chunk_overlap, limit // 2), titles=config.chunk_titles)
    if not chunks:
        raise EmptyFile(f"{parsed.name} contains no text.")
    report(_READING, f"Embedding {parsed.name} ({len(chunks)} chunks)")
    texts = [c.text for c in chunks]
    vectors = embedder.embed(texts, batch_size=config.embed_batch_size,
                             progress=lambda f, m: report(_READING + _EMBEDDING * f, f"{parsed.name}: {m}"))
    doc = NewDocument(sha[:16], parsed.name, sha, parsed.format, parsed.page_count,
                      [(c.page, c.char_start, c.char_end, c.text) for c in chunks])
    return Prepared(doc, vectors, [tokenize(t) for t in texts], original)
