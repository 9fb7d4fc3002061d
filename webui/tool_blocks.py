"""How a tool call shows in the Chat: a collapsible "Called `time.get_current_time` {…}" block.

Each call of an assistant turn becomes one Chatbot message with ``metadata`` (a title, and status
"pending" while it waits or runs, so Gradio shows it as in progress): the arguments, then the
result. Results are untrusted text (an MCP server, a program's output): they are shown inside a
code fence longer than any backtick run in them, so no Markdown or HTML in a result can take
effect. A call waiting for approval carries Allow / Deny ``options`` (buttons under the last
message; clicking one fires the Chatbot's ``option_select`` with ``allow:<id>`` / ``deny:<id>``).
"""

from __future__ import annotations

import json
import re

from webui.i18n import register, text

__all__ = ["tool_blocks", "fenced", "ALLOW", "DENY"]

ALLOW, DENY = "allow", "deny"
_TITLE_ARGS = 80  # characters of the arguments in a block's title (all of them are in the block)

register(
    en={"tool_called": "Called", "tool_waiting": "waiting for your approval", "tool_running": "running…",
        "tool_arguments": "Arguments", "tool_result": "Result", "tool_error": "Error", "tool_denied": "Not run",
        "tool_cancelled": "Stopped", "tool_allow": "Allow", "tool_deny": "Deny",
        "tool_ask": "This server is not trusted by the admin: **Allow** runs the call, **Deny** tells the model "
                    "it was not allowed."},
    zh={"tool_called": "调用了", "tool_waiting": "等待你的批准", "tool_running": "运行中…",
        "tool_arguments": "参数", "tool_result": "结果", "tool_error": "错误", "tool_denied": "未运行",
        "tool_cancelled": "已停止", "tool_allow": "允许", "tool_deny": "拒绝",
        "tool_ask": "管理员未将此服务器设为可信：**允许**则执行调用，**拒绝**则告诉模型未获允许。"},
)


def fenced(body: str, language: str = "text") -> str:
    """A code block that ``body`` cannot close: shown literally, whatever it contains."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{body}\n{fence}"


def _arguments(raw: str) -> tuple[str, str]:
    """(one-line arguments for the title, pretty arguments for the block)."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return str(raw), str(raw)
    line = json.dumps(value, ensure_ascii=False)
    return line, json.dumps(value, ensure_ascii=False, indent=2)


def _title(name: str, line: str, lang: str) -> str:
    from webui.adapters import literal_html

    short = line if len(line) <= _TITLE_ARGS else line[:_TITLE_ARGS - 1] + "…"
    # The name in a code span; the arguments as text (``<`` cannot open a tag, backticks no code span).
    return f"{text('tool_called', lang)} `{name}` " + literal_html(short.replace("`", "'"))


def tool_blocks(message: dict, results: dict[str, dict], lang: str = "en") -> list[dict]:
    """The Chatbot messages for the calls of assistant ``message``; ``results``: tool messages by call id."""
    blocks = []
    for call in message.get("tool_calls") or []:
        result = results.get(call.get("id")) or {"status": "running", "content": ""}
        status = result.get("status") or "ok"
        line, pretty = _arguments(call.get("arguments", "{}"))
        title = _title(call["name"], line, lang)
        parts = [f"**{text('tool_arguments', lang)}**", fenced(pretty, "json")]
        options = None
        if status == "pending":
            title += f" — {text('tool_waiting', lang)}"
            parts.append(text("tool_ask", lang))
            options = [{"label": text("tool_allow", lang), "value": f"{ALLOW}:{call.get('id')}"},
                       {"label": text("tool_deny", lang), "value": f"{DENY}:{call.get('id')}"}]
        elif status == "running":
            title += f" — {text('tool_running', lang)}"
        else:
            label = {"ok": "tool_result", "error": "tool_error", "denied": "tool_denied",
                     "cancelled": "tool_cancelled"}.get(status, "tool_result")
            parts += [f"**{text(label, lang)}**", fenced(result.get("content") or "")]
        metadata = {"title": title, "status": "pending" if status in ("pending", "running") else "done"}
        if result.get("duration_s"):
            metadata["duration"] = float(result["duration_s"])
        block = {"role": "assistant", "content": "\n\n".join(parts), "metadata": metadata}
        if options:
            block["options"] = options
        blocks.append(block)
    return blocks
