"""Per-user limits on model use: tokens per day and requests at once, and the usage they count.

Every answer the model writes for a user (the OpenAI-compatible API, document answers, the
chat) runs inside a lease: taking it fails with ``QuotaExceeded`` (HTTP 429 with
``Retry-After``) when the user already has ``max_concurrent`` answers running, or has used
``tokens_per_day`` tokens (prompt + completion) since 00:00 UTC. The check happens before the
model starts, so an answer that starts under the limit is finished and counted in full; several
answers started together may pass the limit by what they write. Usage per user and day lives in
SQLite under the data directory (it survives restarts and is what admins see); without a path it
is kept in memory.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from assist.errors import AccessError, QuotaExceeded
from engine.stats import GenerationStats

__all__ = ["QuotaConfig", "Quotas", "Lease", "MeteredEngine", "metered", "CONCURRENCY_RETRY_S"]

CONCURRENCY_RETRY_S = 2  # an answer takes seconds; sooner than this a retry would meet the same limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    user TEXT NOT NULL,
    day TEXT NOT NULL,
    tokens INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user, day)
);
"""


@dataclass(frozen=True)
class QuotaConfig:
    # prompt + completion tokens per user and UTC day; None: no limit
    tokens_per_day: int | None = field(default=None, metadata={
        "help": "tokens (prompt + answer) each user may use per UTC day; 429 after (default: no "
            "limit)", "option": "user_tokens_per_day"})
    # answers one user may have running at once; None: no limit
    max_concurrent: int | None = field(default=None, metadata={
        "help": "answers each user may have running at once; 429 beyond (default: no limit)", "option": "user_max_concurrent"})

    def __post_init__(self) -> None:
        from engine.errors import ConfigError

        for name in ("tokens_per_day", "max_concurrent"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--user-{name.replace('_', '-')} must be at least 1, or unset for no limit "
                                  f"(got {value}).")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _duration(seconds: float) -> str:
    hours, minutes = int(seconds // 3600), int(seconds % 3600 // 60)
    return f"{hours} h {minutes} min" if hours else f"{max(1, minutes)} min"


class Quotas:
    """The limits of ``config`` for every user, and their token usage (in ``path``, or in memory)."""

    def __init__(self, config: QuotaConfig | None = None, path: str | Path | None = None, clock=_now) -> None:
        self.config = config or QuotaConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        try:
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False,
                                         isolation_level=None, timeout=10)
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise AccessError(f"Cannot open the usage table {path} ({exc}). Check that the data directory "
                              "is writable.") from exc

    def _today(self) -> str:
        return self._clock().date().isoformat()

    def used_today(self, user: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT tokens FROM usage WHERE user = ? AND day = ?",
                                     (user, self._today())).fetchone()
        return int(row[0]) if row else 0

    def acquire(self, user: str) -> Lease:
        """A lease for one answer; ``QuotaExceeded`` when a limit is reached (nothing is held then)."""
        limit, most = self.config.tokens_per_day, self.config.max_concurrent
        if limit is not None and self.used_today(user) >= limit:
            now = self._clock()
            wait = (datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc) - now)
            seconds = wait.total_seconds()
            raise QuotaExceeded(f"You have used your {limit} tokens for today; the limit resets at 00:00 UTC "
                                f"(in {_duration(seconds)}).", retry_after=seconds)
        with self._lock:
            running = self._running.get(user, 0)
            if most is not None and running >= most:
                raise QuotaExceeded(f"You already have {running} answer(s) being written, the most allowed at "
                                    "once; wait for one to finish (or stop it) and try again.",
                                    retry_after=CONCURRENCY_RETRY_S)
            self._running[user] = running + 1
        return Lease(self, user)

    def charge(self, user: str, tokens: int) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO usage (user, day, tokens, requests) VALUES (?, ?, ?, 1) "
                               "ON CONFLICT (user, day) DO UPDATE SET tokens = tokens + excluded.tokens, "
                               "requests = requests + 1", (user, self._today(), int(tokens)))

    def _release(self, user: str) -> None:
        with self._lock:
            left = self._running.get(user, 1) - 1
            if left > 0:
                self._running[user] = left
            else:
                self._running.pop(user, None)

    def running(self, user: str) -> int:
        with self._lock:
            return self._running.get(user, 0)

    def usage(self, day: str | None = None) -> dict[str, dict[str, int]]:
        """``{user: {"tokens", "requests"}}`` of ``day`` (an ISO date; today by default)."""
        with self._lock:
            rows = self._conn.execute("SELECT user, tokens, requests FROM usage WHERE day = ?",
                                      (day or self._today(),)).fetchall()
        return {user: {"tokens": tokens, "requests": requests} for user, tokens, requests in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Lease:
    """One running answer of one user: counts its tokens, frees its slot when released."""

    def __init__(self, quotas: Quotas, user: str) -> None:
        self.quotas, self.user = quotas, user
        self._released = False

    def meter(self, stream: Iterator) -> Iterator:
        """Pass ``stream`` through, charging the tokens of its final ``GenerationStats``."""
        for item in stream:
            if isinstance(item, GenerationStats):
                self.quotas.charge(self.user, item.prompt_tokens + item.completion_tokens)
            yield item

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.quotas._release(self.user)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def metered(quotas: Quotas | None, user: str | None, stream: Iterator) -> Iterator:
    """``stream`` under ``user``'s limits: the lease is taken at the first ``next`` (so a refusal is
    the stream's first error, answered with its own status) and released when the stream ends or is
    closed. Without quotas or a user, ``stream`` unchanged."""
    if quotas is None or user is None:
        yield from stream
        return
    with quotas.acquire(user) as lease:
        yield from lease.meter(stream)


class MeteredEngine:
    """``engine`` whose answers run under ``user``'s limits, for code that is handed an engine
    (the Code tab's handlers); everything but ``stream_chat`` is the engine's own."""

    def __init__(self, engine, quotas: Quotas | None, user: str | None) -> None:
        self._engine, self._quotas, self._user = engine, quotas, user

    def stream_chat(self, *args, **kwargs) -> Iterator:
        return metered(self._quotas, self._user, self._engine.stream_chat(*args, **kwargs))

    def __getattr__(self, name: str):
        return getattr(self._engine, name)
