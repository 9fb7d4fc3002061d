"""A guard in front of every ``/v1`` and ``/api`` route: request bodies must be text we can use.

JSON travels as UTF-8 (RFC 8259), and a JSON string may spell a lone UTF-16 surrogate
(``"\\ud800"``) that Python parses into a ``str`` nothing downstream can encode: SQLite, the
tokenizer and the JSON answer itself would fail with a 500 deep inside. So before any route
sees a body, this middleware answers 400 in our error JSON when the bytes are not UTF-8, when a
``\\uD800``-``\\uDFFF`` escape is not half of a pair, or when the nesting is too deep for the
parser; and 413 when a body is larger than the server accepts (by its Content-Length before
reading, else as it arrives). Multipart uploads pass through untouched: their files are bytes,
checked file by file by the document store.

Bodies without a suspicious escape and with few brackets are not parsed here (byte searches
decide), so the common case costs one UTF-8 decode.
"""

from __future__ import annotations

import json
import re

from webui.adapters import error_response_for

__all__ = ["BodyGuardMiddleware", "body_problem"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Bodies with more brackets than this are parsed here once: a parser's RecursionError anywhere
# later (our routes parse some bodies themselves) would be a 500.
_PARSE_OPENERS = 256


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def body_problem(body: bytes) -> str | None:
    """Why ``body`` cannot be used as a JSON/text request body, or None when it can."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (f"The request body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at position {exc.start}); "
                "send JSON encoded as UTF-8.")
    deep = body.count(b"[") + body.count(b"{") > _PARSE_OPENERS
    if not deep and not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # not JSON at all: the route says so in its own words
    except RecursionError:
        return "The request body is nested too deeply; flatten the JSON."
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        return (f"The request body contains a lone UTF-16 surrogate (\\u{code:04x}), which is not a character; "
                "encode text as UTF-8 (an emoji is one pair of escapes, e.g. \\ud83d\\ude00).")
    except RecursionError:
        return "The request body is nested too deeply; flatten the JSON."
    return None


class BodyGuardMiddleware:
    """ASGI middleware: reads ``/v1`` and ``/api`` bodies once, checks them, then replays them."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (scope["type"] != "http" or scope["method"] not in _BODY_METHODS
                or not (_under(path, "/v1") or _under(path, "/api")) or self._is_multipart(scope)):
            await self.app(scope, receive, send)
            return
        too_large = f"The request is larger than this server accepts ({self.max_bytes // 1024} KiB)."
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, 413, too_large)  # refused before a byte is read
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, 413, too_large)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = body_problem(body)
        if problem is not None:
            await self._refuse(scope, receive, send, 400, problem)
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: the real channel, which reports a disconnect

        await self.app(scope, replay, send)

    @staticmethod
    def _is_multipart(scope) -> bool:
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"")
        return content_type.lower().startswith(b"multipart/")

    @staticmethod
    async def _refuse(scope, receive, send, status: int, message: str) -> None:
        code = "request_too_large" if status == 413 else "invalid_body"
        await error_response_for(scope["path"], status, message, code=code)(scope, receive, send)
