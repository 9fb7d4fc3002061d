"""Who may use which document collection: owners, each owner's names, and sharing.

``rag`` stores collections under storage names and knows nothing of users; this table maps
``(owner, name)`` to a storage name and records who else may read or write it. Every user has
their own namespace (alice's ``manuals`` and bob's ``manuals`` are two collections), so a name
never tells one user what another has. A collection is shared with named users, with groups
(``group:NAME``: every user whose last sign-in through the company directory or OpenID provider
listed NAME; compared without regard to case) or with everyone (``*``), in mode ``read`` (search,
ask, list documents) or ``write`` (also upload and delete documents); only the owner deletes or
re-shares it. One SQLite file under the data
directory, one connection guarded by a lock, writes in transactions.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from assist.db import open_db, write_transaction
from assist.errors import AccessError, CollectionNameTaken, InvalidSharing
from assist.identity.groups import grantee, group_of_grantee

__all__ = ["CollectionAccess", "Grant", "Sharing", "EVERYONE", "MODES"]

EVERYONE = "*"
MODES = ("read", "write")
_RANK = {"read": 1, "write": 2, "owner": 3}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    storage TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (owner, name)
);
CREATE TABLE IF NOT EXISTS shares (
    storage TEXT NOT NULL REFERENCES collections(storage) ON DELETE CASCADE,
    grantee TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('read', 'write')),
    PRIMARY KEY (storage, grantee)
);
CREATE INDEX IF NOT EXISTS shares_by_grantee ON shares(grantee);
"""


def _grantees(user: str, groups: Iterable[str]) -> tuple[str, ...]:
    """Whom a share must name to reach ``user``: them, everyone, or one of their groups."""
    return (user, EVERYONE, *dict.fromkeys(grantee(g.lower()) for g in groups))


def _who(count: int) -> str:
    return f"s.grantee IN ({', '.join('?' * count)})"


def _checked_grantee(name: str) -> str:
    """A user name as given, or ``group:NAME`` with NAME in lower case; ``InvalidSharing`` otherwise."""
    group = group_of_grantee(name)
    if group is not None and group.strip() and group.strip() != EVERYONE and len(name) <= 300:
        return grantee(group.strip().lower())
    if group is None and name and name != EVERYONE and ":" not in name and len(name) <= 128:
        return name
    raise InvalidSharing(f"{name!r} is neither a user name nor group:NAME; list user names or groups "
                         "(group:engineers), or set \"all\" for everyone.")


@dataclass(frozen=True)
class Grant:
    """One collection as one user may use it."""

    storage: str  # the rag collection that holds the documents
    owner: str
    name: str  # the owner's name for it
    mode: str  # "owner", "write" or "read"

    @property
    def can_write(self) -> bool:
        return self.mode in ("owner", "write")

    def label(self, user: str) -> str:
        """How ``user`` refers to it: the bare name for their own, ``owner:name`` for a shared one."""
        return self.name if self.owner == user else f"{self.owner}:{self.name}"


@dataclass(frozen=True)
class Sharing:
    everyone: str | None = None  # the mode everyone has, or None
    users: dict[str, str] = field(default_factory=dict)  # user (or group:NAME) -> mode

    def to_dict(self) -> dict:
        return {"all": self.everyone is not None, "all_mode": self.everyone,
                "users": [{"user": u, "mode": m} for u, m in sorted(self.users.items())]}


class CollectionAccess:
    """The ownership and sharing table in ``path`` (created, with its folder, when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self._conn = open_db(self.path, _SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise AccessError(f"Cannot open the collection access table {self.path} ({exc}). Check that the "
                              "data directory is writable.") from exc

    # -- reading ---------------------------------------------------------------------------

    def own(self, owner: str, name: str) -> Grant | None:
        with self._lock:
            row = self._conn.execute("SELECT storage FROM collections WHERE owner = ? AND name = ?",
                                     (owner, name)).fetchone()
        return Grant(row[0], owner, name, "owner") if row else None

    def shared(self, user: str, owner: str, name: str, groups: Iterable[str] = ()) -> Grant | None:
        """``owner``'s collection ``name`` as ``user`` (in ``groups``) may use it, or None when it is not
        shared with them."""
        if owner == user:
            return self.own(user, name)
        who = _grantees(user, groups)
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.storage, s.mode FROM collections c JOIN shares s ON s.storage = c.storage "
                f"WHERE c.owner = ? AND c.name = ? AND {_who(len(who))}", (owner, name, *who)).fetchall()
        if not rows:
            return None
        return Grant(rows[0][0], owner, name, max((m for _, m in rows), key=_RANK.__getitem__))

    def visible(self, user: str, groups: Iterable[str] = ()) -> list[Grant]:
        """The user's own collections, then those shared with them or their groups (by owner, then name)."""
        who = _grantees(user, groups)
        with self._lock:
            own = self._conn.execute("SELECT storage, name FROM collections WHERE owner = ? ORDER BY name",
                                     (user,)).fetchall()
            rows = self._conn.execute(
                "SELECT c.storage, c.owner, c.name, s.mode FROM collections c JOIN shares s ON s.storage = c.storage "
                f"WHERE {_who(len(who))} AND c.owner != ? ORDER BY c.owner, c.name", (*who, user)).fetchall()
        grants = [Grant(storage, user, name, "owner") for storage, name in own]
        best: dict[str, Grant] = {}
        for storage, owner, name, mode in rows:
            if storage not in best or _RANK[mode] > _RANK[best[storage].mode]:
                best[storage] = Grant(storage, owner, name, mode)
        return grants + list(best.values())

    def sharing(self, storage: str) -> Sharing:
        with self._lock:
            rows = self._conn.execute("SELECT grantee, mode FROM shares WHERE storage = ?", (storage,)).fetchall()
        users = {g: m for g, m in rows if g != EVERYONE}
        return Sharing(next((m for g, m in rows if g == EVERYONE), None), users)

    def by_storage(self, storage: str) -> tuple[str, str] | None:
        """``(owner, name)`` of a storage name, or None."""
        with self._lock:
            row = self._conn.execute("SELECT owner, name FROM collections WHERE storage = ?", (storage,)).fetchone()
        return (row[0], row[1]) if row else None

    def registered(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._conn.execute("SELECT storage FROM collections")}

    def counts_by_owner(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT owner, COUNT(*) FROM collections GROUP BY owner").fetchall()
        return dict(rows)

    def storages_of(self, owner: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT storage FROM collections WHERE owner = ?", (owner,))]

    # -- writing ---------------------------------------------------------------------------

    def register(self, owner: str, name: str, storage: str) -> Grant:
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO collections (storage, owner, name, created_at) VALUES (?, ?, ?, ?)",
                             (storage, owner, name, datetime.now(timezone.utc).isoformat(timespec="seconds")))
        except sqlite3.IntegrityError as exc:
            raise CollectionNameTaken(f"You already have a collection named {name!r}.") from exc
        return Grant(storage, owner, name, "owner")

    def forget(self, storage: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM collections WHERE storage = ?", (storage,))

    def set_sharing(self, storage: str, everyone: str | None, users: dict[str, str]) -> Sharing:
        """Replace who else may use ``storage``: ``everyone`` (a mode or None) and named ``users``
        (user names, or ``group:NAME``)."""
        for mode in [everyone, *users.values()]:
            if mode is not None and mode not in MODES:
                raise InvalidSharing(f"Unknown sharing mode {mode!r}; use 'read' or 'write'.")
        users = {_checked_grantee(u): mode for u, mode in users.items()}
        with self._write() as conn:
            conn.execute("DELETE FROM shares WHERE storage = ?", (storage,))
            entries = [*([(EVERYONE, everyone)] if everyone else []), *users.items()]
            conn.executemany("INSERT INTO shares (storage, grantee, mode) VALUES (?, ?, ?)",
                             [(storage, grantee, mode) for grantee, mode in entries])
        return self.sharing(storage)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self):
        return write_transaction(self._conn, self._lock)
