"""Previews of cited pages as one user may see them: the collection is resolved through
``assist.collections`` (someone else's private collection reads as missing: 404), then
``rag.preview`` draws the page or gives its text.
"""

from __future__ import annotations

from assist.collections import UserCollections
from assist.errors import NoSuchCollection
from rag.errors import CollectionNotFound
from rag.ocr import OcrOptions
from rag.preview import PageText, page_png, page_text

__all__ = ["DocumentPreviews"]


class DocumentPreviews:
    """``page_image`` and ``page_text`` of a document in a collection ``user`` may read."""

    def __init__(self, collections: UserCollections, ocr: OcrOptions | None = None) -> None:
        self.collections = collections
        self.ocr = ocr  # word boxes of scanned pages; None: scans are shown unmarked

    def page_image(self, user: str, ref: str, document_id: str, page: int, chunk_id: int | None = None) -> bytes:
        """PNG of ``page`` with the passage ``chunk_id`` (if given) marked."""
        return page_png(self._source(user, ref, document_id, page, chunk_id), self.ocr)

    def page_text(self, user: str, ref: str, document_id: str, page: int | None = None,
                  chunk_id: int | None = None) -> PageText:
        """The text of ``page`` (that of ``chunk_id`` when no page is given) and the passage's offsets."""
        return page_text(self._source(user, ref, document_id, page, chunk_id))

    def _source(self, user: str, ref: str, document_id: str, page: int | None, chunk_id: int | None):
        grant = self.collections.resolve(user, ref)
        try:
            return self.collections.store.page_source(grant.storage, document_id, page, chunk_id)
        except CollectionNotFound as exc:
            raise NoSuchCollection(f"There is no collection named {grant.label(user)!r}.") from exc
