"""The SQLite habits of assist's stores (sessions, users, collection access), in one place.

Each store holds one connection shared by its threads under a lock, in autocommit mode; writes
that must land together go through ``write_transaction`` (``BEGIN IMMEDIATE`` … ``COMMIT``, or
``ROLLBACK`` on any error), so a crash never leaves half a change behind.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["open_db", "write_transaction"]


def open_db(path: str | Path, schema: str, *, wal: bool = True) -> sqlite3.Connection:
    """Open (creating folders and tables) the database at ``path`` (":memory:" for none on disk).

    Raises ``OSError`` or ``sqlite3.DatabaseError``: each store words its own message.
    """
    in_memory = str(path) == ":memory:"
    if not in_memory:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
    if wal and not in_memory:
        conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.executescript(schema)
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """Everything written inside lands together or not at all."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
