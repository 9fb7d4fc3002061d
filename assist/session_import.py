"""Importing a conversation file: the JSON export (a whole tree), or a plain list of messages.

A file whose messages carry ``parent_id`` is a tree (Export JSON, version 2): every message needs
an ``id``, each parent must come before its children, and ``active_leaf`` (default: the last
message) names the branch to show. Anything else (version-1 exports, a bare list, an OpenAI-style
``{"messages": [...]}`` body) is one branch in order. Every refusal names the problem and where.
"""

from __future__ import annotations

import json

from assist.errors import InvalidImport
from assist.session_format import (
    FORMAT_NAME,
    ROLES,
    attachment_fields,
    auto_title,
    image_fields,
    thinking_seconds,
    tool_fields,
)
from assist.session_tree import valid_message_id

__all__ = ["parse_import", "MAX_IMPORT_MESSAGES", "MAX_IMPORT_CHARS"]

MAX_IMPORT_MESSAGES = 10_000
MAX_IMPORT_CHARS = 20_000_000


def parse_import(raw: str | bytes | dict | list) -> dict:
    """Validate an imported conversation; returns ``{"title", "system_prompt", "messages", "active_leaf"}``
    (messages with ``id`` and ``parent_id`` when the file is a tree).

    Raises ``InvalidImport`` naming the first problem (and where it is) in plain words.
    """
    data = _load(raw)
    if isinstance(data, list):
        data = {"messages": data}
    if not isinstance(data, dict):
        raise InvalidImport("The file must contain a JSON object with a \"messages\" list "
                            "(as written by Export JSON).")
    if data.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise InvalidImport(f"This file has format {data['format']!r}; only {FORMAT_NAME!r} files "
                            "(made by Export JSON) can be imported.")
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise InvalidImport("The file has no \"messages\" list, so it holds no conversation to import.")
    if len(messages) > MAX_IMPORT_MESSAGES:
        raise InvalidImport(f"The conversation has {len(messages)} messages; at most "
                            f"{MAX_IMPORT_MESSAGES} can be imported.")
    system_prompt = _text_field(data, "system_prompt")
    title = auto_title(_text_field(data, "title"))
    tree = any(isinstance(m, dict) and "parent_id" in m for m in messages)
    clean: list[dict] = []
    for number, message in enumerate(messages, start=1):
        role, content, stats = _message(message, number)
        if role == "system":
            system_prompt = system_prompt or content  # OpenAI-style bodies carry it as a message
            continue
        thinking = thinking_seconds(message.get("thinking_s"))
        clean.append({"role": role, "content": content, **({"stats": stats} if stats else {}),
                      **({"thinking_s": thinking} if thinking is not None else {}),
                      **tool_fields({**message, "role": role}, number),
                      **({"attachments": attachment_fields(message, number)} if message.get("attachments") else {}),
                      **({"images": image_fields({**message, "role": role}, number)} if message.get("images") else {}),
                      **(_place(message, number, clean) if tree else {})})
    if not clean:
        raise InvalidImport("The conversation has no user or assistant messages to import.")
    leaf = data.get("active_leaf") if tree else None
    if leaf is not None and leaf not in {m["id"] for m in clean}:
        raise InvalidImport(f"\"active_leaf\" {leaf!r} is not the id of a message in the file.")
    return {"title": title, "system_prompt": system_prompt, "messages": clean, "active_leaf": leaf}


def _place(message: dict, number: int, earlier: list[dict]) -> dict:
    """``id`` and ``parent_id`` of a message of a tree: a new id, and a parent written before it."""
    message_id, parent = message.get("id"), message.get("parent_id")
    if not valid_message_id(message_id):
        raise InvalidImport(f"Message {number} needs an \"id\" of 1-64 letters, digits, '_' or '-'.")
    known = {m["id"] for m in earlier}
    if message_id in known:
        raise InvalidImport(f"Message {number} has the id {message_id!r} of an earlier message.")
    if parent is not None and parent not in known:
        raise InvalidImport(f"Message {number}: its \"parent_id\" {parent!r} is not an earlier message of the file.")
    return {"id": message_id, "parent_id": parent}


def _load(raw):
    if isinstance(raw, (dict, list)):
        return raw
    if isinstance(raw, bytes):
        if len(raw) > MAX_IMPORT_CHARS:
            raise InvalidImport(f"The file is larger than {MAX_IMPORT_CHARS // 1_000_000} MB; "
                                "split the conversation or export it again.")
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidImport("The file is not UTF-8 text; export the conversation as JSON again.") from exc
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidImport("The file is empty; choose a JSON file made by Export JSON.")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidImport(f"The file is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg}).") from exc


def _text_field(data: dict, name: str) -> str:
    value = data.get(name) or ""
    if not isinstance(value, str):
        raise InvalidImport(f"\"{name}\" must be text (got {type(value).__name__}).")
    return value


def _message(message, number: int) -> tuple[str, str, str]:
    if not isinstance(message, dict):
        raise InvalidImport(f"Message {number} must be an object with \"role\" and \"content\".")
    role = message.get("role")
    if role not in (*ROLES, "system"):
        raise InvalidImport(f"Message {number} has role {role!r}; use \"user\", \"assistant\" or \"tool\".")
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts: keep the text parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is None and (role == "tool" or message.get("tool_calls")):
        content = ""
    if not isinstance(content, str):
        raise InvalidImport(f"Message {number} has no text \"content\".")
    stats = message.get("stats") or ""
    if not isinstance(stats, str):
        raise InvalidImport(f"Message {number}: \"stats\" must be text.")
    return role, content, stats
