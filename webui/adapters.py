"""Adapters between the core (engine, rag) and the web edge.

Domain errors carry human messages; here, and only here, they become ``gr.Error`` in the UI
or HTTP status codes in the API.
"""

from __future__ import annotations

import logging

from engine.errors import EngineError

__all__ = ["domain_error_types", "is_domain_error", "http_status_of", "ui_error", "clean_messages", "display_history"]

log = logging.getLogger(__name__)


def domain_error_types() -> tuple[type[Exception], ...]:
    try:
        from rag.errors import RagError
    except ImportError:  # rag may be absent in stripped-down deployments
        return (EngineError,)
    return (EngineError, RagError)


def is_domain_error(exc: BaseException) -> bool:
    return isinstance(exc, domain_error_types())


def http_status_of(exc: BaseException) -> int:
    return int(getattr(exc, "http_status", 500)) if is_domain_error(exc) else 500


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
