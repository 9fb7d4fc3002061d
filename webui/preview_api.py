"""Routes that show a cited page (``assist.previews``), under the same sign-in and ownership rules
as every collection route: another user's private collection or document answers 404.

    GET /api/collections/{c}/documents/{id}/pages/{n}.png?chunk=<chunk id>
        the page as a PNG about 1000 px wide, the passage ``chunk`` (a hit's ``chunk_id``) marked in
        yellow; PDFs (text or scanned) and images. ``X-Passage-Band: top,bottom`` (fractions of the
        height) says where the passage is. 404 for a text file (no page images), a page the
        document does not have, or a passage not on that page.
    GET /api/collections/{c}/documents/{id}/text?page=<n>&chunk=<chunk id>
        {"document_id", "name", "format", "page", "pages", "text", "passage": {"start", "end"} | null}:
        the page's text (a file without pages is one page; ``page`` may be left out when ``chunk``
        names the passage) and the passage's offsets in it, in characters.
    GET /api/sessions/{session}/files/{file id}/text?page=<n>&chunk=<chunk id>
        the same for a file attached in one of the caller's conversations (Chat keeps the text of
        attached files, not their bytes: no page image); ``chunk`` is a passage of the
        conversation's file index, when the answer read passages rather than whole pages.

The PNG carries ``Cache-Control: private``: a shared proxy must not keep one user's page.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from assist.previews import ChatFilePreviews, DocumentPreviews
from rag.page_image import passage_band
from webui.auth import current_owner

__all__ = ["build_preview_router", "include_preview_api"]


def build_preview_router(services) -> APIRouter:
    from rag.ocr import OcrOptions

    config = services.rag_config or services.store.config
    ocr = OcrOptions(config.ocr_langs, config.ocr_dpi) if config.ocr_langs else None
    previews = DocumentPreviews(services.collections, ocr)
    router = APIRouter(tags=["documents"])

    # Plain ``def``: rendering and OCR run in Starlette's worker threads, the server keeps serving.
    @router.get("/api/collections/{collection}/documents/{document_id}/pages/{page}.png", response_class=Response,
                responses={200: {"content": {"image/png": {}}}})
    def page_image(collection: str, document_id: str, page: int, request: Request,
                   chunk: int | None = Query(default=None, ge=0)) -> Response:  # noqa: B008
        png = previews.page_image(current_owner(request), collection, document_id, page, chunk)
        headers = {"Cache-Control": "private, max-age=3600"}
        band = passage_band(png)
        if band is not None:  # where the passage is, so the preview panel can scroll to it
            headers["X-Passage-Band"] = f"{band[0]:.4f},{band[1]:.4f}"
        return Response(png, media_type="image/png", headers=headers)

    @router.get("/api/collections/{collection}/documents/{document_id}/text")
    def page_text(collection: str, document_id: str, request: Request,
                  page: int | None = Query(default=None, ge=1),  # noqa: B008
                  chunk: int | None = Query(default=None, ge=0)) -> dict:  # noqa: B008
        return previews.page_text(current_owner(request), collection, document_id, page, chunk).to_dict()

    if services.sessions is not None:  # files in Chat messages live in saved conversations
        attachments = getattr(services, "attachments", None)
        files = ChatFilePreviews(services.sessions, getattr(attachments, "index", None))

        @router.get("/api/sessions/{session_id}/files/{file_id}/text")
        def file_text(session_id: str, file_id: str, request: Request,
                      page: int | None = Query(default=None, ge=1),  # noqa: B008
                      chunk: int | None = Query(default=None, ge=0)) -> dict:  # noqa: B008
            return files.page_text(current_owner(request), session_id, file_id, page, chunk).to_dict()

    return router


def include_preview_api(app: FastAPI, services) -> None:
    app.include_router(build_preview_router(services))
