"""One MCP server as the app uses it: started on first use, kept alive, restarted after a crash.

Built on the official ``mcp`` SDK's ``Client`` (stdio or streamable HTTP transport); nothing of
the protocol is written here. Each server's session is a task on the registry's event loop
(``assist.tools.aio``) that enters the SDK's client, lists the tools and then waits until it is
told to stop, so the transport (a child process, an HTTP session) lives exactly as long as that
task. Calls come from other threads through ``call``, with a timeout and a cancel event.

States: ``idle`` (not started yet), ``ready``, ``failed`` (could not start or list; retried on use
after ``RETRY_AFTER_S``), ``crashed`` (stopped during use; restarted on the next use), ``stopped``.
A stdio server's stderr is kept (its last lines) to say why it failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time

from assist.tools.aio import EventLoopThread
from assist.tools.config import McpServerConfig
from assist.tools.errors import (
    ToolCallFailed,
    ToolError,
    ToolServerCrashed,
    ToolServerUnavailable,
    ToolTimeout,
)

__all__ = ["McpServer", "result_text", "RETRY_AFTER_S"]

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30.0  # a server that failed to start is not tried again sooner (each try may take a while)
_MAX_PAGES = 20  # tools/list pages followed (a server that pages forever cannot hang a start)


class _StderrTail:
    """A pipe for a stdio server's stderr; a thread keeps its last lines (and logs them at debug)."""

    def __init__(self, name: str, lines: int = 20) -> None:
        read_fd, write_fd = os.pipe()
        self.writer = os.fdopen(write_fd, "w")
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._read, args=(read_fd, name), daemon=True,
                                        name=f"mcp-stderr-{name}")
        self._thread.start()

    def _read(self, fd: int, name: str) -> None:
        with os.fdopen(fd, "r", errors="replace") as stream:
            for line in stream:
                self.lines.append(line.rstrip())
                log.debug("MCP server %s: %s", name, line.rstrip())

    def tail(self, n: int = 3) -> str:
        useful = [line.strip() for line in self.lines if line.strip()]
        return " / ".join(useful[-n:])

    def close(self, wait_s: float = 0.0) -> None:
        """Close our copy of the write end (the child keeps its own until it exits); with ``wait_s``,
        give the reader that long to take in what a dead child left in the pipe."""
        with contextlib.suppress(OSError):
            self.writer.close()
        if wait_s:
            self._thread.join(wait_s)


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, which the SDK's task groups raise."""
    while isinstance(getattr(exc, "exceptions", None), tuple) and exc.exceptions:  # (Base)ExceptionGroup
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    exc = _leaf(exc)
    text = str(exc).strip()
    if isinstance(exc, FileNotFoundError):
        return f"the program was not found ({exc.filename or text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def result_text(result) -> str:
    """The text of an MCP ``CallToolResult``: its text blocks; other blocks named; else the structured content."""
    import json

    parts = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource" and getattr(block.resource, "text", None) is not None:
            parts.append(block.resource.text)
        else:  # images, audio, links: the model cannot read them here; say what they were
            mime = getattr(block, "mime_type", None) or getattr(getattr(block, "resource", None), "mime_type", None)
            parts.append(f"[{kind} content{f' ({mime})' if mime else ''} not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


class McpServer:
    """An MCP server's session, with sync ``tools()`` and ``call()``; thread-safe."""

    def __init__(self, config: McpServerConfig, loop: EventLoopThread, start_timeout_s: float = 30.0) -> None:
        self.config = config
        self.name = config.name
        self.start_timeout_s = start_timeout_s
        self.state = "idle"
        self.error = ""
        self.starts = 0
        self._loop = loop
        self._lock = threading.Lock()  # one start or stop at a time
        self._client = None
        self._tools: list = []
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._stderr: _StderrTail | None = None
        self._failed_at = 0.0

    # -- public, sync ------------------------------------------------------------------------

    def tools(self) -> list:
        """The server's tools (``mcp.types.Tool``), starting it first if needed."""
        self._ensure()
        return list(self._tools)

    def call(self, tool: str, arguments: dict, timeout: float, cancel: threading.Event | None = None):
        """Call ``tool``; the SDK's ``CallToolResult``. A crash marks the server for a restart."""
        client = self._ensure()
        what = f"The call to {self.name}.{tool}"
        try:
            return self._loop.run(client.call_tool(tool, arguments), timeout=timeout, cancel=cancel, what=what)
        except ToolError:
            raise  # stopped by the user, or out of time (the server lives on)
        except Exception as exc:
            from mcp import MCPError
            from mcp.types import CONNECTION_CLOSED

            if isinstance(exc, MCPError) and exc.code != CONNECTION_CLOSED:
                raise ToolCallFailed(f"The MCP server {self.name!r} refused the call to {tool}: {exc}") from exc
            why = self._crashed(exc)
            raise ToolServerCrashed(f"The MCP server {self.name!r} stopped during the call to {tool} ({why}); "
                                    "it will be started again on the next call.") from exc

    def status(self) -> dict:
        return {"name": self.name, "transport": self.config.transport, "where": self.config.describe(),
                "trusted": self.config.trusted, "state": self.state, "error": self.error,
                "tools": [t.name for t in self._tools] if self.state == "ready" else [], "starts": self.starts}

    def close(self) -> None:
        with self._lock:
            self._shutdown()
            self.state = "stopped"

    # -- starting and stopping -------------------------------------------------------------

    def _ensure(self):
        with self._lock:
            if self.state == "ready" and self._alive():
                return self._client
            if self.state == "failed" and time.monotonic() - self._failed_at < RETRY_AFTER_S:
                raise ToolServerUnavailable(self._unavailable())
            self._shutdown()  # what is left of a crashed session
            self._start()
            return self._client

    def _alive(self) -> bool:
        if self._task is None or self._task.done() or self._client is None:
            return False
        # A stdio server that exited while idle has closed its pipe, and the SDK's dispatcher knows:
        # restart it now rather than fail the user's call. (Servers of the 2026 protocol have no
        # ping; the flag is the SDK's own, read defensively: without it a crash shows at the call.)
        dispatcher = getattr(getattr(self._client, "session", None), "_dispatcher", None)
        if getattr(dispatcher, "_closed", False):
            self._crashed(ConnectionError("the server closed the connection while idle"))
            return False
        return True

    def _start(self) -> None:
        self.starts += 1
        self.state, self.error = "starting", ""
        self._stderr = _StderrTail(self.name) if self.config.command else None
        try:
            self._loop.run(self._open(), timeout=self.start_timeout_s, what=f"Starting the MCP server {self.name!r}")
        except ToolTimeout:
            self._fail(f"it did not answer within {self.start_timeout_s:g} s")
        except Exception as exc:
            self._fail(_describe(exc))
        self.state = "ready"
        log.info("MCP server %s ready: %d tools", self.name, len(self._tools))

    def _fail(self, why: str):
        self._shutdown()
        if self._stderr is not None:
            self._stderr.close(wait_s=1.0)
        tail = self._stderr.tail() if self._stderr is not None else ""
        self.state, self._failed_at = "failed", time.monotonic()
        self.error = f"{why}" + (f" — its last output: {tail}" if tail else "")
        log.warning("MCP server %s could not start: %s", self.name, self.error)
        raise ToolServerUnavailable(self._unavailable())

    def _unavailable(self) -> str:
        return (f"The MCP server {self.name!r} ({self.config.describe()}) is not available: {self.error}. "
                "Check its [[mcp_servers]] entry; the other tools still work.")

    def _crashed(self, exc: BaseException) -> str:
        tail = self._stderr.tail() if self._stderr is not None else ""
        why = _describe(exc) + (f"; its last output: {tail}" if tail else "")
        self.state, self.error, self._client = "crashed", why, None
        log.warning("MCP server %s stopped: %s", self.name, why)
        return why

    def _shutdown(self) -> None:
        """End the session task (the SDK closes the transport: stdin, then terminate, then kill)."""
        task, stop = self._task, self._stop
        self._task = self._stop = self._client = None
        if task is not None and not task.done():
            async def finish():
                stop.set()  # a ready session leaves its client's context: the SDK closes the transport
                await asyncio.wait({task}, timeout=5 if self.state != "starting" else 0)
                if not task.done():  # still starting (or stuck): cancel it
                    task.cancel()
                    await asyncio.wait({task}, timeout=10)

            with contextlib.suppress(Exception):
                self._loop.run(finish(), timeout=15, what=f"Stopping the MCP server {self.name!r}")
        if self._stderr is not None:
            self._stderr.close()

    # -- on the event loop -----------------------------------------------------------------

    async def _open(self) -> None:
        ready = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = task = asyncio.create_task(self._session(ready, self._stop), name=f"mcp-{self.name}")
        try:
            await ready
        except asyncio.CancelledError:  # the start timed out: the session must not linger
            task.cancel()
            raise

    def _transport(self, stack: contextlib.AsyncExitStack):
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        config = self.config
        if config.command:
            params = StdioServerParameters(command=config.command, args=list(config.args),
                                           env=dict(config.env) or None, cwd=config.cwd)
            return stdio_client(params, errlog=self._stderr.writer)
        http = create_mcp_http_client(headers=dict(config.headers) or None)
        stack.push_async_callback(http.aclose)
        return streamable_http_client(config.url, http_client=http)

    async def _session(self, ready: asyncio.Future, stop: asyncio.Event) -> None:
        from mcp import Client
        from mcp.types import Implementation

        try:
            async with contextlib.AsyncExitStack() as stack:
                client = Client(self._transport(stack), cache=None,
                                client_info=Implementation(name="dcu-chat", version="0.1.0"))
                await stack.enter_async_context(client)
                tools, cursor = [], None
                for _ in range(_MAX_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                self._tools, self._client = tools, client
                ready.set_result(None)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as exc:  # the SDK's task groups raise exception groups
            if not ready.done():
                ready.set_exception(_leaf(exc) if isinstance(_leaf(exc), Exception) else ToolError(str(exc)))
            elif self._task is asyncio.current_task():
                self._crashed(exc)
