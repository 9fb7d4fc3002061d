"""A synchronous generator (the engine's stream, the tool loop) run in a worker thread that owns it,
its items handed to the event loop: what every streaming route needs.

The worker creates, iterates and closes the generator, so closing never races with a ``next`` in
flight; the event loop side only sets ``cancel``. A route that passes its request to ``next`` learns
when the client has gone (``ClientGone``), and the cancel event stops the device work.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing

from fastapi import Request

__all__ = ["StreamPump", "ClientGone", "END"]

_DISCONNECT_POLL_S = 0.5
END = object()


class _Failure:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc


class ClientGone(Exception):
    """The client disconnected before its answer was complete."""


class StreamPump:
    """Runs one engine stream in a worker thread and hands its items to the event loop.

    The worker creates, iterates and closes the generator, so closing never races with a
    ``next`` in flight; the event loop side only sets ``cancel``.
    """

    def __init__(self, start: Callable[[threading.Event], Iterator]) -> None:
        self.cancel = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._items: asyncio.Queue = asyncio.Queue()
        self._checked = time.monotonic()  # when we last asked whether the client is still there
        threading.Thread(target=self._run, args=(start,), name="dcu-chat-api-stream", daemon=True).start()

    def _run(self, start: Callable[[threading.Event], Iterator]) -> None:
        try:
            with closing(start(self.cancel)) as stream:
                for item in stream:
                    self._put(item)
                    if self.cancel.is_set():
                        break
        except Exception as exc:  # re-raised on the event loop side by next()
            self._put(_Failure(exc))
        finally:
            self._put(END)

    def _put(self, item) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            self.cancel.set()

    async def next(self, request: Request | None = None):
        """The next item, ``END`` at the end; with ``request``, gives up when the client leaves."""
        while True:
            if request is not None and time.monotonic() - self._checked > _DISCONNECT_POLL_S:
                self._checked = time.monotonic()
                if await request.is_disconnected():
                    self.cancel.set()
                    raise ClientGone()
            try:
                item = await asyncio.wait_for(self._items.get(), _DISCONNECT_POLL_S if request else None)
            except TimeoutError:
                continue
            if isinstance(item, _Failure):
                raise item.exc
            return item
