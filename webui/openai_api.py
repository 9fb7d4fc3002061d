"""OpenAI-compatible routes: ``/v1/models``, ``/v1/chat/completions``, ``/v1/embeddings``.

The official ``openai`` client works unchanged against ``http://host:port/v1``. Model ids are the
served models' names (``engine.models``: ``--model NAME=…``, else the file or directory name);
``default`` means the first, and a request for a model not in memory loads it (least recently
used ones are unloaded to make room). Answers stream as server-sent
``chat.completion.chunk`` events ending with ``data: [DONE]``; the final chunk (and the
non-streamed response) carry our per-answer stats in a non-standard ``x_stats`` field.

Generation is the engine's synchronous generator, run in a worker thread that owns it; the
event loop only reads its items. A client that disconnects sets the cancel event, which stops
the device work within one decoding step (or closes the remote stream). Errors that happen
before the first token (busy queue, bad parameters) get their own HTTP status; later ones are
sent as an ``error`` event, since the status line has gone out already. Answers run under the
caller's quotas (``assist.quotas``): a refusal is a 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assist.quotas import metered
from engine.answer_stream import ToolCallDelta, answer_events, tool_schemas
from engine.errors import UnknownModel
from engine.model_spec import DEFAULT_ALIAS
from engine.stats import GenerationStats
from webui.adapters import http_headers_of, http_status_of, install_error_handlers, is_domain_error, sse_event
from webui.auth import current_owner
from webui.openai_schema import (
    ChatCompletionRequest,
    EmbeddingRequest,
    InvalidRequest,
    check_vision,
    chunk_body,
    completion_body,
    embedding_body,
    engine_messages,
    error_response,
    invalid,
    new_id,
    sampling_params,
)
from webui.openai_tools import tool_plan
from webui.stream_pump import END, ClientGone, StreamPump

__all__ = ["build_openai_router", "include_openai_api", "MODEL_ALIAS"]

log = logging.getLogger(__name__)

MODEL_ALIAS = DEFAULT_ALIAS
MAX_EMBEDDING_INPUTS = 2048
def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _error_of(exc: Exception) -> Response:
    """Our refusals and domain errors as OpenAI error JSON; anything else is a bug and propagates."""
    if isinstance(exc, InvalidRequest):
        return error_response(exc.status, str(exc), param=exc.param, code=exc.code)
    if isinstance(exc, ClientGone):
        return Response(status_code=499)  # nobody is listening; nginx's "client closed request"
    if is_domain_error(exc):
        return error_response(http_status_of(exc), str(exc), code=_snake(type(exc).__name__),
                              headers=http_headers_of(exc))
    raise exc


def _delta(event) -> dict:
    """A stream event as an OpenAI chunk delta."""
    if isinstance(event, ToolCallDelta):
        call: dict = {"index": event.index, "function": {"arguments": event.arguments}}
        if event.id is not None:
            call.update(id=event.id, type="function")
            call["function"]["name"] = event.name
        return {"tool_calls": [call]}
    return {"reasoning_content" if event.kind == "reasoning" else "content": event.text}


async def _sse(pump: StreamPump, first, model: str, include_usage: bool):
    chunk_id, created = new_id(), int(time.time())
    try:
        yield sse_event(chunk_body(chunk_id, created, model, {"role": "assistant", "content": ""}))
        stats, item = GenerationStats(), first
        while item is not END:
            if isinstance(item, GenerationStats):
                stats = item
            else:
                yield sse_event(chunk_body(chunk_id, created, model, _delta(item)))
            item = await pump.next()
        yield sse_event(chunk_body(chunk_id, created, model, stats=stats))
        if include_usage:
            yield sse_event(chunk_body(chunk_id, created, model, stats=stats, usage_only=True))
    except Exception as exc:  # the status line is sent already: report the error in the stream
        if not is_domain_error(exc):
            log.exception("Unexpected error while streaming a chat completion")
        status = http_status_of(exc)
        yield sse_event({"error": {"message": str(exc) if is_domain_error(exc) else f"Internal error: {exc}",
                                "type": "server_error" if status >= 500 else "invalid_request_error",
                                "param": None, "code": _snake(type(exc).__name__)}})
    finally:
        pump.cancel.set()  # the client went away or the answer ended: free the model either way
    yield "data: [DONE]\n\n"


async def _collect(pump: StreamPump, first, model: str, request: Request) -> JSONResponse:
    parts = {"content": [], "reasoning": []}
    calls: list[dict] = []
    stats, item = GenerationStats(), first
    try:
        while item is not END:
            if isinstance(item, GenerationStats):
                stats = item
            elif isinstance(item, ToolCallDelta):
                if item.id is not None:
                    calls.append({"id": item.id, "type": "function", "function": {"name": item.name, "arguments": ""}})
                calls[item.index]["function"]["arguments"] += item.arguments
            else:
                parts[item.kind].append(item.text)
            item = await pump.next(request)
    finally:
        pump.cancel.set()
    return JSONResponse(completion_body(model, "".join(parts["content"]), stats, "".join(parts["reasoning"]), calls))


def _embedder_id(embedder) -> str:
    return Path(str(embedder.name)).name or str(embedder.name)


def _model_cards(services, created: int) -> list[dict]:
    cards = []
    for card in services.models.cards():
        entry = {"id": card.alias, "object": "model", "created": created, "owned_by": "dcu-chat",
                 "x_loaded": card.loaded, "x_default": card.default, "x_backend": card.backend,
                 "x_sees_images": card.sees_images}
        if card.info is not None:
            entry.update(context_length=card.info.context_length, x_device=card.info.device,
                         x_model=card.info.model)
        cards.append(entry)
    if services.embedder is not None:
        cards.append({"id": _embedder_id(services.embedder), "object": "model", "created": created,
                      "owned_by": "dcu-chat", "x_kind": "embedding"})
    return cards


def build_openai_router(services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
    created = int(time.time())

    def chat_model(requested: str) -> str:
        try:
            return services.models.resolve(requested)
        except UnknownModel as exc:
            embedding = services.embedder is not None and requested == _embedder_id(services.embedder)
            hint = " It is an embedding model: use it with /v1/embeddings." if embedding else ""
            raise InvalidRequest(f"{exc}{hint}", param="model", status=404, code="model_not_found") from exc

    @router.get("/models")
    def list_models() -> dict:
        return {"object": "list", "data": _model_cards(services, created)}

    @router.get("/models/{model_id:path}")
    def get_model(model_id: str):
        cards = _model_cards(services, created)
        try:
            wanted = services.models.resolve(model_id)
        except UnknownModel:
            wanted = model_id  # the embedding model, or nothing
        card = next((c for c in cards if c["id"] == wanted), None)
        if card is None:
            return error_response(404, str(UnknownModel(model_id, services.models.aliases)), param="model",
                                  code="model_not_found")
        return card

    @router.post("/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        try:
            model = chat_model(body.model)
            plan = tool_plan(body.tools, body.tool_choice, invalid)
            messages, params = engine_messages(body), sampling_params(body, plan)
            check_vision(messages, model, services.models.vision_models())
            models, quotas = services.models, services.quotas
            max_calls = 1 if body.parallel_tool_calls is False else None
            user = current_owner(request)  # the answer counts against the caller's quotas

            def events(cancel: threading.Event):
                with models.use(model) as engine:  # loaded on first use; kept until the answer ends
                    yield from answer_events(metered(quotas, user, engine.stream_chat(messages, params, cancel=cancel)),
                                             tool_schemas(plan.tools), engine.count_tokens, max_calls)

            pump = StreamPump(events)
            try:  # errors before the first token (busy, prompt too long) get their own status
                first = await pump.next(request)
            except BaseException:
                pump.cancel.set()
                raise
            if body.stream:
                include_usage = bool(body.stream_options and body.stream_options.include_usage)
                return StreamingResponse(_sse(pump, first, model, include_usage), media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            return await _collect(pump, first, model, request)
        except Exception as exc:
            return _error_of(exc)

    @router.post("/embeddings")
    async def embeddings(body: EmbeddingRequest):
        try:
            return await _embed(services.embedder, body)
        except Exception as exc:
            return _error_of(exc)

    return router


async def _embed(embedder, body: EmbeddingRequest) -> dict:
    if embedder is None:
        raise InvalidRequest("Embeddings are not available: this server runs without an embedding model "
                             "(document Q&A is disabled).", status=503, code="embeddings_unavailable")
    model = _embedder_id(embedder)
    if body.model not in (model, str(embedder.name), MODEL_ALIAS):
        raise InvalidRequest(f"The embedding model {body.model!r} does not exist. This server embeds with "
                             f"{model!r} (alias {MODEL_ALIAS!r}).", param="model", status=404, code="model_not_found")
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts or len(texts) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"input: send between 1 and {MAX_EMBEDDING_INPUTS} texts.", param="input")
    empty = next((i for i, text in enumerate(texts) if not text.strip()), None)
    if empty is not None:
        raise InvalidRequest(f"input[{empty}] is empty; every text must have some content.", param="input")
    if body.encoding_format not in ("float", "base64"):
        raise InvalidRequest("encoding_format must be 'float' or 'base64'.", param="encoding_format")

    def work():
        return embedder.embed(texts), sum(embedder.count_tokens(text) for text in texts)

    vectors, tokens = await run_in_threadpool(work)
    if body.dimensions is not None and body.dimensions != vectors.shape[1]:
        raise InvalidRequest(f"dimensions: {model} has {vectors.shape[1]} dimensions and cannot shorten them.",
                             param="dimensions")
    return embedding_body(model, vectors, body.encoding_format, tokens)


def include_openai_api(app: FastAPI, services) -> None:
    """Add the ``/v1`` routes; invalid requests are answered 400 in OpenAI's error format
    (``webui.adapters.install_error_handlers``)."""
    app.include_router(build_openai_router(services))
    install_error_handlers(app)
