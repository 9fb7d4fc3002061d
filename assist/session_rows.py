"""Reading and writing a conversation's message rows (inside the store's transactions).

``save_branch`` is the one rule for saving what the Chat shows: a message with a known ``id`` is
updated in place (an answer that grew while streaming); one without an id is the shown branch's
message at that place when role and text are equal (a client sending the conversation again);
anything else is new and written below the message before it, so an edited question or a
regenerated answer becomes a new version and the old one stays. Nothing is deleted here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone

from assist.errors import SessionError
from assist.session_format import ROLES, attachment_fields, image_fields, thinking_seconds, tool_fields
from assist.session_tree import new_message_id, path_to, valid_message_id

__all__ = ["now", "load_nodes", "active_leaf", "active_times", "activate", "clean_message", "insert_message",
           "save_branch"]


def now() -> str:
    # Microseconds so that sessions touched in the same second still sort by recency.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def load_nodes(conn: sqlite3.Connection, session_id: str) -> list[dict]:
    """Every message of a conversation (all branches), oldest first, with ``id`` and ``parent_id``."""
    rows = conn.execute("SELECT id, parent_id, role, content, stats, thinking_s, tools, attachments, images "
                        "FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall()
    return [{"id": i, "parent_id": p, "role": r, "content": c, **({"stats": s} if s else {}),
             **({"thinking_s": t} if t is not None else {}), **(json.loads(x) if x else {}),
             **({"attachments": json.loads(a)} if a else {}), **({"images": json.loads(g)} if g else {})}
            for i, p, r, c, s, t, x, a, g in rows]


def active_leaf(conn: sqlite3.Connection, session_id: str) -> str | None:
    row = conn.execute("SELECT active_leaf FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return row[0] if row else None


def active_times(conn: sqlite3.Connection, session_id: str) -> dict[str, str]:
    """Leaf id -> when it was last the active leaf (which branch to show when switching back)."""
    return dict(conn.execute("SELECT id, active_at FROM messages WHERE session_id = ? AND active_at != ''",
                             (session_id,)).fetchall())


def activate(conn: sqlite3.Connection, session_id: str, leaf: str | None) -> None:
    conn.execute("UPDATE sessions SET active_leaf = ? WHERE id = ?", (leaf, session_id))
    if leaf is not None:  # remembered, so switching back to this branch shows this leaf again
        conn.execute("UPDATE messages SET active_at = ? WHERE session_id = ? AND id = ?", (now(), session_id, leaf))


def clean_message(message: dict, number: int) -> dict:
    """The stored fields of a message, checked (``SessionError`` names the message)."""
    role, content = message.get("role"), message.get("content")
    if role not in ROLES or not isinstance(content, str):
        raise SessionError(f"Message {number} cannot be saved: it needs a role 'user', 'assistant' or 'tool' "
                           "and text content.")
    return {"role": role, "content": content, "stats": str(message.get("stats") or ""),
            "thinking_s": thinking_seconds(message.get("thinking_s")),
            "tools": tool_fields(message, number),  # tool calls and results: JSON in one column
            "attachments": attachment_fields(message, number),
            "images": image_fields(message, number)}  # data: URLs of the pictures a question showed


def _row(message: dict) -> tuple:
    return (message["role"], message["content"], message.get("stats") or "", message.get("thinking_s"),
            json.dumps(message["tools"], ensure_ascii=False) if message.get("tools") else "",
            json.dumps(message["attachments"], ensure_ascii=False) if message.get("attachments") else "",
            json.dumps(message["images"]) if message.get("images") else "")


def insert_message(conn: sqlite3.Connection, session_id: str, message: dict, parent: str | None, seq: int) -> None:
    conn.execute("INSERT INTO messages (session_id, id, parent_id, seq, role, content, stats, thinking_s, tools, "
                 "attachments, images) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (session_id, message["id"], parent, seq, *_row(message)))


def _update(conn: sqlite3.Connection, session_id: str, message_id: str, message: dict) -> None:
    # Unchanged rows are left alone (no write, no search-index churn): answers are saved while they stream.
    conn.execute("UPDATE messages SET role = ?, content = ?, stats = ?, thinking_s = ?, tools = ?, attachments = ?, "
                 "images = ? WHERE session_id = ? AND id = ? AND (role, content, stats, thinking_s, tools, attachments, "
                 "images) IS NOT (?, ?, ?, ?, ?, ?, ?)", (*_row(message), session_id, message_id, *_row(message)))


def _same(node: dict | None, parent: str | None, message: dict) -> bool:
    return node is not None and node.get("parent_id") == parent and \
        (node["role"], node["content"]) == (message["role"], message["content"])


def save_branch(conn: sqlite3.Connection, session_id: str, messages: Sequence[dict]) -> list[dict]:
    """Write ``messages`` as the active branch (module docstring); returns them, cleaned, with ids."""
    clean = [clean_message(m, n) for n, m in enumerate(messages, start=1)]
    nodes = {n["id"]: n for n in load_nodes(conn, session_id)}
    shown = path_to(list(nodes.values()), active_leaf(conn, session_id))
    seq = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE session_id = ?",
                       (session_id,)).fetchone()[0]
    parent, saved = None, []
    for number, (message, given) in enumerate(zip(clean, messages, strict=True), start=1):
        message_id = given.get("id")
        if message_id is None and _same(shown[number - 1] if len(shown) >= number else None, parent, message):
            message_id = shown[number - 1]["id"]
        if message_id in nodes:
            if nodes[message_id].get("parent_id") != parent or nodes[message_id]["role"] != message["role"]:
                raise SessionError(f"Message {number} does not follow message {number - 1} in this conversation; "
                                   "reload it and try again.")
            _update(conn, session_id, message_id, message)
        else:
            message_id = message_id or new_message_id()
            if not valid_message_id(message_id):
                raise SessionError(f"Message {number} has an id that is not 1-64 letters, digits, '_' or '-'.")
            insert_message(conn, session_id, {**message, "id": message_id}, parent, seq)
            nodes[message_id] = {"id": message_id, "parent_id": parent, **message}
            seq += 1
        parent = message_id
        saved.append({**message, "id": message_id})
    activate(conn, session_id, parent)
    return saved
