"""SQLite metadata of one collection: its documents and their chunks.

Chunk ids come from ``AUTOINCREMENT`` so an id is never reused, even after deletes; the
vector/BM25 index refers to chunks by these ids. A document is inserted as ``pending``,
indexed, then marked ``ready`` — a crash in between leaves a pending row that
``rag.store`` removes when it next opens the collection, so the index and the metadata
cannot disagree about what is searchable.

Not thread-safe on its own: ``rag.store`` holds the collection lock around every call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["DocumentInfo", "MetadataDB", "NewDocument"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    pages INTEGER,
    chunks INTEGER NOT NULL,
    added_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page INTEGER,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id);
"""


@dataclass(frozen=True)
class DocumentInfo:
    id: str
    name: str
    pages: int | None
    chunks: int
    sha256: str
    added_at: str

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "pages": self.pages, "chunks": self.chunks,
                "sha256": self.sha256, "added_at": self.added_at}


@dataclass(frozen=True)
class NewDocument:
    """A parsed, chunked document ready to be written: chunk rows are
    ``(page, char_start, char_end, text)``."""

    id: str
    name: str
    sha256: str
    format: str
    pages: int | None
    chunks: Sequence[tuple[int | None, int, int, str]]


class MetadataDB:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # One connection per collection, shared across threads under the collection lock.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def _transaction(self):
        return _Transaction(self._conn)

    # ------------------------------------------------------------ documents

    def find_by_sha(self, sha256: str) -> DocumentInfo | None:
        row = self._conn.execute(
            "SELECT id, name, pages, chunks, sha256, added_at FROM documents WHERE sha256 = ? AND status = 'ready'",
            (sha256,)).fetchone()
        return DocumentInfo(*row) if row else None

    def get_document(self, document_id: str) -> DocumentInfo | None:
        row = self._conn.execute(
            "SELECT id, name, pages, chunks, sha256, added_at FROM documents WHERE id = ? AND status = 'ready'",
            (document_id,)).fetchone()
        return DocumentInfo(*row) if row else None

    def list_documents(self) -> list[DocumentInfo]:
        rows = self._conn.execute(
            "SELECT id, name, pages, chunks, sha256, added_at FROM documents WHERE status = 'ready' "
            "ORDER BY added_at, name").fetchall()
        return [DocumentInfo(*row) for row in rows]

    def pending_documents(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT id FROM documents WHERE status != 'ready'")]

    def insert_pending(self, docs: Iterable[NewDocument]) -> tuple[list[DocumentInfo], list[list[int]]]:
        """Insert documents and chunks as pending in one transaction; returns the document
        records and, per document, the new chunk ids in chunk order."""
        infos, all_ids = [], []
        added_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._transaction():
            for doc in docs:
                self._conn.execute(
                    "INSERT INTO documents (id, name, sha256, format, pages, chunks, added_at, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (doc.id, doc.name, doc.sha256, doc.format, doc.pages, len(doc.chunks), added_at))
                ids = []
                for page, start, end, text in doc.chunks:
                    cur = self._conn.execute(
                        "INSERT INTO chunks (document_id, page, char_start, char_end, text) VALUES (?, ?, ?, ?, ?)",
                        (doc.id, page, start, end, text))
                    ids.append(int(cur.lastrowid))
                infos.append(DocumentInfo(doc.id, doc.name, doc.pages, len(doc.chunks), doc.sha256, added_at))
                all_ids.append(ids)
        return infos, all_ids

    def mark_ready(self, document_ids: Sequence[str]) -> None:
        with self._transaction():
            self._conn.executemany("UPDATE documents SET status = 'ready' WHERE id = ?",
                                   [(d,) for d in document_ids])

    def rename_document(self, document_id: str, name: str, titles: tuple[str, str] | None = None) -> bool:
        """Give a document a new source name; False if there is none. ``titles`` (old, new): chunks
        that start with the old title (``chunk_titles``) are made to start with the new one."""
        with self._transaction():
            if not self._conn.execute("UPDATE documents SET name = ? WHERE id = ?", (name, document_id)).rowcount:
                return False
            old, new = titles or ("", "")
            if old and old != new:
                for sep in ("\n", " > "):
                    self._conn.execute(
                        "UPDATE chunks SET text = ? || substr(text, ?) WHERE document_id = ? AND substr(text, 1, ?) = ?",
                        (new + sep, len(old + sep) + 1, document_id, len(old + sep), old + sep))
            return True

    def delete_documents(self, document_ids: Sequence[str]) -> list[int]:
        """Delete documents (any status) and their chunks; returns the deleted chunk ids."""
        with self._transaction():
            chunk_ids = []
            for doc_id in document_ids:
                chunk_ids += [r[0] for r in self._conn.execute(
                    "SELECT id FROM chunks WHERE document_id = ?", (doc_id,))]
                self._conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return chunk_ids

    # ------------------------------------------------------------ chunks

    def ready_chunk_ids(self) -> set[int]:
        return {r[0] for r in self._conn.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.status = 'ready'")}

    def chunk_texts(self, ids: Iterable[int]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        ids = list(ids)
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            part = ids[start:start + 500]
            out += self._conn.execute(
                f"SELECT id, text FROM chunks WHERE id IN ({','.join('?' * len(part))}) ORDER BY id", part).fetchall()
        return out

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, tuple[str, str, int | None, str]]:
        """``{chunk_id: (document_id, source name, page, text)}`` for chunks of ready documents."""
        out: dict[int, tuple[str, str, int | None, str]] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = self._conn.execute(
                "SELECT c.id, c.document_id, d.name, c.page, c.text FROM chunks c "
                "JOIN documents d ON d.id = c.document_id "
                f"WHERE d.status = 'ready' AND c.id IN ({','.join('?' * len(part))})", part).fetchall()
            out.update({r[0]: (r[1], r[2], r[3], r[4]) for r in rows})
        return out

    def document_format(self, document_id: str) -> str | None:
        row = self._conn.execute("SELECT format FROM documents WHERE id = ? AND status = 'ready'",
                                 (document_id,)).fetchone()
        return row[0] if row else None

    def page_chunks(self, document_id: str, page: int | None) -> list[tuple[int, int | None, int, int, str]]:
        """``(chunk id, page, char_start, char_end, text)`` of one page of a document (``None``: a file
        without pages), in reading order."""
        where = "page IS NULL" if page is None else "page = ?"
        return self._conn.execute(
            f"SELECT id, page, char_start, char_end, text FROM chunks WHERE document_id = ? AND {where} ORDER BY id",
            (document_id,) if page is None else (document_id, page)).fetchall()

    def chunk_page(self, document_id: str, chunk_id: int) -> tuple[bool, int | None]:
        """``(found, page)`` of a chunk of that document."""
        row = self._conn.execute("SELECT page FROM chunks WHERE id = ? AND document_id = ?",
                                 (chunk_id, document_id)).fetchone()
        return (row is not None, row[0] if row else None)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``/``ROLLBACK`` (autocommit mode otherwise)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
