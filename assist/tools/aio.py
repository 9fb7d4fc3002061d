"""One background asyncio event loop for the MCP SDK, and sync calls into it with limits.

The MCP SDK is async; the rest of the app (the engine, Gradio's generator handlers, FastAPI's
worker threads) is threads. The registry owns one loop thread; every MCP session lives on it, and
callers wait on ``run`` with a timeout and a cancel event (Stop): either cancels the coroutine's
task, which cancels the request in the SDK.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine

from assist.tools.errors import ToolCancelled, ToolTimeout

__all__ = ["EventLoopThread"]

_POLL_S = 0.05  # how often a waiting caller looks at its cancel event


class EventLoopThread:
    """A daemon thread running an event loop, started on first use."""

    def __init__(self, name: str = "dcu-chat-tools") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine, timeout: float | None = None, cancel: threading.Event | None = None,
            what: str = "The call"):
        """``coro``'s result, waited for in this thread; ``ToolTimeout`` / ``ToolCancelled`` cancel it."""
        future = self.submit(coro)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            wait = remaining if cancel is None else min(_POLL_S, remaining if remaining is not None else _POLL_S)
            try:
                return future.result(timeout=wait)
            except concurrent.futures.TimeoutError:
                pass
            if cancel is not None and cancel.is_set():
                future.cancel()
                raise ToolCancelled(f"{what} was stopped.")
            if deadline is not None and time.monotonic() >= deadline:
                future.cancel()
                raise ToolTimeout(f"{what} took longer than {timeout:g} s and was stopped.")

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop (after the sessions were closed); a later use starts a new one."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        if not loop.is_running():
            loop.close()
