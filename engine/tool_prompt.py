"""Tools in the prompt: through the model's chat template, or a fallback for templates without.

Templates of tool-trained models (Qwen, Llama 3.1+, Mistral, Hermes) take ``tools=`` and render
``role: "tool"`` messages and assistant ``tool_calls`` themselves. Other templates (and the
completion format of base models) know none of that, so ``prepare_messages`` folds it into
plain messages: the tool list and the calling convention go into the system prompt (Hermes
style, which ``tool_calls.ToolCallParser`` reads), earlier calls become assistant text and tool
results become user turns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

__all__ = ["template_supports_tools", "prepare_messages", "fallback_tool_prompt"]

_INSTRUCTIONS = (
    "You can call functions (tools) to help answer. Their JSON schemas:\n<tools>\n{tools}\n</tools>\n"
    "To call a function, answer with only this, once per call:\n"
    '<tool_call>\n{{"name": "<function name>", "arguments": {{<arguments as JSON>}}}}\n</tool_call>\n'
    "When a function's result is given to you, use it to answer. If no function helps, answer directly."
)


def template_supports_tools(chat_template: str | None) -> bool:
    """Whether a chat template renders tools itself (it reads a ``tools`` variable)."""
    return bool(chat_template) and "tools" in chat_template


def fallback_tool_prompt(tools: Sequence[dict]) -> str:
    lines = "\n".join(json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools)
    return _INSTRUCTIONS.format(tools=lines)


def _call_text(call: dict) -> str:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        pass  # shown to the model as it was sent
    body = json.dumps({"name": function.get("name"), "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _folded(messages: Sequence[dict], tools: Sequence[dict]) -> list[dict]:
    prompt = fallback_tool_prompt(tools) if tools else ""
    out: list[dict] = []
    if messages and messages[0]["role"] == "system":
        out.append({"role": "system", "content": "\n\n".join(p for p in (messages[0]["content"], prompt) if p)})
        messages = messages[1:]
    elif prompt:
        out.append({"role": "system", "content": prompt})
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            text = "\n".join([content.strip()] * bool(content.strip()) + [_call_text(c) for c in message["tool_calls"]])
            out.append({"role": "assistant", "content": text})
        elif role == "tool":
            result = f"<tool_response>\n{content}\n</tool_response>"
            if out and out[-1]["role"] == "user" and out[-1].get("_tool"):
                out[-1]["content"] += "\n" + result  # results of parallel calls share one turn
            else:
                out.append({"role": "user", "content": result, "_tool": True})
        else:
            out.append({"role": role, "content": content})
    return [{"role": m["role"], "content": m["content"]} for m in out]


def prepare_messages(messages: Sequence[dict], tools: Sequence[dict], chat_template: str | None
                     ) -> tuple[list[dict], list[dict] | None]:
    """(messages, tools for the template): unchanged when the template does tools, folded otherwise.

    Conversations without tools and tool messages pass through untouched.
    """
    uses_tools = bool(tools) or any(m["role"] == "tool" or m.get("tool_calls") for m in messages)
    if not uses_tools:
        return list(messages), None
    if template_supports_tools(chat_template):
        if _NINE_CHAR_IDS in (chat_template or ""):
            messages = _with_nine_char_ids(messages)
        return list(messages), list(tools) or None
    return _folded(messages, tools), None


# Mistral's templates refuse any other call id ("Tool call IDs should be alphanumeric strings with
# length 9!"), while OpenAI clients send back ids like "call_…" (ours, or their own).
_NINE_CHAR_IDS = "length 9"


def _nine(call_id: str) -> str:
    if len(call_id) == 9 and call_id.isalnum():
        return call_id
    return hashlib.sha1(call_id.encode()).hexdigest()[:9]  # the same id maps the same in call and result


def _with_nine_char_ids(messages: Sequence[dict]) -> list[dict]:
    out = []
    for message in messages:
        message = dict(message)
        if message.get("tool_calls"):
            message["tool_calls"] = [{**call, "id": _nine(str(call.get("id") or ""))} for call in message["tool_calls"]]
        if message["role"] == "tool":
            message["tool_call_id"] = _nine(str(message.get("tool_call_id") or ""))
        out.append(message)
    return out
