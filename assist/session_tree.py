"""A conversation as a tree of messages: every edit and every regenerated answer is kept as a branch.

Each message has an ``id`` and a ``parent_id`` (``None`` for a first message); siblings (same
parent) are the versions of one place in the conversation, in the order they were written. The
conversation shows, and the model reads, one branch: the path from a first message down to the
conversation's *active leaf*. These are pure functions over a list of message dicts in creation
order, so the store (``assist.sessions``), the import check and the Chat tab share one reading.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

__all__ = ["new_message_id", "valid_message_id", "path_to", "children_of", "siblings", "branch_positions",
           "subtree", "newest_leaf", "after_delete"]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_message_id() -> str:
    """A fresh message id (unique within a conversation; random, so imports never collide)."""
    return uuid.uuid4().hex


def valid_message_id(value) -> bool:
    """Ids travel in files, URLs and the page: letters, digits, ``_`` and ``-``, at most 64."""
    return isinstance(value, str) and bool(_ID.match(value))


def path_to(nodes: Sequence[dict], leaf: str | None) -> list[dict]:
    """The branch ending at ``leaf``, first message first ([] for ``None`` or an unknown id)."""
    by_id = {n["id"]: n for n in nodes}
    path, current, seen = [], by_id.get(leaf) if leaf else None, set()
    while current is not None and current["id"] not in seen:  # a cycle cannot come from the store; be safe
        seen.add(current["id"])
        path.append(current)
        current = by_id.get(current.get("parent_id"))
    return path[::-1]


def children_of(nodes: Sequence[dict]) -> dict[str | None, list[str]]:
    """Parent id (``None``: the first messages) -> its children's ids, oldest first."""
    out: dict[str | None, list[str]] = {}
    for node in nodes:
        out.setdefault(node.get("parent_id"), []).append(node["id"])
    return out


def siblings(nodes: Sequence[dict], message_id: str) -> list[str]:
    """The versions of the place ``message_id`` holds (itself included), oldest first."""
    parent = next((n.get("parent_id") for n in nodes if n["id"] == message_id), None)
    return children_of(nodes).get(parent, [message_id])


def branch_positions(nodes: Sequence[dict], path: Sequence[dict]) -> dict[str, tuple[int, int]]:
    """For each message of ``path`` that has other versions: ``(its number, how many)``, e.g. (2, 3)."""
    kids = children_of(nodes)
    out = {}
    for node in path:
        versions = kids.get(node.get("parent_id"), [])
        if len(versions) > 1 and node["id"] in versions:
            out[node["id"]] = (versions.index(node["id"]) + 1, len(versions))
    return out


def subtree(nodes: Sequence[dict], message_id: str) -> set[str]:
    """``message_id`` and every message written after it on its branches."""
    kids, found, todo = children_of(nodes), set(), [message_id]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(kids.get(current, []))
    return found


def newest_leaf(nodes: Sequence[dict], message_id: str, active_at: dict[str, str] | None = None) -> str:
    """The end of the branch to show below ``message_id``: the leaf under it that was shown last
    (``active_at``: leaf id -> when it was last the active leaf), else the one written last."""
    active_at = active_at or {}
    members = subtree(nodes, message_id)
    kids = children_of(nodes)
    order = {n["id"]: i for i, n in enumerate(nodes)}
    leaves = [m for m in members if not kids.get(m)]
    return max(leaves, key=lambda m: (active_at.get(m) or "", order.get(m, -1)))


def after_delete(nodes: Sequence[dict], message_id: str) -> str | None:
    """Where a conversation goes when the branch starting at ``message_id`` is deleted: a neighbouring
    version (the one before it, else the one after), else the message it answered (``None``: empty)."""
    versions = siblings(nodes, message_id)
    index = versions.index(message_id) if message_id in versions else 0
    others = versions[:index][::-1] + versions[index + 1:]
    if others:
        return others[0]
    return next((n.get("parent_id") for n in nodes if n["id"] == message_id), None)
