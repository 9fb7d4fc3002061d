"""Finding conversations by what was said in them (titles too), in English and Chinese.

The words of a query must all occur (in any order, any case) in one message, or in the title
(listed after the message hits, and only for conversations without one).
Words of three or more characters go through the FTS5 trigram index and are ranked by BM25;
shorter ones (水泵, "AI") have no trigram, so they are matched with ``LIKE`` on the candidates.
Every message of every branch is searched: a hit names its message, and opening it shows the
branch that holds it. Each hit carries a snippet: the text around the first match, one line.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

__all__ = ["SearchHit", "search_messages", "snippet", "query_terms"]

MAX_TERMS = 8
SNIPPET_CHARS = 80
_THINK = re.compile(r"<think>[\s\S]*?(?:</think>|$)")


@dataclass(frozen=True)
class SearchHit:
    session_id: str
    message_id: str | None  # None: the title matched
    title: str
    snippet: str

    def to_dict(self) -> dict:
        return {"session_id": self.session_id, "message_id": self.message_id, "title": self.title,
                "snippet": self.snippet}


def query_terms(query: str) -> list[str]:
    """The words of a query (whitespace-separated, quotes dropped), at most ``MAX_TERMS``."""
    return [w for w in re.split(r"\s+", (query or "").replace('"', " ").strip()) if w][:MAX_TERMS]


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_messages(conn: sqlite3.Connection, owner: str, query: str, limit: int = 50) -> list[SearchHit]:
    """The owner's messages (user and assistant) and titles that contain every word of ``query``, best first."""
    terms = query_terms(query)
    if not terms:
        return []
    long_terms = [t for t in terms if len(t) >= 3]
    short = [t for t in terms if len(t) < 3]
    likes = " ".join("AND m.content LIKE ? ESCAPE '\\'" for _ in short)
    if long_terms:
        match = " AND ".join('"' + t + '"' for t in long_terms)
        sql = ("SELECT m.session_id, m.id, s.title, m.content FROM messages_fts f "
               "JOIN messages m ON m.rowid = f.rowid JOIN sessions s ON s.id = m.session_id "
               f"WHERE messages_fts MATCH ? AND s.owner = ? AND m.role IN ('user', 'assistant') {likes} "
               "ORDER BY bm25(messages_fts), s.updated_at DESC LIMIT ?")
        args = [match, owner, *map(_like, short), int(limit)]
    else:
        sql = ("SELECT m.session_id, m.id, s.title, m.content FROM messages m JOIN sessions s ON s.id = m.session_id "
               f"WHERE s.owner = ? AND m.role IN ('user', 'assistant') {likes} "
               "ORDER BY s.updated_at DESC, m.seq LIMIT ?")
        args = [owner, *map(_like, short), int(limit)]
    rows = conn.execute(sql, args).fetchall()
    title_sql = ("SELECT id, title FROM sessions WHERE owner = ? "
                 + " ".join("AND title LIKE ? ESCAPE '\\'" for _ in terms) + " ORDER BY updated_at DESC LIMIT ?")
    titles = conn.execute(title_sql, [owner, *map(_like, terms), int(limit)]).fetchall()
    hits = []
    for session_id, message_id, title, content in rows:
        text = _THINK.sub(" ", content)  # a reasoning model's thoughts are not what it said
        if all(t.lower() in text.lower() for t in terms):
            hits.append(SearchHit(session_id, message_id, title, snippet(text, terms)))
    found = {h.session_id for h in hits}  # a title is listed on its own only when no message matched
    hits += [SearchHit(sid, None, title, title) for sid, title in titles if sid not in found]
    return hits[:limit]


def snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """One line of ``text`` around the first occurrence of any of ``terms`` ('…' where it is cut)."""
    flat = re.sub(r"\s+", " ", text).strip()
    lower = flat.lower()
    found = [i for i in (lower.find(t.lower()) for t in terms) if i >= 0]
    start = max(0, min(found) - width // 3) if found else 0
    end = min(len(flat), start + width)
    start = max(0, min(start, end - width))
    return ("…" if start else "") + flat[start:end].strip() + ("…" if end < len(flat) else "")
