"""Admission in front of the shared model: a first-come, first-served queue with a capacity.

Requests from the UI and the API wait their turn here; a full queue answers "busy" at once
instead of piling up, and a request cancelled while waiting leaves without running.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import EngineBusy

__all__ = ["FairQueue", "CancelledWhileWaiting"]


class CancelledWhileWaiting(Exception):
    """The request was cancelled before its turn came."""


class FairQueue:
    def __init__(self, max_waiting: int = 32, capacity: int = 1) -> None:
        self.max_waiting = max_waiting
        self.capacity = capacity
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._active = 0

    @property
    def depth(self) -> int:
        """Requests waiting, not counting those running."""
        return len(self._waiting)

    @property
    def active(self) -> int:
        return self._active

    @contextmanager
    def slot(self, cancel: threading.Event | None = None) -> Iterator[float]:
        """Wait for a turn; yields the seconds spent waiting."""
        started = time.perf_counter()
        ticket = object()
        with self._cond:
            if len(self._waiting) >= self.max_waiting:
                raise EngineBusy(
                    f"The server is busy ({len(self._waiting)} requests waiting). Please try again in a moment."
                )
            self._waiting.append(ticket)
            try:
                while self._active >= self.capacity or self._waiting[0] is not ticket:
                    if cancel is not None and cancel.is_set():
                        raise CancelledWhileWaiting()
                    self._cond.wait(timeout=0.1)
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()
                raise
            self._waiting.popleft()
            self._active += 1
            self._cond.notify_all()
        try:
            yield time.perf_counter() - started
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()
