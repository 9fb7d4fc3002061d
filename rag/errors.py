"""Exceptions of the documents side, with messages written for the person at the screen.

Every class carries ``http_status`` so the web layer can map it to a response without a table
of its own; nothing inside ``rag`` knows about HTTP or Gradio.
"""

from __future__ import annotations

__all__ = [
    "RagError",
    "InvalidConfig",
    "UnsupportedFile",
    "EncryptedFile",
    "CorruptFile",
    "EmptyFile",
    "NoTextLayer",
    "FileTooLarge",
    "TooManyPages",
    "TooManyFiles",
    "CollectionNotFound",
    "CollectionExists",
    "DocumentNotFound",
    "PageNotFound",
    "NoPageImage",
    "InvalidName",
    "EmbedderUnavailable",
    "OcrUnavailable",
    "OcrFailed",
    "RerankerUnavailable",
]


class RagError(Exception):
    """Base class: ``str(err)`` is a complete sentence a user can act on."""

    http_status = 500


class InvalidConfig(RagError, ValueError):
    """A document-side option has a value that cannot work."""

    http_status = 400


class UnsupportedFile(RagError):
    """The file type is not one we can read, or the bytes are not what the name says."""

    http_status = 415


class EncryptedFile(RagError):
    """A password-protected PDF; we never guess passwords."""

    http_status = 400


class CorruptFile(RagError):
    """The file is damaged or truncated."""

    http_status = 400


class EmptyFile(RagError):
    """The file has no bytes, or only whitespace."""

    http_status = 400


class NoTextLayer(RagError):
    """A PDF with pages but no extractable text (typically a scan)."""

    http_status = 400


class FileTooLarge(RagError):
    """The file exceeds the configured size limit."""

    http_status = 413


class TooManyPages(RagError):
    """The PDF exceeds the configured page limit."""

    http_status = 413


class TooManyFiles(RagError):
    """One upload carries more files than allowed."""

    http_status = 413


class CollectionNotFound(RagError):
    http_status = 404


class CollectionExists(RagError):
    http_status = 409


class DocumentNotFound(RagError):
    http_status = 404


class PageNotFound(RagError):
    """A preview asked for a page the document does not have, or a passage not on that page."""

    http_status = 404


class NoPageImage(RagError):
    """A page image was asked of a document that has none (a text file) or whose original was not kept."""

    http_status = 404


class InvalidName(RagError, ValueError):
    """A collection name breaks the naming rule, or names a protected collection."""

    http_status = 400


class EmbedderUnavailable(RagError):
    """The embedding model could not be loaded; the message names the path and what to check."""

    http_status = 503


class OcrUnavailable(RagError):
    """Scanned pages or images need Tesseract (or language data) that is not installed; the
    message says which Debian packages to install."""

    http_status = 503


class OcrFailed(RagError):
    """Tesseract ran but could not read a page (crash, timeout)."""

    http_status = 422


class RerankerUnavailable(RagError):
    """The cross-encoder named by ``--reranker-model`` could not be loaded."""

    http_status = 503
