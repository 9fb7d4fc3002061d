"""Saved conversations as files: Markdown and JSON export, validated JSON import, titles.

The JSON export is also the import format, so a conversation moves between servers (or back
after a reinstall) unchanged. Import accepts that file, a bare list of messages, or an
OpenAI-style ``{"messages": [...]}`` body, and explains exactly what is wrong otherwise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from assist.errors import InvalidImport

__all__ = ["SessionData", "thinking_seconds", "tool_fields", "auto_title", "to_markdown", "to_json", "parse_import",
           "file_stem", "FORMAT_NAME", "MAX_TITLE_CHARS"]

FORMAT_NAME = "dcu-chat.session"
FORMAT_VERSION = 1
MAX_TITLE_CHARS = 60
MAX_IMPORT_MESSAGES = 10_000
MAX_IMPORT_CHARS = 20_000_000
ROLES = ("user", "assistant", "tool")  # tool: a tool's result, after the assistant turn that called it
_TOOL_KEYS = ("tool_call_id", "name", "status")


@dataclass
class SessionData:
    """A conversation as stored: ``messages`` are ``{"role", "content", optional "stats"}``; an assistant
    turn that called tools has ``tool_calls`` (``[{"id", "name", "arguments"}]``, ``name`` as
    ``server.tool``, arguments JSON text), each followed by a ``tool`` message (``tool_call_id``,
    ``name``, ``status``; the result as content)."""

    id: str
    owner: str
    title: str
    created_at: str
    updated_at: str
    system_prompt: str = ""
    messages: list[dict] = field(default_factory=list)
    message_count: int = 0

    def summary(self) -> dict:
        return {"id": self.id, "title": self.title, "created_at": self.created_at,
                "updated_at": self.updated_at, "messages": self.message_count}

    def to_dict(self) -> dict:
        return {**self.summary(), "system_prompt": self.system_prompt,
                "messages": [dict(m) for m in self.messages]}


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
        for call in message.get("tool_calls") or []:
            lines += [f"**Called `{call['name']}`** `{call['arguments']}`", ""]
        if message.get("stats"):
            lines += [f"<sub>{message['stats']}</sub>", ""]
    return "\n".join(lines).rstrip() + "\n"


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
            "system_prompt": session.system_prompt, "messages": [_clean(m) for m in session.messages]}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _clean(message: dict) -> dict:
    out = {"role": message["role"], "content": message["content"]}
    if message.get("stats"):
        out["stats"] = message["stats"]
    if message.get("thinking_s") is not None:
        out["thinking_s"] = message["thinking_s"]
    out.update(tool_fields(message, 0))
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


def parse_import(raw: str | bytes | dict | list) -> dict:
    """Validate an imported conversation; returns ``{"title", "system_prompt", "messages"}``.

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
    clean: list[dict] = []
    for number, message in enumerate(messages, start=1):
        role, content, stats = _message(message, number)
        if role == "system":
            system_prompt = system_prompt or content  # OpenAI-style bodies carry it as a message
            continue
        thinking = thinking_seconds(message.get("thinking_s"))
        clean.append({"role": role, "content": content, **({"stats": stats} if stats else {}),
                      **({"thinking_s": thinking} if thinking is not None else {}),
                      **tool_fields({**message, "role": role}, number)})
    if not clean:
        raise InvalidImport("The conversation has no user or assistant messages to import.")
    return {"title": title, "system_prompt": system_prompt, "messages": clean}


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
