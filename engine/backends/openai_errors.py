"""What a remote OpenAI-compatible server's failures mean, in sentences for the person at the screen."""

from __future__ import annotations

import re

import httpx

from engine.errors import ConfigError, EngineBusy, EngineError, PromptTooLong, RemoteError

__all__ = ["server_message", "http_error", "transport_error", "event_error"]


def server_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return response.text.strip()[:300] or response.reason_phrase


def http_error(response: httpx.Response, url: str, model: str) -> EngineError:
    """An HTTP error answer of the server at ``url`` as one of the engine's errors."""
    status, message = response.status_code, server_message(response)
    where = f"The model server at {url}"
    if status in (429, 503):
        return EngineBusy(f"{where} is busy (HTTP {status}: {message}). Please try again in a moment.")
    if status in (400, 413, 422) and re.search(r"context|too long|too large|maximum.*tokens", message, re.I):
        return PromptTooLong(f"{where} says the conversation is too long: {message}. Start a new chat or "
                             "lower max new tokens.")
    if status in (400, 422):
        return ConfigError(f"{where} rejected the request: {message}")
    if status in (401, 403):
        return RemoteError(f"{where} refused the API key (HTTP {status}: {message}); check --remote-api-key.")
    if status == 404:
        return RemoteError(f"{where} does not know model {model!r} (HTTP 404: {message}); check --remote-model.")
    return RemoteError(f"{where} answered HTTP {status}: {message}")


def transport_error(exc: httpx.HTTPError, url: str) -> RemoteError:
    """No answer at all (refused, timed out, connection dropped) before the first token."""
    if isinstance(exc, httpx.TimeoutException):
        return RemoteError(f"The model server at {url} did not answer in time ({exc!r}); it may be overloaded.")
    return RemoteError(f"Cannot reach the model server at {url}: {exc}; check --base-url and that the server "
                       "is running.")


def event_error(error) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
