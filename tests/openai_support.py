"""Helpers for the OpenAI API and remote-backend tests: a real server in a thread, a recording engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fakes import FakeEngine


class RecordingEngine(FakeEngine):
    """A fake engine that remembers each request's cancel event (slow when ``delay`` is set)."""

    def __init__(self, reply: str = "Hello there, friend.", delay: float = 0.0, error: Exception | None = None):
        super().__init__(reply=reply, delay=delay, error=error)
        self.cancels: list[threading.Event] = []

    def stream_chat(self, messages, params=None, session_id=None, cancel=None):
        cancel = cancel or threading.Event()
        self.cancels.append(cancel)
        yield from super().stream_chat(messages, params, session_id, cancel)


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields its base URL.

    The TestClient runs a request to completion before returning it, so disconnects and true
    streaming need a real server.
    """
    import uvicorn

    from bench.live_app import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
