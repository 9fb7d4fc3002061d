"""Guards in front of the HTTP API: the API key, and a size limit on ``/v1`` request bodies.

With ``--api-key KEY`` every ``/v1`` and ``/api`` route except ``/api/health`` needs
``Authorization: Bearer KEY``; the key is compared in constant time, and a missing or wrong
key gets 401 with OpenAI's error JSON. The browser UI is not under this key: it has its own
login (``--auth user:password``, handled by Gradio). Both guards are plain ASGI middleware, so
streamed answers pass through them untouched.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI

from webui.openai_schema import error_response

__all__ = ["ApiKeyMiddleware", "BodyLimitMiddleware", "install_guards", "is_protected"]

OPEN_PATHS = frozenset({"/api/health"})  # load balancers and the test harness probe it without a key
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def is_protected(path: str) -> bool:
    return (_under(path, "/v1") or _under(path, "/api")) and path not in OPEN_PATHS


def _bearer(scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class ApiKeyMiddleware:
    def __init__(self, app, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode("utf-8")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and is_protected(scope["path"]):
            token = _bearer(scope)
            if token is None or not hmac.compare_digest(token, self._key):
                message = ("Missing API key: send 'Authorization: Bearer <key>'." if token is None
                           else "Incorrect API key.")
                response = error_response(401, message, code="invalid_api_key",
                                          headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses ``/v1`` bodies over ``max_bytes`` with 413 before any of them is parsed.

    The JSON body is read here (it is small) and handed on unchanged; uploads under ``/api``
    have their own per-file limits.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self):
        return error_response(413, f"The request is larger than this server accepts "
                                   f"({self.max_bytes // 1024} KiB); send a shorter conversation.",
                              code="request_too_large")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not _under(scope["path"], "/v1"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: the real channel, which reports a disconnect

        await self.app(scope, replay, send)


def install_guards(app: FastAPI, web) -> None:
    """Body limit first, then (outermost) the API key, so unauthenticated bodies are never read."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=web.max_request_bytes)
    if web.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=web.api_key)
