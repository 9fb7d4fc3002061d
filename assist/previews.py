"""Previews of cited pages as one user may see them: the collection is resolved through
``assist.collections`` (someone else's private collection reads as missing: 404), then
``rag.preview`` draws the page or gives its text.

Files attached to a Chat message keep their text, not their bytes (``assist.attachments``), so a
Chat citation shows the cited page's text: ``ChatFilePreviews`` finds the file in the caller's own
conversation (anyone else's reads as missing) and, when the answer read passages of it from the
conversation's index, the passage's offsets on that page.
"""

from __future__ import annotations

from assist.attachments import PAGE_BREAK, collection_name
from assist.collections import UserCollections
from assist.errors import NoSuchCollection
from rag.errors import CollectionNotFound, DocumentNotFound, PageNotFound
from rag.ocr import OcrOptions
from rag.parsing import PAGED_FORMATS
from rag.preview import PageText, page_png, page_text

__all__ = ["DocumentPreviews", "ChatFilePreviews"]


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


class ChatFilePreviews:
    """The text of a page of a file attached in one of ``user``'s conversations."""

    def __init__(self, sessions, index=None) -> None:
        self.sessions = sessions  # assist.sessions.SessionStore: get() answers SessionNotFound for others
        self.index = index  # the DocumentStore of the conversations' file indexes (passages' offsets)

    def page_text(self, user: str, session_id: str, file_id: str, page: int | None = None,
                  chunk_id: int | None = None) -> PageText:
        session = self.sessions.get(session_id, user)
        files = [a for m in session.tree or session.messages for a in m.get("attachments") or []]
        attachment = next((a for a in files if a.get("id") == file_id), None)
        if attachment is None:
            raise DocumentNotFound(f"There is no file {file_id!r} in this conversation.")
        name, pages = str(attachment.get("name") or "file"), attachment.get("pages")
        texts = str(attachment.get("text") or "").split(PAGE_BREAK)
        paged = attachment.get("format") in PAGED_FORMATS and pages is not None
        number = page if paged else None
        if paged and (page is None or not 1 <= page <= len(texts)):
            raise PageNotFound(f"{name} has {len(texts)} page(s); there is no page {page}.")
        text = texts[page - 1] if paged else texts[0]
        return PageText(file_id, name, str(attachment.get("format") or "txt"), number, pages, text,
                        self._passage(session_id, file_id, number, chunk_id, text))

    def _passage(self, session_id: str, file_id: str, page: int | None, chunk_id: int | None,
                 text: str) -> tuple[int, int] | None:
        if chunk_id is None or self.index is None:
            return None
        try:
            source = self.index.page_source(collection_name(session_id), file_id, page, chunk_id)
        except (CollectionNotFound, DocumentNotFound, PageNotFound):
            return None  # indexed no more (the conversation's index is rebuilt on the next question)
        passage = source.passage
        return (passage[0], passage[1]) if passage and text[passage[0]:passage[1]] == passage[2] else None
