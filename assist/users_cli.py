"""``python app.py users ...``: manage the users file from a terminal.

    users add NAME [--role admin]     asks for the password twice (or reads one line from stdin)
    users list                        name, role, tokens, source (local, command line, ldap, oidc), groups
    users passwd NAME                 a new password (asked like 'add'); ends the user's browser sign-ins
    users remove NAME                 also deletes the user's tokens and ends their sign-ins
    users token NAME [--label TEXT]   prints a new API token once (only its hash is kept)
    users tokens NAME                 the user's tokens (ids, labels, dates; never the secrets)
    users revoke NAME TOKEN_ID
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from assist.audit import AuditLog
from assist.errors import AssistError
from assist.users import UserStore

__all__ = ["run_users_command", "read_password"]

_USAGE = "usage: python app.py users add|list|passwd|remove|token|tokens|revoke [NAME] [TOKEN_ID] [--role admin] [--label TEXT]"


def read_password(stdin: TextIO | None = None) -> str:
    """Twice with getpass on a terminal; one line from stdin otherwise (for scripts)."""
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise AssistError("The passwords differ; nothing was changed.")
    return first


def run_users_command(words: list[str], store: UserStore, audit: AuditLog | None = None, role: str = "user",
                      label: str = "", stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    action, names = (words[0], words[1:]) if words else ("", [])
    needs = {"add": 1, "passwd": 1, "remove": 1, "token": 1, "tokens": 1, "revoke": 2, "list": 0}
    if action not in needs or len(names) != needs[action]:
        print(_USAGE, file=sys.stderr)
        return 2

    def record(event: str, **details) -> None:
        if audit is not None:
            audit.record(event, actor="terminal", **details)

    try:
        if action == "list":
            for info in store.list():
                groups = ",".join(info.groups) or "-"
                print(f"{info.name}\t{info.role}\t{info.tokens} token(s)\t{info.source}\t{groups}\t{info.created_at}",
                      file=out)
        elif action == "add":
            user = store.add(names[0], read_password(stdin), role=role)
            record("user.added", user=user.name, role=user.role)
            print(f"Added {user.name} ({user.role}) to {store.path}.", file=out)
        elif action == "passwd":
            store.set_password(names[0], read_password(stdin))
            record("user.password_changed", user=names[0])
            print(f"New password for {names[0]}; their browser sign-ins have ended.", file=out)
        elif action == "remove":
            store.remove(names[0])
            record("user.removed", user=names[0])
            print(f"Removed {names[0]}; their tokens and sign-ins no longer work.", file=out)
        elif action == "token":
            info, secret = store.create_token(names[0], label)
            record("token.created", user=info.user, token_id=info.id, label=info.label)
            print(secret, file=out)
            print(f"API token {info.id} for {info.user}: shown only now; send it as 'Authorization: Bearer <token>'.",
                  file=sys.stderr)
        elif action == "tokens":
            for info in store.tokens(names[0]):
                print(f"{info.id}\t{info.label or '-'}\tcreated {info.created_at}\tlast used {info.last_used_at or 'never'}",
                      file=out)
        else:
            store.revoke_token(names[0], names[1])
            record("token.revoked", user=names[0], token_id=names[1])
            print(f"Revoked token {names[1]} of {names[0]}.", file=out)
    except AssistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
