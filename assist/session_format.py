"""Saved conversations as files: Markdown and JSON export, validated JSON import, titles.

The JSON export is also the import format, so a conversation moves between servers (or back
after a reinstall) unchanged: every message of every branch with its ``id`` and ``parent_id``,
and the ``active_leaf`` (version 2; version-1 files, a bare list of messages and OpenAI-style
``{"messages": [...]}`` bodies import as one branch). Markdown is for reading: the branch shown.
Import explains exactly what is wrong with a file it refuses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from assist.errors import InvalidImport
from engine.errors import ConfigError
from engine.images import check_images

__all__ = ["SessionData", "thinking_seconds", "tool_fields", "attachment_fields", "image_fields", "auto_title",
           "to_markdown",
           "to_json", "file_stem", "FORMAT_NAME", "MAX_TITLE_CHARS"]

FORMAT_NAME = "dcu-chat.session"
FORMAT_VERSION = 2  # 2: the message tree (id, parent_id, active_leaf)
MAX_TITLE_CHARS = 60
ROLES = ("user", "assistant", "tool")  # tool: a tool's result, after the assistant turn that called it
_TOOL_KEYS = ("tool_call_id", "name", "status")
MAX_ATTACHMENTS = 20


@dataclass
class SessionData:
    """A conversation as stored: ``messages`` (the branch shown) are ``{"id", "parent_id", "role",
    "content", optional "stats"}``; an assistant turn that called tools has ``tool_calls``
    (``[{"id", "name", "arguments"}]``, ``name`` as ``server.tool``, arguments JSON text), each
    followed by a ``tool`` message (``tool_call_id``, ``name``, ``status``; the result as content).
    ``tree`` holds every message of every branch, oldest first; ``active_leaf`` ends the branch shown."""

    id: str
    owner: str
    title: str
    created_at: str
    updated_at: str
    system_prompt: str = ""
    messages: list[dict] = field(default_factory=list)
    message_count: int = 0
    active_leaf: str | None = None
    tree: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"id": self.id, "title": self.title, "created_at": self.created_at,
                "updated_at": self.updated_at, "messages": self.message_count}

    def to_dict(self) -> dict:
        return {**self.summary(), "system_prompt": self.system_prompt,
                "messages": [dict(m) for m in self.messages], "active_leaf": self.active_leaf,
                "tree": [dict(m) for m in self.tree]}


def auto_title(text: str) -> str:
    """A title from the first user message: first line, whitespace squeezed, cut at a word."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    line = re.sub(r"\s+", " ", line)
    if len(line) <= MAX_TITLE_CHARS:
        return line
    cut = line[:MAX_TITLE_CHARS]
    # Cut at a space when there is one late enough; CJK text has none, so cut at the limit.
    if " " in cut[MAX_TITLE_CHARS // 2:]:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip(" ,.;:，。；：") + "…"


def file_stem(title: str, fallback: str = "conversation") -> str:
    """A file name stem from a title: letters (any script), digits, dashes; no path tricks."""
    stem = re.sub(r"[^\w\-]+", "-", title or "", flags=re.UNICODE).strip("-_")[:50]
    return stem or fallback


def to_markdown(session: SessionData) -> str:
    lines = [f"# {session.title or 'Conversation'}", "",
             f"_Exported from dcu-chat · created {session.created_at} · updated {session.updated_at}_", ""]
    if session.system_prompt:
        lines += ["**System prompt:**", "", _quote(session.system_prompt), ""]
    for message in session.messages:
        if message["role"] == "tool":
            lines += [f"### Result of `{message.get('name', 'tool')}`", "", _fenced(message["content"]), ""]
            continue
        lines += [f"## {message['role'].capitalize()}", "", message["content"], ""]
        if message.get("attachments"):  # the files' names; their text is in the JSON export
            lines += ["_Attached: " + ", ".join(_file_label(a) for a in message["attachments"]) + "_", ""]
        if message.get("images"):  # the pictures themselves are in the JSON export
            lines += [f"_Images: {len(message['images'])}_", ""]
        for call in message.get("tool_calls") or []:
            lines += [f"**Called `{call['name']}`** `{call['arguments']}`", ""]
        if message.get("stats"):
            lines += [f"<sub>{message['stats']}</sub>", ""]
    return "\n".join(lines).rstrip() + "\n"


def _file_label(attachment: dict) -> str:
    name = re.sub(r"([\\`*_\[\]<>])", r"\\\1", str(attachment.get("name") or "file"))
    pages = attachment.get("pages")
    return f"{name} ({pages} pages)" if isinstance(pages, int) and pages else name


def _fenced(text: str) -> str:
    """A code block that ``text`` cannot close (its fence is longer than any backtick run in it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines())


def to_json(session: SessionData) -> str:
    data = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "title": session.title,
            "created_at": session.created_at, "updated_at": session.updated_at,
            "system_prompt": session.system_prompt, "active_leaf": session.active_leaf,
            "messages": [_clean(m) for m in session.tree or session.messages]}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _clean(message: dict) -> dict:
    out = {"id": message.get("id"), "parent_id": message.get("parent_id"), "role": message["role"],
           "content": message["content"]}
    if message.get("stats"):
        out["stats"] = message["stats"]
    if message.get("thinking_s") is not None:
        out["thinking_s"] = message["thinking_s"]
    out.update(tool_fields(message, 0))
    if message.get("attachments"):
        out["attachments"] = message["attachments"]
    if message.get("images"):
        out["images"] = message["images"]
    return out


def tool_fields(message: dict, number: int) -> dict:
    """The tool parts of a message, checked: an assistant's ``tool_calls``, a tool result's id, name, status.

    ``tool_calls`` may also come in OpenAI's shape (``{"id", "function": {"name", "arguments"}}``);
    they are kept as ``{"id", "name", "arguments"}`` with the arguments as JSON text.
    """
    out: dict = {}
    where = f"Message {number}" if number else "A message"
    calls = message.get("tool_calls") if message.get("role") == "assistant" else None
    if calls:
        if not isinstance(calls, list):
            raise InvalidImport(f"{where}: \"tool_calls\" must be a list of calls.")
        clean = []
        for call in calls:
            function = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
            name = (call.get("name") if isinstance(call, dict) else None) or function.get("name")
            arguments = (call.get("arguments") if isinstance(call, dict) else None) or function.get("arguments") or "{}"
            if isinstance(arguments, dict):
                arguments = json.dumps(arguments, ensure_ascii=False)
            if not isinstance(name, str) or not name or not isinstance(arguments, str):
                raise InvalidImport(f"{where}: each tool call needs a \"name\" and JSON \"arguments\".")
            clean.append({"id": str(call.get("id") or ""), "name": name, "arguments": arguments})
        out["tool_calls"] = clean
    if message.get("role") == "tool":
        for key in _TOOL_KEYS:
            value = message.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidImport(f"{where}: \"{key}\" of a tool result must be text.")
            if value:
                out[key] = value
    return out


def thinking_seconds(value) -> float | None:
    """How long an answer's thinking took, as stored: a non-negative number of seconds, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e7:
        return None
    return round(float(value), 1)


def attachment_fields(message: dict, number: int) -> list[dict]:
    """A message's attachments, checked: at most ``MAX_ATTACHMENTS`` objects of text, numbers and flags."""
    items = message.get("attachments") or []
    where = f"Message {number}" if number else "A message"
    if not isinstance(items, list) or len(items) > MAX_ATTACHMENTS:
        raise InvalidImport(f"{where}: \"attachments\" must be a list of at most {MAX_ATTACHMENTS} files.")
    clean = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str | int | float | bool)) for k, v in item.items()):
            raise InvalidImport(f"{where}: each attachment needs a \"name\" and plain values.")
        clean.append(dict(item))
    return clean


def image_fields(message: dict, number: int) -> list[str]:
    """A question's images, checked: data: URLs of pictures within ``engine.images``' limits; only on user turns."""
    images = message.get("images") or []
    if not images:
        return []
    where = f"Message {number}" if number else "A message"
    if message.get("role") != "user":
        raise InvalidImport(f"{where}: only user messages may carry \"images\".")
    try:
        return check_images(images, max(number - 1, 0))
    except ConfigError as exc:
        raise InvalidImport(f"{where}: {exc}") from exc
