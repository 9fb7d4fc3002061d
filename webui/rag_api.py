"""REST routes for document Q&A: collections, documents, search and ask (contract in ARCHITECTURE.md).

    GET    /api/collections                       {"collections": [{"name", "documents", "owner", "access"}]}
    POST   /api/collections            {"name"}   201 {"name", "documents": 0, "owner", "access": "owner"}
    DELETE /api/collections/{c}                   {"deleted": c}
    GET    /api/collections/{c}/sharing           {"all", "all_mode", "users": [{"user", "mode"}]}
    PUT    /api/collections/{c}/sharing {"users": [...], "all": bool, "mode": "read|write"}  the same
    GET    /api/collections/{c}/documents         {"documents": [...], "errors": []}
    POST   /api/collections/{c}/documents         multipart ``files`` -> {"documents": [...], "errors": [...]}
           ``?background=true``: 202 {"job": id} at once; poll GET /api/jobs/{id} (webui/jobs_api.py)
    DELETE /api/collections/{c}/documents/{id}    {"deleted": id}
    POST   /api/collections/{c}/search {"query", "top_k"}  {"hits": [{"document_id", "source", "page", "text", "score"}]}
    POST   /api/collections/{c}/ask {"question", "top_k", "stream", "strict", "max_tokens", "temperature", "history"}
           -> {"answer", "hits", "stats", "not_found"}, or with ``stream`` server-sent events:
           {"type": "hits", "hits"}, {"type": "delta", "text"}..., {"type": "done", "stats", "not_found"}
           (or {"type": "error", "error": {"message", "type"}} if the model fails mid-answer).

Ownership (``assist.collections``): each caller sees their own collections (``{c}`` is the
name) and those shared with them (``{c}`` is ``owner:name``); every user has their own
``default``. Another user's private collection answers 404 exactly like a missing one; writing
to one shared read-only, or deleting/sharing one you do not own, answers 403.

A file that cannot be used is reported in ``errors`` with a sentence saying why, and the others
still go in. Request-level limits answer 413: more files than ``max_files_per_upload``, or more
bytes in one request than ``_REQUEST_FILES`` files of the maximum size. Errors are JSON
``{"error": {"message", "type"}}`` with the exception's ``http_status``. Parsing, embedding,
search and generation run in worker threads, so the server keeps serving meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from assist.answers import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    InvalidQuestion,
    answer_stream,
    ask,
    default_params,
)
from engine.stats import GenerationStats
from rag.errors import EmptyFile, FileTooLarge, TooManyFiles
from rag.parsing import sanitize_name
from rag.store import AddResult, FileError
from webui.adapters import domain_error_types, error_body, install_error_handlers, sse_event
from webui.auth import current_owner

__all__ = ["build_rag_router", "include_rag_api", "API_MAX_TOKENS"]

API_MAX_TOKENS = DEFAULT_MAX_TOKENS
_REQUEST_FILES = 4  # one request may carry at most this many maximum-size files in total
_READ_CHUNK = 1024 * 1024
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers on top of the files' bytes


class NewCollection(BaseModel):
    name: str


class SharingBody(BaseModel):
    users: list[str] = Field(default_factory=list, max_length=1000)
    all: bool = False
    mode: Literal["read", "write"] = "read"


class SearchBody(BaseModel):
    query: str
    top_k: int | None = Field(default=None, ge=1, le=100)


class Message(BaseModel):
    role: str
    content: str


class AskBody(BaseModel):
    question: str
    top_k: int | None = Field(default=None, ge=1, le=100)
    stream: bool = False
    strict: bool | None = None
    max_tokens: int = Field(default=API_MAX_TOKENS, ge=1, le=8192)
    temperature: float = Field(default=DEFAULT_TEMPERATURE, ge=0.0, le=2.0)
    history: list[Message] | None = None
    model: str | None = None  # one of /v1/models (default: the first)


def _mb(size: int) -> str:
    return f"{size / 1024**2:.0f} MB" if size >= 1024**2 else f"{size} bytes"


async def _read_upload(upload, limit: int) -> bytes | FileError:
    """The file's bytes, or a per-file error once it passes ``limit`` (without reading the rest)."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            name = sanitize_name(upload.filename or "")
            return FileError(name, str(FileTooLarge(f"{name} is larger than the {_mb(limit)} limit; "
                                                    "split it or compress its images, then upload again.")))
        parts.append(chunk)
    return b"".join(parts)


def _summary(grant, user: str, documents: int) -> dict:
    return {"name": grant.label(user), "documents": documents, "owner": grant.owner, "access": grant.mode}


def build_rag_router(services) -> APIRouter:
    store = services.store
    collections = services.collections  # every route goes through the ownership checks
    config = services.rag_config or store.config
    router = APIRouter(prefix="/api/collections", tags=["documents"])

    def user_of(request: Request) -> str:
        return current_owner(request)

    @router.get("")
    def list_collections(request: Request) -> dict:
        user = user_of(request)
        return {"collections": [_summary(grant, user, n) for grant, n in collections.list(user)]}

    @router.post("", status_code=201)
    def create_collection(body: NewCollection, request: Request) -> dict:
        user = user_of(request)
        return _summary(collections.create(user, body.name.strip()), user, 0)

    @router.delete("/{collection}")
    def delete_collection(collection: str, request: Request) -> dict:
        collections.delete(user_of(request), collection)
        return {"deleted": collection}

    @router.get("/{collection}/sharing")
    def get_sharing(collection: str, request: Request) -> dict:
        return collections.sharing(user_of(request), collection).to_dict()

    @router.put("/{collection}/sharing")
    def put_sharing(collection: str, body: SharingBody, request: Request) -> dict:
        return collections.share(user_of(request), collection, body.users, body.all, body.mode).to_dict()

    @router.get("/{collection}/documents")
    def list_documents(collection: str, request: Request) -> dict:
        return {"documents": [d.to_dict() for d in collections.documents(user_of(request), collection)],
                "errors": []}

    @router.post("/{collection}/documents", response_model=None)
    async def upload(collection: str, request: Request, background: bool = False) -> dict | JSONResponse:
        user = user_of(request)
        # 404 (or 403 when shared read-only) before reading any bytes
        storage = (await run_in_threadpool(collections.resolve, user, collection, "write")).storage
        per_file = config.max_file_bytes
        total_limit = per_file * _REQUEST_FILES
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > total_limit + _FORM_OVERHEAD:
            raise FileTooLarge(f"This upload is {_mb(int(length))}; one request may carry at most "
                               f"{_mb(total_limit)}. Upload the files in smaller groups.")
        form = await request.form()
        try:
            uploads = [f for f in form.getlist("files") if hasattr(f, "read")]
            if not uploads:
                raise EmptyFile("No files were sent: attach one or more files as the multipart field 'files'.")
            if len(uploads) > config.max_files_per_upload:
                raise TooManyFiles(f"{len(uploads)} files were sent at once; the limit is "
                                   f"{config.max_files_per_upload}. Upload them in smaller groups.")
            items, early_errors, total = [], [], 0
            for upload_file in uploads:
                data = await _read_upload(upload_file, per_file)
                if isinstance(data, FileError):
                    early_errors.append(data)
                    continue
                total += len(data)
                if total > total_limit:
                    raise FileTooLarge(f"The files in this upload add up to more than {_mb(total_limit)}. "
                                       "Upload them in smaller groups.")
                items.append((upload_file.filename or "document", data))
        finally:
            await form.close()
        if background and services.jobs is not None:
            job = await run_in_threadpool(services.jobs.submit, user, storage, items, early_errors)
            return JSONResponse({"job": job.id}, status_code=202)
        result = await run_in_threadpool(collections.add_files, user, collection, items) if items else AddResult()
        return AddResult(result.documents, [*result.errors, *early_errors]).to_dict()

    @router.delete("/{collection}/documents/{document_id}")
    def delete_document(collection: str, document_id: str, request: Request) -> dict:
        collections.delete_document(user_of(request), collection, document_id)
        return {"deleted": document_id}

    @router.post("/{collection}/search")
    def search(collection: str, body: SearchBody, request: Request) -> dict:
        if not body.query.strip():
            raise InvalidQuestion("The search query is empty: send a non-empty \"query\".")
        hits = collections.search(user_of(request), collection, body.query, top_k=body.top_k or config.top_k)
        return {"hits": [h.to_dict() for h in hits]}

    @router.post("/{collection}/ask")
    async def ask_route(collection: str, body: AskBody, request: Request):
        user = user_of(request)
        storage = (await run_in_threadpool(collections.resolve, user, collection)).storage
        params = default_params(body.max_tokens, body.temperature)
        history = [m.model_dump() for m in body.history or []]
        if not body.stream:
            result = await run_in_threadpool(ask, services, storage, body.question, body.top_k,
                                             body.strict, history, params=params, user=user, model=body.model)
            return result.to_dict()
        cancel = threading.Event()
        stream = answer_stream(services, storage, body.question, body.top_k, body.strict, history, cancel,
                               params=params, user=user, model=body.model)
        # The search runs before the response starts, so an unknown collection is still a 404.
        first = await run_in_threadpool(next, stream)
        return StreamingResponse(_sse(first, stream, cancel), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router



def _events(first, stream: Iterator) -> Iterator[str]:
    yield sse_event({"type": "hits", "hits": [h.to_dict() for h in first[1]]})
    try:
        for item in stream:
            if isinstance(item, GenerationStats):
                yield sse_event({"type": "done", "stats": item.to_dict(),
                              "not_found": bool(item.extra.get("not_found"))})
            else:
                yield sse_event({"type": "delta", "text": item})
    except domain_error_types() as exc:  # the status line is sent already: report it in the stream
        yield sse_event({"type": "error", "error": error_body(exc)["error"]})


async def _sse(first, stream: Iterator, cancel: threading.Event):
    try:
        async for chunk in iterate_in_threadpool(_events(first, stream)):
            yield chunk
    finally:
        cancel.set()  # the client went away or the answer ended: free the model either way


def include_rag_api(app: FastAPI, services) -> None:
    """Add the document routes to ``app``, with domain errors answered as JSON."""
    app.include_router(build_rag_router(services))

    install_error_handlers(app)
