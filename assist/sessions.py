"""Persistent chat sessions: one SQLite file under the data directory.

Every conversation belongs to an owner — the logged-in user name with ``--auth``, else the
shared ``"local"`` owner — and every read or write names that owner, so a user never sees,
changes or even learns of another user's conversations (they are simply "not found").

A conversation is a tree of messages (``assist.session_tree``): an edited question or a
regenerated answer is a new version beside the old one, and the conversation shows one branch,
the path to its active leaf. The chat saves the branch it shows after each turn (and the user's
message before the answer starts): ``save_branch`` updates the messages it knows by id and adds
the others below them, in one transaction, so a crash leaves the old or the new state, never
half of one, and nothing already written is lost. WAL mode keeps reads cheap while a write is in
progress; one connection guarded by a lock serves all threads of the process, and
``busy_timeout`` covers a second process on the same file.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from assist.db import open_db, write_transaction
from assist.errors import SessionError, SessionNotFound
from assist.session_format import SessionData, auto_title, file_stem, to_json, to_markdown
from assist.session_import import parse_import
from assist.session_rows import (
    activate,
    active_times,
    clean_message,
    insert_message,
    load_nodes,
    now,
    save_branch,
)
from assist.session_rows import active_leaf as leaf_of
from assist.session_schema import TABLES, prepare
from assist.session_search import SearchHit, search_messages
from assist.session_tree import after_delete, new_message_id, newest_leaf, path_to, subtree

__all__ = ["SessionStore", "SessionData", "SearchHit", "LOCAL_OWNER", "EXPORT_FORMATS", "not_found"]

LOCAL_OWNER = "local"
EXPORT_FORMATS = {"md": "text/markdown; charset=utf-8", "json": "application/json"}

_COLUMNS = "s.id, s.owner, s.title, s.created_at, s.updated_at, s.system_prompt, s.active_leaf"
_COUNT = "(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)"


class SessionStore:
    """Conversations of all users in ``path`` (created, with its folder, when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        # Called with the id of each deleted conversation, after the delete: what was kept for it
        # elsewhere goes too (the index of its attached files, ``assist.attachments``).
        self.on_delete: list[Callable[[str], None]] = []
        try:
            self._conn = open_db(self.path, TABLES)
            prepare(self._conn, new_message_id)  # earlier versions' files are converted, without loss
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

    def search(self, owner: str, query: str, limit: int = 50) -> list[SearchHit]:
        """The owner's conversations whose messages (any branch) or title contain every word of ``query``."""
        with self._lock:
            return search_messages(self._conn, owner, query, limit)

    def get(self, session_id: str, owner: str) -> SessionData:
        """One session: ``messages`` is its active branch, ``tree`` every message; ``SessionNotFound``
        when missing or someone else's."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS}, {_COUNT} FROM sessions s WHERE s.id = ? AND s.owner = ?",
                                     (session_id, owner)).fetchone()
            if row is None:
                raise not_found()
            tree = load_nodes(self._conn, session_id)
        session = self._session(row)
        session.tree = tree
        session.messages = path_to(tree, session.active_leaf)
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
               messages: Sequence[dict] = (), active_leaf: str | None = None) -> SessionData:
        """A new session; without a title, one is made from the first user message when it is saved.

        ``messages`` is one branch, or a whole tree when they carry ``parent_id`` (an import), whose
        ``active_leaf`` (default: the last message) is the branch shown."""
        if not owner:
            raise SessionError("A conversation needs an owner (a user name, or 'local' without --auth).")
        session_id, created = uuid.uuid4().hex, now()
        tree = any("parent_id" in m for m in messages)
        with self._write() as conn:
            conn.execute("INSERT INTO sessions (id, owner, title, created_at, updated_at, system_prompt) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (session_id, owner, "", created, created, system_prompt or ""))
            if tree:
                clean = [{**clean_message(m, n), "id": m["id"], "parent_id": m.get("parent_id")}
                         for n, m in enumerate(messages, start=1)]
                for seq, message in enumerate(clean):
                    insert_message(conn, session_id, message, message["parent_id"], seq)
                leaf = active_leaf or (clean[-1]["id"] if clean else None)
                activate(conn, session_id, leaf)
                branch = path_to(clean, leaf)
            else:
                branch = save_branch(conn, session_id, messages)
            title = auto_title(title or "") or _first_user_title(branch)
            conn.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))
        return self.get(session_id, owner)

    def rename(self, session_id: str, owner: str, title: str) -> SessionData:
        """Set the title; an empty title goes back to the automatic one (first user message)."""
        with self._write() as conn:
            self._check(conn, session_id, owner)
            new = auto_title(title or "")
            if not new:
                first = conn.execute("SELECT content FROM messages WHERE session_id = ? AND role = 'user' "
                                     "ORDER BY seq LIMIT 1", (session_id,)).fetchone()
                new = auto_title(first[0]) if first else ""
            conn.execute("UPDATE sessions SET title = ?, updated_at = ? WHERE id = ?", (new, now(), session_id))
        return self.get(session_id, owner)

    def delete(self, session_id: str, owner: str) -> None:
        with self._write() as conn:
            self._check(conn, session_id, owner)
            conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        for forget in list(self.on_delete):
            forget(session_id)

    def save_branch(self, session_id: str, owner: str, messages: Sequence[dict],
                    system_prompt: str | None = None) -> list[str]:
        """Make ``messages`` the conversation's active branch and return their ids (one transaction).

        A message with a known ``id`` is updated in place (an answer that grew); one without an id
        is the branch's message at that place when role and text are equal (a client sending the
        conversation again), else it is new, written below the message before it: an edited
        question or a regenerated answer becomes a new version and the old one is kept.
        """
        with self._write() as conn:
            self._check(conn, session_id, owner)
            ids = save_branch(conn, session_id, messages)
            self._touch(conn, session_id, messages, system_prompt)
        return [m["id"] for m in ids]

    def replace_messages(self, session_id: str, owner: str, messages: Sequence[dict],
                         system_prompt: str | None = None) -> None:
        """``save_branch`` under its earlier name (callers that save the whole history after each turn)."""
        self.save_branch(session_id, owner, messages, system_prompt)

    def append_messages(self, session_id: str, owner: str, messages: Sequence[dict]) -> None:
        """Add messages after the active branch's last message."""
        branch = self.get(session_id, owner).messages
        self.save_branch(session_id, owner, [*branch, *messages])

    def switch(self, session_id: str, owner: str, message_id: str) -> SessionData:
        """Show the branch through ``message_id``: the one below it that was shown last."""
        with self._write() as conn:
            self._check(conn, session_id, owner)
            nodes = load_nodes(conn, session_id)
            if not any(n["id"] == message_id for n in nodes):
                raise SessionError("That message is not part of this conversation (it may have been deleted).")
            activate(conn, session_id, newest_leaf(nodes, message_id, active_times(conn, session_id)))
        return self.get(session_id, owner)

    def delete_branch(self, session_id: str, owner: str, message_id: str) -> SessionData:
        """Delete one version and everything written below it; a neighbouring version is shown instead."""
        with self._write() as conn:
            self._check(conn, session_id, owner)
            nodes = load_nodes(conn, session_id)
            if not any(n["id"] == message_id for n in nodes):
                raise SessionError("That message is not part of this conversation (it may have been deleted).")
            gone = subtree(nodes, message_id)
            active = leaf_of(conn, session_id)
            target = after_delete(nodes, message_id)
            conn.executemany("DELETE FROM messages WHERE session_id = ? AND id = ?", [(session_id, m) for m in gone])
            if active in gone or active is None:
                rest = [n for n in nodes if n["id"] not in gone]
                leaf = newest_leaf(rest, target, active_times(conn, session_id)) if target else None
                activate(conn, session_id, leaf)
            conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now(), session_id))
        return self.get(session_id, owner)

    # -- files -----------------------------------------------------------------------------

    def export(self, session_id: str, owner: str, fmt: str = "md") -> tuple[str, str]:
        """``(file name, text)``: Markdown (``md``) of the branch shown, or JSON of the whole tree."""
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
        return self.create(owner, data["title"] or None, data["system_prompt"], data["messages"],
                           data.get("active_leaf"))

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
    def _touch(conn: sqlite3.Connection, session_id: str, messages: Sequence[dict], system_prompt: str | None) -> None:
        title = _first_user_title(messages)
        conn.execute("UPDATE sessions SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END, "
                     "system_prompt = COALESCE(?, system_prompt) WHERE id = ?",
                     (now(), title, system_prompt, session_id))

    @staticmethod
    def _session(row) -> SessionData:
        return SessionData(id=row[0], owner=row[1], title=row[2], created_at=row[3], updated_at=row[4],
                           system_prompt=row[5], active_leaf=row[6], message_count=row[7])


def not_found() -> SessionNotFound:
    """What every caller hears about a conversation that is missing or someone else's."""
    return SessionNotFound("This conversation does not exist (it may have been deleted).")


def _first_user_title(messages: Sequence[dict]) -> str:
    return next((auto_title(m["content"]) for m in messages
                 if m.get("role") == "user" and isinstance(m.get("content"), str) and m["content"].strip()), "")
