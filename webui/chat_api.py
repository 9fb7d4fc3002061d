"""``POST /api/chat`` (the tool loop server-side) and ``GET /api/tools`` (what there is to enable).

    GET  /api/tools -> {"tools": [{"name": "time.get_current_time", "server", "tool", "description",
                                   "parameters", "trusted"}],
                        "servers": [{"name", "transport", "trusted", "state", "error", "tools"}]}
    POST /api/chat {"messages": [{"role", "content", "attachments"?: [{"name", "data": base64}],
                                  "images"?: ["data:image/png;base64,…"]}],
                    "tools": ["time" | "time.get_current_time", …],
                    "session_id"?, "model"?, "stream"?, "max_tokens"?, "temperature"?, "top_p"?, "top_k"?,
                    "repetition_penalty"?, "seed"?}
      -> {"message": {"role": "assistant", "content"}, "tool_calls": [{"name", "arguments", "result", "status"}],
          "stats": {…, "finish_reason", "tool_steps"}, "session_id"?, "sources"?: [{"n", "name", "page"}]}
      or, with "stream": true, server-sent events {"type": "tool_call" | "tool_result" | "delta" | "done", …}

The same loop as the Chat tab (``assist.tools.loop``), without an approval step: the caller chose
the tools. ``session_id`` names one of the caller's saved conversations: its history comes before
``messages``, and the new turn (with the calls and their results) is saved to it. Listing tools
starts the MCP servers that are not running; one that cannot start is reported in ``servers``
(``GET /api/tools``) or, when a request names it, answered 503 with the reason.

Files go with the last user message as in Chat (``assist.attachments``): read by rag's parsers (a
file that cannot be read answers 400 saying why), put in the prompt whole or as the passages that
answer, saved with the message; ``sources`` lists the files and pages the answer cites (its
``[n]`` checked against what it quotes). Files saved earlier in the conversation are read too.
Images (data: URLs, as on /v1) go with the last user message too, for a model that can see
(``engine.images``); one that reads text only answers 400 saying so.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from assist.attachments import AttachedPrompt, AttachmentError, ChatAttachments, has_attachments
from assist.quotas import metered
from assist.tools.errors import UnknownTool
from assist.tools.loop import LoopDone, TextDelta, ToolCallEvent, ToolResultEvent, run_tool_loop
from assist.tools.naming import ToolSet
from assist.tools.registry import ToolRegistry
from assist.tools.transcript import Transcript, engine_messages, readable
from engine.config import SamplingParams
from engine.errors import ConfigError
from engine.images import MAX_IMAGES, check_images
from webui.adapters import error_body, http_status_of, install_error_handlers, is_domain_error, sse_event
from webui.auth import current_owner
from webui.services import Services
from webui.stream_pump import ClientGone, StreamPump

__all__ = ["ApiChatBody", "include_chat_api"]

class ApiFile(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    data: str = Field(max_length=12_000_000)  # base64; the request body limit (--max-request-bytes) comes first


class ApiMessage(BaseModel):
    role: str = Field(max_length=20)
    content: str = Field(max_length=2_000_000)
    attachments: list[ApiFile] = Field(default_factory=list, max_length=20)
    images: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)  # data: URLs (engine.images)


class ApiChatBody(BaseModel):
    messages: list[ApiMessage] = Field(min_length=1, max_length=1000)
    tools: list[str] = Field(default_factory=list, max_length=100)
    session_id: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    stream: bool = False
    # Sampling: the Chat tab's defaults, so an answer here is the answer there.
    max_tokens: int = Field(default=512, ge=1, le=32768)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    top_k: int = Field(default=50, ge=0, le=1000)
    repetition_penalty: float = Field(default=1.1, ge=0.5, le=2.0)
    seed: int | None = None


def _turn(body: ApiChatBody) -> tuple[str, list[dict]]:
    """(system prompt, the new messages) of a request; roles are system, user and assistant."""
    system, turn = [], []
    for i, message in enumerate(body.messages):
        if message.role not in ("system", "user", "assistant"):
            raise ConfigError(f"messages[{i}]: role {message.role!r} is not supported here; use system, user "
                              "or assistant (tool calls are made by the server).")
        (system if message.role == "system" else turn).append({"role": message.role, "content": message.content})
        if (message.attachments or message.images) and (message.role != "user" or i != len(body.messages) - 1):
            raise ConfigError(f"messages[{i}]: files and images go with the last message, from the user.")
        if message.images:
            turn[-1]["images"] = check_images(message.images, i)
    if not turn or turn[-1]["role"] != "user":
        raise ConfigError("messages: the last message must come from the user.")
    return "\n\n".join(m["content"] for m in system), turn


def _call_event(event) -> dict:
    if isinstance(event, ToolCallEvent):
        return {"type": "tool_call", "id": event.id, "name": event.name, "arguments": event.arguments}
    if isinstance(event, ToolResultEvent):
        return {"type": "tool_result", "id": event.id, "name": event.name, "result": event.result,
                "status": event.status}
    return {"type": "delta", event.kind: event.text}


def _done_body(done: LoopDone, session_id: str | None) -> dict:
    stats = done.stats.to_dict()
    stats.update(finish_reason=done.finish_reason, tool_steps=done.steps)
    body = {"message": {"role": "assistant", "content": done.content}, "tool_calls": [c.to_dict() for c in done.calls],
            "stats": stats}
    if done.reasoning:
        body["message"]["reasoning_content"] = done.reasoning
    if session_id:
        body["session_id"] = session_id
    return body


def _read_files(services: Services, files: list[ApiFile]) -> list[dict]:
    """The files of a request read as in Chat; the first that cannot be read answers 400 saying why."""
    if services.attachments is None:
        raise ConfigError("Files in messages are not enabled on this server.")
    raw = []
    for n, item in enumerate(files):
        try:
            raw.append((item.name, base64.b64decode(item.data, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"attachments[{n}] ({item.name}): \"data\" must be the file in base64.") from exc
    read, errors = services.attachments.read(raw)
    if errors:
        raise AttachmentError(errors[0])
    return read


def include_chat_api(app: FastAPI, services: Services) -> None:
    router = APIRouter(tags=["tools"])
    registry = services.tools

    @router.get("/api/tools")
    def list_tools() -> dict:  # a plain def: listing may start servers (worker thread)
        if registry is None:
            return {"tools": [], "servers": []}
        catalog = registry.catalog()
        return {"tools": [t.to_dict() for t in catalog.tools], "servers": registry.status()}

    @router.post("/api/chat")
    async def chat(body: ApiChatBody, request: Request) -> Response:
        owner = current_owner(request)
        system_prompt, turn = _turn(body)
        if body.tools and registry is None:
            raise UnknownTool("This server has no tools: no [[mcp_servers]] are configured and --sandbox is off.")
        selected = await run_in_threadpool(registry.select, body.tools) if body.tools else None
        tools = ToolSet(selected.tools if selected else [])
        earlier, stored_prompt = [], ""
        if body.session_id:
            if services.sessions is None:
                raise ConfigError("Saved conversations are not enabled on this server.")
            saved = services.sessions.get(body.session_id, owner)
            earlier, stored_prompt = saved.messages, saved.system_prompt
        files = body.messages[-1].attachments
        if files:
            turn[-1]["attachments"] = await run_in_threadpool(_read_files, services, files)
        history = [*earlier, *turn]
        params = SamplingParams(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                max_new_tokens=body.max_tokens, repetition_penalty=body.repetition_penalty,
                                seed=body.seed)
        models, quotas = services.models, services.quotas
        model = models.resolve(body.model)
        loop_registry = registry or ToolRegistry()  # without tools: a plain answer, the same events
        transcript = Transcript()
        attachments = services.attachments
        conversation = body.session_id or f"api-{uuid.uuid4().hex}"
        attached: list[AttachedPrompt] = []

        def events(cancel: threading.Event):
            with models.use(model) as engine:
                reading = readable(history, engine)
                if attachments is not None and has_attachments(history):
                    attached.append(attachments.prepare(engine, reading, params, conversation,
                                                        system_prompt or stored_prompt))
                    reading = attached[0].history
                messages = engine_messages(reading, system_prompt or stored_prompt, tools)
                for event in run_tool_loop(engine, messages, tools, loop_registry, params, cancel=cancel,
                                           session_id=body.session_id, meter=lambda s: metered(quotas, owner, s)):
                    transcript.feed(event)
                    yield event

        def save(done: LoopDone) -> dict:
            """Save the turn; -> what the answer's body adds (the sources its files gave)."""
            extra = {}
            if attached:  # the answer's numbers checked against what it quotes, its sources named
                checked, cited = ChatAttachments.cite(done.content, attached[0], turn[-1]["content"])
                extra["sources"] = [{"n": n, "name": hit.source, "page": hit.page} for n, hit in cited]
                answer = transcript.answer  # its text may start with a think block: only the end changes
                if checked != done.content and answer["content"].endswith(done.content):
                    answer["content"] = answer["content"][:len(answer["content"]) - len(done.content)] + checked
                done.content = checked
                if not body.session_id:
                    attachments.forget(conversation)  # a one-off question keeps no index
            if body.session_id and services.sessions is not None:
                transcript.answer["stats"] = done.stats.summary()
                services.sessions.replace_messages(body.session_id, owner, [*history, *transcript.messages],
                                                   system_prompt or None)
            return extra

        pump = StreamPump(events)
        try:
            first = await pump.next(request)
        except BaseException:
            pump.cancel.set()
            raise
        if body.stream:
            return StreamingResponse(_sse(pump, first, save, body.session_id), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            item = first
            while not isinstance(item, LoopDone):
                item = await pump.next(request)
        except ClientGone:
            return Response(status_code=499)
        finally:
            pump.cancel.set()
        extra = await run_in_threadpool(save, item)
        return JSONResponse({**_done_body(item, body.session_id), **extra})

    app.include_router(router)
    install_error_handlers(app)


async def _sse(pump: StreamPump, first, save, session_id: str | None):
    item = first
    try:
        while True:
            if isinstance(item, LoopDone):
                extra = await run_in_threadpool(save, item)
                yield sse_event({"type": "done", **_done_body(item, session_id), **extra})
                return
            if isinstance(item, TextDelta | ToolCallEvent | ToolResultEvent):
                yield sse_event(_call_event(item))
            item = await pump.next()
    except Exception as exc:  # the status line is sent: the error goes in the stream
        if not is_domain_error(exc):
            raise
        yield sse_event({"type": "error", "status": http_status_of(exc), **error_body(exc)})
    finally:
        pump.cancel.set()

