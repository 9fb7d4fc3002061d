"""The audit log: who signed in (or failed to), and who created, revoked, shared or deleted what.

Append-only JSON lines (``audit.jsonl`` under the data directory), one event per line, each
written with a single ``write`` on a file opened in append mode, so lines from several threads
or processes never interleave and nothing already written is ever rewritten. Events are named
``area.action`` (``login.ok``, ``login.failed``, ``login.throttled``, ``token.created``,
``token.revoked``, ``user.added``, ``user.removed``, ``collection.shared``, ``session.deleted``,
...); ``actor`` is who did it, ``address`` where the request came from, the rest is detail.
Secrets (passwords, tokens) are never recorded.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from assist.errors import AssistError

__all__ = ["AuditLog"]


class AuditLog:
    """``record`` events; ``recent`` reads them back (newest last)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AssistError(f"Cannot create the folder of the audit log {self.path} ({exc}).") from exc

    def record(self, event: str, actor: str | None = None, address: str | None = None, **details) -> dict:
        """Append one event and return it; details must be JSON values (no secrets)."""
        entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event,
                 "actor": actor, "address": address, **details}
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return entry

    def recent(self, limit: int = 100, event_prefix: str = "") -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            entries = [json.loads(line) for line in handle if line.strip()]
        return [e for e in entries if e.get("event", "").startswith(event_prefix)][-limit:]
