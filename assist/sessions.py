"""Persistent chat sessions: one SQLite file under the data directory.

Every conversation belongs to an owner — the logged-in user name with ``--auth``, else the
shared ``"local"`` owner — and every read or write names that owner, so a user never sees,
changes or even learns of another user's conversations (they are simply "not found").

The chat saves a session's whole history after each turn (and the user's message before the
answer starts), so writes replace a session's messages in one transaction: a crash leaves
either the old or the new history, never half of one. WAL mode keeps reads cheap while a
write is in progress; one connection guarded by a lock serves all threads of the process,
and ``busy_timeout`` covers a second process on the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from assist.db import open_db, write_transaction
from assist.errors import SessionError, SessionNotFound
from assist.session_format import (
    ROLES,
    SessionData,
    auto_title,
    file_stem,
    parse_import,
    thinking_seconds,
    to_json,
    to_markdown,
    tool_fields,
)

__all__ = ["SessionStore", "SessionData", "LOCAL_OWNER", "EXPORT_FORMATS", "not_found"]

LOCAL_OWNER = "local"
EXPORT_FORMATS = {"md": "text/markdown; charset=utf-8", "json": "application/json"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_by_owner ON sessions(owner, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    stats TEXT NOT NULL DEFAULT '',
    thinking_s REAL,
    tools TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, position)
);
"""
_COLUMNS = "s.id, s.owner, s.title, s.created_at, s.updated_at, s.system_prompt"
_COUNT = "(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)"


def _now() -> str:
    # Microseconds so that sessions touched in the same second still sort by recency.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class SessionStore:
    """Conversations of all users in ``path`` (created, with its folder, when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self._conn = open_db(self.path, _SCHEMA)
            _add_missing_columns(self._conn)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise SessionError(f"Cannot open the conversation database {self.path} ({exc}). Check that the "
                               "data directory is writable; if the file is damaged, move it away and "
                               "restart (a new, empty one is created).") from exc

    # -- reading ---------------------------------------------------------------------------

    def list(self, owner: str, query: str | None = None, limit: int = 500) -> list[SessionData]:
        """The owner's sessions, most recently updated first; ``query`` matches titles."""
        sql = f"SELECT {_COLUMNS}, {_COUNT} FROM sessions s WHERE s.owner = ?"
        args: list = [owner]
        if query and query.strip():
            escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql += " AND s.title LIKE ? ESCAPE '\\'"
            args.append(f"%{escaped}%")
        sql += " ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [self._session(row) for row in rows]

    def get(self, session_id: str, owner: str) -> SessionData:
        """One session with its messages; ``SessionNotFound`` when missing or someone else's."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS}, {_COUNT} FROM sessions s WHERE s.id = ? AND s.owner = ?",
                                     (session_id, owner)).fetchone()
            if row is None:
                raise not_found()
            messages = self._conn.execute(
                "SELECT role, content, stats, thinking_s, tools FROM messages WHERE session_id = ? ORDER BY position",
                (session_id,)).fetchall()
        session = self._session(row)
        session.messages = [{"role": r, "content": c, **({"stats": s} if s else {}),
                             **({"thinking_s": t} if t is not None else {}), **(json.loads(x) if x else {})}
                            for r, c, s, t, x in messages]
        return session

    def counts_by_owner(self) -> dict[str, int]:
        """How many sessions each owner has: usage an admin may see (titles and messages stay private)."""
        with self._lock:
            return dict(self._conn.execute("SELECT owner, COUNT(*) FROM sessions GROUP BY owner").fetchall())

    def exists(self, session_id: str | None, owner: str) -> bool:
        if not session_id:
            return False
        with self._lock:
            return self._conn.execute("SELECT 1 FROM sessions WHERE id = ? AND owner = ?",
                                      (session_id, owner)).fetchone() is not None

    # -- writing ---------------------------------------------------------------------------

    def create(self, owner: str, title: str | None = None, system_prompt: str = "",
               messages: Sequence[dict] = ()) -> SessionData:
        """A new session; without a title, one is made from the first user message when it is saved."""
        if not owner:
            raise SessionError("A conversation needs an owner (a user name, or 'local' without --auth).")
        session_id, now = uuid.uuid4().hex, _now()
        clean = _validate(messages)
        title = auto_title(title or "") or _first_user_title(clean)
        with self._write() as conn:
            conn.execute("INSERT INTO sessions (id, owner, title, created_at, updated_at, system_prompt) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (session_id, owner, title, now, now, system_prompt or ""))
            self._insert(conn, session_id, clean, start=0)
        return self.get(session_id, owner)

    def rename(self, session_id: str, owner: str, title: str) -> SessionData:
        """Set the title; an empty title goes back to the automatic one (first user message)."""
        with self._write() as conn:
            self._check(conn, session_id, owner)
            new = auto_title(title or "")
            if not new:
                first = conn.execute("SELECT content FROM messages WHERE session_id = ? AND role = 'user' "
                                     "ORDER BY position LIMIT 1", (session_id,)).fetchone()
                new = auto_title(first[0]) if first else ""
            conn.execute("UPDATE sessions SET title = ?, updated_at = ? WHERE id = ?", (new, _now(), session_id))
        return self.get(session_id, owner)

    def delete(self, session_id: str, owner: str) -> None:
        with self._write() as conn:
            self._check(conn, session_id, owner)
            conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def replace_messages(self, session_id: str, owner: str, messages: Sequence[dict],
                         system_prompt: str | None = None) -> None:
        """Save the whole history of a session (one transaction), e.g. after each chat turn."""
        clean = _validate(messages)
        with self._write() as conn:
            self._check(conn, session_id, owner)
            conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            self._insert(conn, session_id, clean, start=0)
            self._touch(conn, session_id, clean, system_prompt)

    def append_messages(self, session_id: str, owner: str, messages: Sequence[dict]) -> None:
        """Add messages after the existing ones."""
        clean = _validate(messages)
        with self._write() as conn:
            self._check(conn, session_id, owner)
            start = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE session_id = ?",
                                 (session_id,)).fetchone()[0]
            self._insert(conn, session_id, clean, start=start)
            self._touch(conn, session_id, clean, None)

    # -- files -----------------------------------------------------------------------------

    def export(self, session_id: str, owner: str, fmt: str = "md") -> tuple[str, str]:
        """``(file name, text)`` of a session as Markdown (``md``) or JSON (``json``)."""
        fmt = (fmt or "").lower().lstrip(".")
        fmt = "md" if fmt == "markdown" else fmt
        if fmt not in EXPORT_FORMATS:
            raise SessionError(f"Unknown export format {fmt!r}; use 'md' (Markdown) or 'json'.")
        session = self.get(session_id, owner)
        text = to_markdown(session) if fmt == "md" else to_json(session)
        return f"{file_stem(session.title)}.{fmt}", text

    def import_json(self, owner: str, raw: str | bytes | dict | list) -> SessionData:
        """A new session (always a new id) from an exported JSON file; ``InvalidImport`` if it is not one."""
        data = parse_import(raw)
        return self.create(owner, data["title"] or None, data["system_prompt"], data["messages"])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- internals ---------------------------------------------------------------------------

    def _write(self):
        return write_transaction(self._conn, self._lock)

    @staticmethod
    def _check(conn: sqlite3.Connection, session_id: str, owner: str) -> None:
        if conn.execute("SELECT 1 FROM sessions WHERE id = ? AND owner = ?", (session_id, owner)).fetchone() is None:
            raise not_found()

    @staticmethod
    def _insert(conn: sqlite3.Connection, session_id: str, messages: list[dict], start: int) -> None:
        conn.executemany("INSERT INTO messages (session_id, position, role, content, stats, thinking_s, tools) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(session_id, start + i, m["role"], m["content"], m.get("stats") or "", m.get("thinking_s"),
                           json.dumps(m["tools"], ensure_ascii=False) if m.get("tools") else "")
                          for i, m in enumerate(messages)])

    @staticmethod
    def _touch(conn: sqlite3.Connection, session_id: str, messages: list[dict], system_prompt: str | None) -> None:
        title = _first_user_title(messages)
        conn.execute("UPDATE sessions SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END, "
                     "system_prompt = COALESCE(?, system_prompt) WHERE id = ?",
                     (_now(), title, system_prompt, session_id))

    @staticmethod
    def _session(row) -> SessionData:
        return SessionData(id=row[0], owner=row[1], title=row[2], created_at=row[3], updated_at=row[4],
                           system_prompt=row[5], message_count=row[6])


def not_found() -> SessionNotFound:
    """What every caller hears about a conversation that is missing or someone else's."""
    return SessionNotFound("This conversation does not exist (it may have been deleted).")


def _first_user_title(messages: Sequence[dict]) -> str:
    return next((auto_title(m["content"]) for m in messages if m["role"] == "user" and m["content"].strip()), "")


def _validate(messages: Sequence[dict]) -> list[dict]:
    clean = []
    for number, message in enumerate(messages, start=1):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise SessionError(f"Message {number} cannot be saved: it needs a role 'user', 'assistant' or 'tool' "
                               "and text content.")
        clean.append({"role": role, "content": content, "stats": str(message.get("stats") or ""),
                      "thinking_s": thinking_seconds(message.get("thinking_s")),
                      "tools": tool_fields(message, number)})  # tool calls and results: JSON in one column
    return clean


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Databases written before a column existed get it (empty), so their conversations still open."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    if "thinking_s" not in columns:  # how long a reasoning model thought (the Thinking block's duration)
        with conn:
            conn.execute("ALTER TABLE messages ADD COLUMN thinking_s REAL")
    if "tools" not in columns:  # an assistant turn's tool calls, a tool result's id/name/status (JSON)
        with conn:
            conn.execute("ALTER TABLE messages ADD COLUMN tools TEXT NOT NULL DEFAULT ''")
