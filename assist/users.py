"""Users, their API tokens and their browser sign-ins, in one SQLite file under the data directory.

Passwords are stored only as argon2 hashes (argon2-cffi); API tokens and sign-in cookies are
random secrets shown once and stored only as SHA-256 digests (they are long and random, so a
fast digest is enough, and lookups stay a single indexed query). Every check reads the file,
so removing a user or revoking a token takes effect on the very next request.

Users given on the command line (``--auth alice:pw1``) live in memory only: their passwords
are hashed at start-up and never written; their tokens and sign-ins are kept in the file like
anyone else's and stop working when the user is no longer configured.

Users that come from outside (``assist.identity``: a company directory, an OpenID provider) are
rows too, with their ``source`` (``ldap`` / ``oidc``; ``local`` for password users), no password,
and the groups their last sign-in listed. A name belongs to one source: a directory user never
takes over a local account of the same name, nor the other way round (``SignInConflict``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from assist.db import open_db, write_transaction
from assist.errors import UnknownUser, UserError
from assist.identity.errors import SignInConflict
from assist.sessions import LOCAL_OWNER  # the single user of a server without sign-in

__all__ = ["User", "UserInfo", "TokenInfo", "UserStore", "ROLES", "LOCAL_OWNER", "TOKEN_PREFIX",
           "MIN_PASSWORD_LENGTH", "SOURCES", "check_name"]

ROLES = ("admin", "user")
TOKEN_PREFIX = "dcu_"
MIN_PASSWORD_LENGTH = 8
SIGN_IN_SECONDS = 7 * 24 * 3600
SOURCES = ("local", "ldap", "oidc")  # where a user's password is checked
_NAME = re.compile(r"^[\w.@-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, user TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, last_used_at TEXT);
CREATE INDEX IF NOT EXISTS tokens_by_user ON tokens(user);
CREATE TABLE IF NOT EXISTS sign_ins (
    digest TEXT PRIMARY KEY, user TEXT NOT NULL, expires_at REAL NOT NULL);
"""
# Columns added after the first release: added to older files when they are opened.
_LATER_COLUMNS = {"source": "TEXT NOT NULL DEFAULT 'local'", "groups": "TEXT NOT NULL DEFAULT '[]'",
                  "external_id": "TEXT NOT NULL DEFAULT ''"}


@dataclass(frozen=True)
class User:
    """Who is calling: what every route and UI handler asks for (see ``webui.auth.current_user``)."""

    name: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    created_at: str
    source: str  # "local" (users add), "command line" (--auth), "ldap" or "oidc"
    tokens: int
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    label: str
    created_at: str
    last_used_at: str | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _conflict(name: str, other: str) -> str:
    return (f"The name {name} belongs to {other} on this server, so this sign-in cannot use it. "
            "Ask an administrator to rename or remove one of them.")


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise UserError(f"{name!r} is not a valid user name: use 1-64 letters, digits, '.', '_', '@' or '-'.")
    if name == LOCAL_OWNER:
        raise UserError(f"'{LOCAL_OWNER}' is reserved for the single user of a server without sign-in; "
                        "choose another name.")
    return name


class UserStore:
    """Users from ``path`` plus in-memory ``memory_users`` ((name, password) pairs, e.g. ``--auth``)."""

    def __init__(self, path: str | Path, memory_users: Iterable[tuple[str, str]] = (),
                 hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.RLock()
        try:
            self._conn = open_db(path, _SCHEMA, wal=False)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise UserError(f"Cannot open the users file {self.path} ({exc}). Check that the data directory "
                            "is writable.") from exc
        self._add_later_columns()
        self._memory = {check_name(name): self._hasher.hash(password) for name, password in memory_users}
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))  # equal work for unknown names

    def _write(self):
        return write_transaction(self._conn, self._lock)

    def _add_later_columns(self) -> None:
        with self._write() as conn:
            have = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
            for column, kind in _LATER_COLUMNS.items():
                if column not in have:
                    conn.execute(f"ALTER TABLE users ADD COLUMN {column} {kind}")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- users ------------------------------------------------------------------------------

    def has_users(self) -> bool:
        """True when anyone can sign in: this is what turns sign-in on for the whole server."""
        return bool(self._memory) or bool(self._query("SELECT 1 FROM users LIMIT 1"))

    def get(self, name: str) -> User | None:
        if name in self._memory:
            return User(name, "user")
        rows = self._query("SELECT role FROM users WHERE name = ?", (name,))
        return User(name, rows[0][0]) if rows else None

    def list(self) -> list[UserInfo]:
        counts = dict(self._query("SELECT user, COUNT(*) FROM tokens GROUP BY user"))
        rows = self._query("SELECT name, role, created_at, source, groups FROM users ORDER BY name")
        listed = [UserInfo(name, role, created, source, counts.get(name, 0), tuple(json.loads(groups)))
                  for name, role, created, source, groups in rows]
        listed += [UserInfo(name, "user", "", "command line", counts.get(name, 0)) for name in sorted(self._memory)]
        return listed

    def add(self, name: str, password: str, role: str = "user", replace: bool = False) -> User:
        name = check_name(name)
        if role not in ROLES:
            raise UserError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
        if len(password or "") < MIN_PASSWORD_LENGTH:
            raise UserError(f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters.")
        if name in self._memory:
            raise UserError(f"{name} is given with --auth on the command line; remove it there first.")
        hashed = self._hasher.hash(password)
        with self._write() as conn:
            exists = conn.execute("SELECT source FROM users WHERE name = ?", (name,)).fetchone()
            if exists and (not replace or exists[0] != "local"):
                raise UserError(f"A user named {name} exists already" + (
                    f" (signing in through {exists[0]})." if exists[0] != "local" else "."))
            conn.execute("INSERT OR REPLACE INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                         (name, role, hashed, _now()))
        return User(name, role)

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's browser sign-ins end (API tokens stay: revoke them apart)."""
        if len(password or "") < MIN_PASSWORD_LENGTH:
            raise UserError(f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters.")
        source = self.source_of(name)
        if source not in (None, "local"):
            raise UserError(f"{name} signs in through {source}; change the password there.")
        hashed = self._hasher.hash(password)
        with self._write() as conn:
            if conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (hashed, name)).rowcount == 0:
                raise UnknownUser(f"No user named {name} in {self.path}.")
            conn.execute("DELETE FROM sign_ins WHERE user = ?", (name,))

    def remove(self, name: str) -> None:
        """Delete the user with their tokens and sign-ins (effective at once)."""
        with self._write() as conn:
            if conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                raise UnknownUser(f"No user named {name} in {self.path}.")
            conn.execute("DELETE FROM tokens WHERE user = ?", (name,))
            conn.execute("DELETE FROM sign_ins WHERE user = ?", (name,))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password is right, else None (same work for unknown names)."""
        name = (name or "").strip()
        stored = self._memory.get(name)
        if stored is None:
            rows = self._query("SELECT password_hash FROM users WHERE name = ? AND source = 'local'", (name,))
            stored = rows[0][0] if rows else None
        try:
            self._hasher.verify(stored or self._dummy, password or "")
        except (VerificationError, InvalidHashError):
            return None
        if stored is None:
            return None
        if name not in self._memory and self._hasher.check_needs_rehash(stored):
            with self._write() as conn:  # parameters were raised since this hash was made
                conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (self._hasher.hash(password), name))
        return self.get(name)

    # -- users from outside (assist.identity) -------------------------------------------------

    def source_of(self, name: str) -> str | None:
        """``local``, ``command line``, ``ldap`` or ``oidc``; None for an unknown name."""
        if name in self._memory:
            return "command line"
        rows = self._query("SELECT source FROM users WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def groups_of(self, name: str) -> tuple[str, ...]:
        """The groups of ``name``'s last sign-in from outside (none for local users)."""
        rows = self._query("SELECT groups FROM users WHERE name = ?", (name,))
        return tuple(json.loads(rows[0][0])) if rows else ()

    def sign_in_from_outside(self, name: str, source: str, groups: Iterable[str], role: str,
                             external_id: str = "") -> User:
        """Create (first sign-in) or refresh (groups, role) the ``source`` user ``name``.

        Refuses a name that is a local user or comes from another source, and, when both are
        known, an ``external_id`` (an OpenID subject) other than the one first seen.
        """
        name = check_name(name)
        if source not in SOURCES[1:] or role not in ROLES:
            raise UserError(f"Unknown source {source!r} or role {role!r}.")
        if name in self._memory:
            raise SignInConflict(_conflict(name, "a local account (--auth)"), source)
        groups_json = json.dumps(sorted(set(groups)), ensure_ascii=False)
        with self._write() as conn:
            row = conn.execute("SELECT source, external_id FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO users (name, role, password_hash, created_at, source, groups, external_id) "
                             "VALUES (?, ?, '', ?, ?, ?, ?)", (name, role, _now(), source, groups_json, external_id))
            elif row[0] != source:
                raise SignInConflict(_conflict(name, "a local account" if row[0] == "local" else f"an {row[0]} account"),
                                     source)
            elif row[1] and external_id and row[1] != external_id:
                raise SignInConflict(_conflict(name, f"another {source} account"), source)
            else:
                conn.execute("UPDATE users SET role = ?, groups = ?, external_id = ? WHERE name = ?",
                             (role, groups_json, row[1] or external_id, name))
        return User(name, role)

    # -- API tokens --------------------------------------------------------------------------

    def create_token(self, name: str, label: str = "") -> tuple[TokenInfo, str]:
        """A new token for ``name``: (its info, the secret to show once; only its digest is kept)."""
        if self.get(name) is None:
            raise UnknownUser(f"No user named {name}.")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(secrets.token_hex(6), name, (label or "").strip()[:80], _now(), None)
        with self._write() as conn:
            conn.execute("INSERT INTO tokens (id, user, digest, label, created_at) VALUES (?, ?, ?, ?, ?)",
                         (info.id, name, _digest(secret), info.label, info.created_at))
        return info, secret

    def tokens(self, name: str) -> list[TokenInfo]:
        rows = self._query("SELECT id, user, label, created_at, last_used_at FROM tokens WHERE user = ? "
                           "ORDER BY created_at, id", (name,))
        return [TokenInfo(*row) for row in rows]

    def revoke_token(self, name: str, token_id: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM tokens WHERE id = ? AND user = ?", (token_id, name)).rowcount == 0:
                raise UnknownUser(f"{name} has no token {token_id!r}.")

    def user_for_token(self, secret: str) -> User | None:
        if not secret.startswith(TOKEN_PREFIX):
            return None
        rows = self._query("SELECT id, user, last_used_at FROM tokens WHERE digest = ?", (_digest(secret),))
        if not rows:
            return None
        token_id, name, last_used = rows[0]
        user = self.get(name)
        now = _now()
        if user is not None and (last_used or "")[:16] != now[:16]:  # a write at most once a minute per token
            with self._write() as conn:
                conn.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, token_id))
        return user

    # -- browser sign-ins ----------------------------------------------------------------------

    def start_sign_in(self, name: str, seconds: int = SIGN_IN_SECONDS) -> str:
        """The secret for a sign-in cookie of ``name``, valid for ``seconds``."""
        secret = secrets.token_urlsafe(32)
        with self._write() as conn:
            conn.execute("DELETE FROM sign_ins WHERE expires_at < ?", (time.time(),))
            conn.execute("INSERT INTO sign_ins (digest, user, expires_at) VALUES (?, ?, ?)",
                         (_digest(secret), name, time.time() + seconds))
        return secret

    def user_for_sign_in(self, secret: str) -> User | None:
        rows = self._query("SELECT user FROM sign_ins WHERE digest = ? AND expires_at > ?",
                           (_digest(secret), time.time()))
        return self.get(rows[0][0]) if rows else None

    def end_sign_in(self, secret: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sign_ins WHERE digest = ?", (_digest(secret),))
