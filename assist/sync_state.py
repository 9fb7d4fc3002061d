"""What folder sync remembers across restarts, in SQLite (``<data_dir>/sync.sqlite3``).

``sources``: which collection (by its storage name) follows which folder, for whom, how often,
and the report of its last pass. ``files``: per followed file (path relative to the folder) the
document it became, the SHA-256 of the bytes that were indexed (or that failed), the size and
mtime seen then, and the parser's message when it could not be read. Every change of one file
is one transaction, so a crash mid-pass leaves the rows of the files already done, and the
next pass carries on from there.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from assist.db import open_db, write_transaction

__all__ = ["Source", "FileRow", "SyncState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    storage TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    folder TEXT NOT NULL,
    interval_s REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'api',
    created_at TEXT NOT NULL,
    last_pass TEXT
);
CREATE TABLE IF NOT EXISTS files (
    storage TEXT NOT NULL REFERENCES sources(storage) ON DELETE CASCADE,
    path TEXT NOT NULL,
    document_id TEXT,
    sha256 TEXT,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (storage, path)
);
"""


@dataclass(frozen=True)
class Source:
    storage: str  # the collection's storage name in rag.store
    owner: str
    folder: str  # resolved, absolute
    interval_s: float
    origin: str = "api"  # api | config
    created_at: str = ""


@dataclass(frozen=True)
class FileRow:
    path: str  # relative to the folder, '/'-separated
    document_id: str | None  # None: never indexed (it failed)
    sha256: str | None
    mtime_ns: int
    size: int
    error: str | None = None  # the reader's message when its current bytes could not be indexed


class SyncState:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = open_db(self.path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- sources ---------------------------------------------------------------------------

    def put_source(self, source: Source) -> None:
        """Follow (or re-point) ``source.storage``; a new folder keeps the file rows: the next pass
        compares them with what the new folder holds (same relative path and bytes: nothing to do)."""
        with write_transaction(self._conn, self._lock) as conn:
            conn.execute(
                "INSERT INTO sources (storage, owner, folder, interval_s, origin, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(storage) DO UPDATE SET owner = excluded.owner, folder = excluded.folder, "
                "interval_s = excluded.interval_s, origin = excluded.origin",
                (source.storage, source.owner, source.folder, source.interval_s, source.origin, source.created_at))

    def drop_source(self, storage: str) -> bool:
        with write_transaction(self._conn, self._lock) as conn:
            return conn.execute("DELETE FROM sources WHERE storage = ?", (storage,)).rowcount > 0

    def sources(self) -> list[Source]:
        with self._lock:
            rows = self._conn.execute("SELECT storage, owner, folder, interval_s, origin, created_at FROM sources "
                                      "ORDER BY created_at").fetchall()
        return [Source(*row) for row in rows]

    def source(self, storage: str) -> Source | None:
        with self._lock:
            row = self._conn.execute("SELECT storage, owner, folder, interval_s, origin, created_at FROM sources "
                                     "WHERE storage = ?", (storage,)).fetchone()
        return Source(*row) if row else None

    def set_last_pass(self, storage: str, report: dict) -> None:
        with write_transaction(self._conn, self._lock) as conn:
            conn.execute("UPDATE sources SET last_pass = ? WHERE storage = ?", (json.dumps(report), storage))

    def last_pass(self, storage: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT last_pass FROM sources WHERE storage = ?", (storage,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # -- files -----------------------------------------------------------------------------

    def files(self, storage: str) -> dict[str, FileRow]:
        with self._lock:
            rows = self._conn.execute("SELECT path, document_id, sha256, mtime_ns, size, error FROM files "
                                      "WHERE storage = ?", (storage,)).fetchall()
        return {row[0]: FileRow(*row) for row in rows}

    def put_file(self, storage: str, row: FileRow) -> None:
        with write_transaction(self._conn, self._lock) as conn:
            conn.execute("INSERT OR REPLACE INTO files (storage, path, document_id, sha256, mtime_ns, size, error) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (storage, row.path, row.document_id, row.sha256, row.mtime_ns, row.size, row.error))

    def move_file(self, storage: str, old_path: str, row: FileRow) -> None:
        """A rename: the old path's row becomes ``row`` in one transaction."""
        with write_transaction(self._conn, self._lock) as conn:
            conn.execute("DELETE FROM files WHERE storage = ? AND path = ?", (storage, old_path))
            conn.execute("INSERT OR REPLACE INTO files (storage, path, document_id, sha256, mtime_ns, size, error) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (storage, row.path, row.document_id, row.sha256, row.mtime_ns, row.size, row.error))

    def drop_file(self, storage: str, path: str) -> None:
        with write_transaction(self._conn, self._lock) as conn:
            conn.execute("DELETE FROM files WHERE storage = ? AND path = ?", (storage, path))
