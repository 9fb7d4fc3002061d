"""The one web edge: what every tab and route shares between the core (engine, rag, assist) and the web.

Domain errors carry human messages; here, and only here, they become ``gr.Error`` in the UI
or HTTP status codes in the API. Also here: the browser-session key, the cancel registry behind
every Stop button, the stats line under an answer, and the server-sent-event framing.
"""

from __future__ import annotations

import json
import logging
import re
import threading

from assist.errors import AssistError
from engine.errors import EngineError
from engine.reasoning import ReasoningSplitter
from engine.stats import GenerationStats
from rag.errors import RagError
from webui.i18n import register, text
from webui.reading import inline_math

__all__ = ["domain_error_types", "is_domain_error", "http_status_of", "http_headers_of", "error_body",
           "error_response_for", "validation_message", "install_error_handlers", "ui_error", "session_key",
           "CancelRegistry", "stats_line", "sse_event", "display_history", "display_with_origins", "literal_html"]

log = logging.getLogger(__name__)

register(
    en={"stopped": "stopped", "trimmed": "{n} older messages were left out to fit the model's context",
        "thinking_title": "Thinking"},
    zh={"stopped": "已停止", "trimmed": "为适应模型上下文，省略了较早的 {n} 条消息", "thinking_title": "思考过程"},
)


def domain_error_types() -> tuple[type[Exception], ...]:
    return (EngineError, RagError, AssistError)


def is_domain_error(exc: BaseException) -> bool:
    return isinstance(exc, domain_error_types())


def http_status_of(exc: BaseException) -> int:
    return int(getattr(exc, "http_status", 500)) if is_domain_error(exc) else 500


def http_headers_of(exc: BaseException) -> dict[str, str] | None:
    """Extra response headers a domain error asks for: ``Retry-After`` for limits (429)."""
    retry_after = getattr(exc, "retry_after", None)
    return {"Retry-After": str(max(1, int(retry_after + 0.999)))} if retry_after is not None else None


def error_body(exc: BaseException) -> dict:
    """The JSON body of an error answer on /api (and the SSE error event)."""
    return {"error": {"message": str(exc), "type": type(exc).__name__}}


_KINDS = {400: "InvalidRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
          409: "Conflict", 413: "RequestTooLarge", 415: "UnsupportedMediaType", 422: "InvalidRequest",
          429: "TooManyRequests"}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def error_response_for(path: str, status: int, message: str, *, kind: str | None = None, code: str | None = None,
                       param: str | None = None, headers: dict | None = None):
    """Our error JSON for ``path``: OpenAI's shape under /v1, ``{"error": {"message", "type"}}`` elsewhere."""
    from fastapi.responses import JSONResponse

    from webui.openai_schema import error_response

    if path == "/v1" or path.startswith("/v1/"):
        return error_response(status, message, param=param, code=code or (_snake(kind) if kind else None),
                              headers=headers)
    kind = kind or _KINDS.get(status, "ServerError" if status >= 500 else "InvalidRequest")
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


def _param(loc) -> str | None:
    parts = [p for p in loc if p != "body"]
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return text or None


def validation_message(errors: list[dict]) -> str:
    """A sentence from pydantic's errors: where, and what is wrong (the first three)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "The request body is not valid JSON."
    text = "; ".join(f"{_param(e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in errors[:3])
    return text or "Invalid request."


def install_error_handlers(app) -> None:
    """Answer errors on ``app`` as our error JSON; idempotent (every router calls it).

    Domain errors get their ``http_status`` (and ``Retry-After`` when they carry one); invalid
    requests get 400 on /v1 (OpenAI's status) and 422 on /api; Starlette's own refusals (unknown
    route, wrong method, unparseable body) keep their status with our JSON on /v1 and /api.
    Anything else is a real 500 (a handler for plain Exception would be Starlette's server-error
    hook, which re-raises).
    """
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def domain_errors(request, exc: Exception):
        return error_response_for(request.url.path, http_status_of(exc), str(exc), kind=type(exc).__name__,
                                  headers=http_headers_of(exc))

    async def invalid_requests(request, exc: RequestValidationError):
        errors = list(exc.errors())
        v1 = request.url.path.startswith("/v1/")
        json_invalid = any(e.get("type") == "json_invalid" for e in errors)
        return error_response_for(request.url.path, 400 if v1 or json_invalid else 422, validation_message(errors),
                                  kind="InvalidRequest", code="invalid_json" if json_invalid else "invalid_request",
                                  param=_param(errors[0].get("loc", ())) if errors and not json_invalid else None)

    async def http_errors(request, exc: HTTPException):
        path = request.url.path
        if not any(path == p or path.startswith(p + "/") for p in ("/v1", "/api")):
            return await http_exception_handler(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else "The request cannot be served."
        if detail == "There was an error parsing the body":  # FastAPI's words for bytes that are not JSON
            detail = "The request body could not be parsed as JSON (check its encoding and nesting)."
        return error_response_for(path, exc.status_code, detail, headers=getattr(exc, "headers", None))

    for error_type in domain_error_types():
        app.add_exception_handler(error_type, domain_errors)
    app.add_exception_handler(RequestValidationError, invalid_requests)
    app.add_exception_handler(HTTPException, http_errors)


def ui_error(exc: BaseException):
    """The ``gr.Error`` to raise for ``exc``; unexpected errors are logged with their traceback."""
    import gradio as gr

    if is_domain_error(exc):
        return gr.Error(str(exc), print_exception=False)
    log.exception("Unexpected error in a UI handler", exc_info=exc)
    return gr.Error(f"Something went wrong: {exc}. The server is still running; please try again.")



# Code (fenced blocks, also one still streaming, and inline spans) is shown literally by the
# Markdown renderer already; everywhere else a "<" would start an HTML tag.
_CODE = re.compile(r"```[\s\S]*?(?:```|$)|~~~[\s\S]*?(?:~~~|$)|`[^`\n]*`")


def literal_html(text: str) -> str:
    """Markdown in which HTML written in a message shows as text: ``<`` outside code becomes ``&lt;``.

    Messages come from users, imported files and a model that may repeat what documents say, so
    ``<img src=x onerror=...>`` must read as those characters, not become an element (Gradio's
    sanitizer would only strip the handler). Markdown itself (bold, lists, code) still renders.
    """
    out, last = [], 0
    for match in _CODE.finditer(text):
        out.append(text[last:match.start()].replace("<", "&lt;"))
        out.append(match.group(0))
        last = match.end()
    out.append(text[last:].replace("<", "&lt;"))
    return "".join(out)


def display_history(history: list[dict], lang: str = "en", footers: dict[int, str] | None = None) -> list[dict]:
    """Chatbot value of a chat history: each answer with its stats line in small print under it.

    An answer that starts with a think block shows it first as a collapsible thought (Gradio's
    message ``metadata``: title, ``status`` pending while it streams, ``duration`` once known),
    then the answer itself. An answer's tool calls follow it as collapsible blocks, each with its
    result (``role: "tool"`` messages are shown there, not on their own). ``footers`` maps a
    history index to HTML put at the end of that message (the branch arrows of ``webui.chat_branches``).
    """
    return display_with_origins(history, lang, footers)[0]


def display_with_origins(history: list[dict], lang: str = "en",
                         footers: dict[int, str] | None = None) -> tuple[list[dict], list[int]]:
    """``display_history`` and, for each Chatbot message, the index of the history message it shows
    (a Chatbot event names the shown message; the handler needs the history's)."""
    from webui.tool_blocks import tool_blocks

    shown, origins, footers = [], [], footers or {}
    results = {m.get("tool_call_id"): m for m in history or [] if m["role"] == "tool"}
    for index, message in enumerate(history or []):
        if message["role"] == "tool":
            continue  # shown inside the block of the call it answers
        content = message["content"]
        if message["role"] == "assistant":
            splitter = ReasoningSplitter()
            splitter.feed(content)
            splitter.finish()
            if splitter.reasoning or splitter.closed:
                done = splitter.closed or bool(message.get("stats"))
                metadata = {"title": text("thinking_title", lang), "status": "done" if done else "pending"}
                if message.get("thinking_s") is not None:
                    metadata["duration"] = float(message["thinking_s"])
                shown.append({"role": "assistant", "content": literal_html(inline_math(splitter.reasoning.strip())),
                              "metadata": metadata})
                origins.append(index)
                content = splitter.content
        content = literal_html(inline_math(content) if message["role"] == "assistant" else content)
        if message["role"] == "user" and message.get("attachments"):  # its files as chips under the text
            from webui.chat_files import chips_html

            content = f"{content}\n\n{chips_html(message['attachments'], lang)}"
        if message["role"] == "user" and message.get("images"):  # its pictures as thumbnails under the text
            from webui.chat_images import thumbs_html

            content = f"{content}\n\n{thumbs_html(message['images'], lang)}"
        if message.get("stats"):
            content = f"{content}\n\n<sub>{message['stats']}</sub>"
        if footers.get(index):
            content = f"{content}\n\n{footers[index]}" if content else footers[index]
        calls = message.get("tool_calls")
        if content or (not calls and (message["role"] != "assistant" or not shown or "metadata" not in shown[-1])):
            shown.append({"role": message["role"], "content": content})
            origins.append(index)
        if calls:  # each call as a collapsible block with its result (webui.tool_blocks)
            blocks = tool_blocks(message, results, lang)
            shown.extend(blocks)
            origins.extend([index] * len(blocks))
    return shown, origins


def session_key(request) -> str:
    """The browser session (Gradio's session hash) a UI event comes from."""
    return getattr(request, "session_hash", None) or "anonymous"


class CancelRegistry:
    """One cancel event per key (a browser session in one tab), so Stop reaches the running answer.

    A new request under the same key replaces the old one: the old event is set, so a request
    left running (a closed stream, a double click) frees the model.
    """

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, key: str) -> threading.Event:
        with self._lock:
            previous = self._events.get(key)
            event = self._events[key] = threading.Event()
        if previous is not None:
            previous.set()
        return event

    def cancel(self, key: str) -> bool:
        with self._lock:
            event = self._events.get(key)
        if event is None:
            return False
        event.set()
        return True

    def finish(self, key: str, event: threading.Event) -> None:
        """Forget ``event`` once its request ended (unless a newer request took the key)."""
        with self._lock:
            if self._events.get(key) is event:
                del self._events[key]


def stats_line(stats: GenerationStats, lang: str) -> str:
    """The small print under an answer: speed, tokens, memory, and whether it was stopped or trimmed."""
    if stats.extra.get("not_found"):
        return ""  # answered without the model: there is nothing to measure
    line = stats.summary().replace(" · cancelled", "")
    if stats.finish_reason == "cancelled":
        line += f" · {text('stopped', lang)}"
    if stats.trimmed_messages:
        line += f" · {text('trimmed', lang, n=stats.trimmed_messages)}"
    return line


def sse_event(data: dict) -> str:
    """One server-sent event carrying ``data`` as JSON."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
