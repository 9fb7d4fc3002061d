"""Adapters between the core (engine, rag, assist) and the web edge.

Domain errors carry human messages; here, and only here, they become ``gr.Error`` in the UI
or HTTP status codes in the API.
"""

from __future__ import annotations

import logging

from assist.errors import AssistError
from engine.errors import EngineError
from rag.errors import RagError

__all__ = ["domain_error_types", "is_domain_error", "http_status_of", "error_body", "install_error_handlers", "ui_error", "clean_messages", "display_history"]

log = logging.getLogger(__name__)


def domain_error_types() -> tuple[type[Exception], ...]:
    return (EngineError, RagError, AssistError)


def is_domain_error(exc: BaseException) -> bool:
    return isinstance(exc, domain_error_types())


def http_status_of(exc: BaseException) -> int:
    return int(getattr(exc, "http_status", 500)) if is_domain_error(exc) else 500


def error_body(exc: BaseException) -> dict:
    """The JSON body of an error answer on /api (and the SSE error event)."""
    return {"error": {"message": str(exc), "type": type(exc).__name__}}


def install_error_handlers(app) -> None:
    """Answer every domain error on ``app`` as JSON with its ``http_status``; idempotent.

    Only our own errors, whose messages are written for people; anything else is a real 500
    (a handler for plain Exception would be Starlette's server-error hook, which re-raises).
    """
    from fastapi.responses import JSONResponse

    async def domain_errors(request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=http_status_of(exc))

    for error_type in domain_error_types():
        app.add_exception_handler(error_type, domain_errors)


def ui_error(exc: BaseException):
    """The ``gr.Error`` to raise for ``exc``; unexpected errors are logged with their traceback."""
    import gradio as gr

    if is_domain_error(exc):
        return gr.Error(str(exc), print_exception=False)
    log.exception("Unexpected error in a UI handler", exc_info=exc)
    return gr.Error(f"Something went wrong: {exc}. The server is still running; please try again.")


def clean_messages(messages: list) -> list[dict]:
    """Gradio chat values (dicts or ChatMessage objects, text or parts) -> engine messages."""
    out: list[dict] = []
    for message in messages or []:
        role = message["role"] if isinstance(message, dict) else message.role
        content = message["content"] if isinstance(message, dict) else message.content
        if isinstance(content, list):  # Gradio 6 may hand back content parts
            content = "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
        out.append({"role": role, "content": str(content)})
    return out


def display_history(history: list[dict]) -> list[dict]:
    """Chatbot value of a chat history: each answer with its stats line in small print under it."""
    shown = []
    for message in history or []:
        content = message["content"]
        if message.get("stats"):
            content = f"{content}\n\n<sub>{message['stats']}</sub>"
        shown.append({"role": message["role"], "content": content})
    return shown
