"""The conversation database's tables, and bringing a database of any earlier version up to date.

Version 1 kept one line of history: ``messages`` keyed by ``(session_id, position)``. Version 2
keeps a tree (``id``, ``parent_id``; ``seq`` orders versions) with the active leaf on the session,
and an FTS5 index over message text for search. Opening a version-1 file converts it in one
transaction: each conversation becomes a single branch (position order, ids made here) whose last
message is the active leaf, so nothing is lost and a crash mid-way leaves the old file as it was.

Search uses FTS5's ``trigram`` tokenizer: it needs no word boundaries, so 保修期 is found inside
这台水泵的保修期是多久 as well as "warrant" inside "warranty" (``assist.session_search``).
"""

from __future__ import annotations

import sqlite3

__all__ = ["TABLES", "prepare"]

TABLES = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    active_leaf TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_owner ON sessions(owner, updated_at);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    parent_id TEXT,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    stats TEXT NOT NULL DEFAULT '',
    thinking_s REAL,
    tools TEXT NOT NULL DEFAULT '',
    attachments TEXT NOT NULL DEFAULT '',
    images TEXT NOT NULL DEFAULT '',
    active_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, id)
);
"""

_ADDED_COLUMNS = ("attachments", "images")  # JSON lists on a message; '' when it has none

# Created after any conversion: they name version-2 columns.
_INDEXES = """
CREATE INDEX IF NOT EXISTS messages_children ON messages(session_id, parent_id, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    content, content='messages', content_rowid='rowid', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content);
END;
"""


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def prepare(conn: sqlite3.Connection, new_id) -> None:
    """Bring the tables (already created or found by ``TABLES``) to version 2; ``new_id()`` makes ids."""
    messages = _columns(conn, "messages")
    with conn:  # one transaction (the connection is in autocommit mode otherwise)
        conn.execute("BEGIN IMMEDIATE")
        if "active_leaf" not in _columns(conn, "sessions"):
            conn.execute("ALTER TABLE sessions ADD COLUMN active_leaf TEXT")
        if "position" in messages and "id" not in messages:
            _from_version_1(conn, messages, new_id)
        present = _columns(conn, "messages")
        for column in _ADDED_COLUMNS:  # columns added during version 2: files, then images
            if column not in present:
                conn.execute(f"ALTER TABLE messages ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
        fresh_index = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchone() is None
        for statement in _statements(_INDEXES):
            conn.execute(statement)
        if fresh_index:  # messages written before the index existed become searchable
            conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def _statements(script: str) -> list[str]:
    """The statements of ``script`` (triggers keep their inner ``;``), for ``execute`` inside a transaction."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        joined = "\n".join(current).strip()
        if joined.endswith(";") and sqlite3.complete_statement(joined):
            out.append(joined)
            current = []
    return out


def _from_version_1(conn: sqlite3.Connection, columns: set[str], new_id) -> None:
    """Version-1 rows (one line per conversation) -> one branch each, the last message active."""
    thinking = "thinking_s" if "thinking_s" in columns else "NULL"  # columns added during version 1
    tools = "tools" if "tools" in columns else "''"
    conn.execute("ALTER TABLE messages RENAME TO messages_v1")
    conn.execute(_statements(TABLES)[-1])  # the version-2 messages table
    rows = conn.execute(f"SELECT session_id, position, role, content, stats, {thinking}, {tools} "
                        "FROM messages_v1 ORDER BY session_id, position").fetchall()
    last: dict[str, str] = {}
    for session_id, position, role, content, stats, thinking_s, tool_json in rows:
        message_id = new_id()
        conn.execute("INSERT INTO messages (session_id, id, parent_id, seq, role, content, stats, thinking_s, tools) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (session_id, message_id, last.get(session_id), position, role, content, stats or "",
                      thinking_s, tool_json or ""))
        last[session_id] = message_id
    conn.executemany("UPDATE sessions SET active_leaf = ? WHERE id = ?", [(v, k) for k, v in last.items()])
    conn.execute("DROP TABLE messages_v1")
