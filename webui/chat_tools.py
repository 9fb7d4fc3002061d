"""Tools in the Chat tab: the Tools selector, answers through the tool loop, Allow / Deny.

``ChatTools.answer`` runs ``assist.tools.loop`` for one answer and grows the chat history from its
events (``assist.tools.transcript``): the calls and results are shown as collapsible blocks
(``webui.tool_blocks``) while the answer streams, and saved with the conversation. A call to a
server the admin did not mark ``trusted`` waits for the user: the block shows Allow / Deny
buttons (Chatbot options), whose ``option_select`` event sets the decision this answer waits on
(``ToolApprovals``), with a timeout; Stop ends the wait like any other part of the answer.

The selector lists servers ("time": all its tools) and single tools ("time.get_current_time");
the admin's MCP servers start selected, built-in tools (``sandbox.run_python``) are opt-in. Tools
are listed when the page loads (starting the servers), and a server that cannot start says why
under the selector.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import gradio as gr

from assist.quotas import metered
from assist.tools.errors import ToolError
from assist.tools.loop import LoopDone, ToolCallEvent, run_tool_loop
from assist.tools.naming import ToolSet
from assist.tools.registry import ToolRegistry
from assist.tools.transcript import Transcript, engine_messages
from webui.adapters import literal_html, session_key, stats_line, ui_error
from webui.i18n import language_of, register, t, text
from webui.tool_blocks import ALLOW, DENY

__all__ = ["ChatTools", "ToolApprovals", "build_tools_selector"]

register(
    en={"tools": "Tools", "tools_info": "Which tools the model may call in this conversation",
        "tools_all": "{server} (all its tools)", "tools_problem": "⚠️ `{server}` is not available: {why}",
        "tools_step_limit": "Stopped after {n} rounds of tool calls (the limit); ask again to continue.",
        "tools_unavailable": "Tools not available for this answer: {why}"},
    zh={"tools": "工具", "tools_info": "本次对话中模型可以调用的工具",
        "tools_all": "{server}（全部工具）", "tools_problem": "⚠️ `{server}` 不可用：{why}",
        "tools_step_limit": "工具调用已达 {n} 轮上限，已停止；可再次提问继续。",
        "tools_unavailable": "本次回答无法使用的工具：{why}"},
)


class ToolApprovals:
    """The call each browser session waits on, and the user's decision (thread-safe)."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[str, threading.Event, list[str]]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, call_id: str, cancel: threading.Event, timeout: float) -> str:
        """"allow", "deny" or "timeout" ("deny" also when the answer was stopped)."""
        event, decision = threading.Event(), []
        with self._lock:
            self._waiting[key] = (call_id, event, decision)
        try:
            waited = 0.0
            while not event.wait(0.1):
                waited += 0.1
                if cancel.is_set():
                    return DENY
                if waited >= timeout:
                    return "timeout"
            return decision[0]
        finally:
            with self._lock:
                if self._waiting.get(key, (None,))[0] == call_id:
                    del self._waiting[key]

    def decide(self, key: str, value: str) -> bool:
        """``value`` is "allow:<call id>" or "deny:<call id>"; False when that call is not waiting."""
        choice, _, call_id = str(value).partition(":")
        with self._lock:
            waiting = self._waiting.get(key)
        if waiting is None or waiting[0] != call_id or choice not in (ALLOW, DENY):
            return False
        waiting[2].append(choice)
        waiting[1].set()
        return True


class ChatTools:
    """The Chat tab's side of the tools: selection, the loop, approvals."""

    def __init__(self, registry: ToolRegistry, approvals: ToolApprovals | None = None) -> None:
        self.registry = registry
        self.approvals = approvals or ToolApprovals()

    def answer(self, engine, history: list[dict], system_prompt: str, params, key: str, user: str | None,
               cancel: threading.Event, lang: str, selected: list[str], quotas=None) -> Iterator[list[dict]]:
        """Grow ``history`` (ending with the empty answer message) through the tool loop, yielding it."""
        try:
            catalog = self.registry.select(selected, strict=False)
        except ToolError as exc:
            raise ui_error(exc) from exc
        tools = ToolSet(catalog.tools)
        messages = engine_messages(history[:-1], system_prompt, tools)
        transcript = Transcript([history[-1]])
        earlier = history[:-1]

        def approve(call: ToolCallEvent) -> str:
            return self.approvals.wait(key, call.id, cancel, self.registry.config.approval_timeout_s)

        for event in run_tool_loop(engine, messages, tools, self.registry, params, cancel=cancel, approve=approve,
                                   session_id=key, meter=lambda s: metered(quotas, user, s)):
            transcript.feed(event)
            if isinstance(event, LoopDone):
                self._finish(transcript, event, lang, "; ".join(catalog.problems.values()))
            yield [*earlier, *transcript.messages]

    def _finish(self, transcript: Transcript, done: LoopDone, lang: str, notice: str) -> None:
        """The final answer's stats line; a step-limit note; servers that could not be used."""
        answer = transcript.answer
        if done.finish_reason == "step_limit":
            answer["content"] += ("\n\n" if answer["content"] else "") + text("tools_step_limit", lang, n=done.steps)
        line = stats_line(done.stats, lang)
        if notice:
            line = text("tools_unavailable", lang, why=notice) + (f" · {line}" if line else "")
        answer["stats"] = line

    def decide(self, evt: gr.SelectData, request: gr.Request = None) -> None:
        """The Allow / Deny buttons under a waiting call."""
        self.approvals.decide(session_key(request), getattr(evt, "value", ""))

    # -- the selector ------------------------------------------------------------------------

    def choices(self, lang: str = "en") -> tuple[list[tuple[str, str]], str]:
        """(selector choices, status Markdown), listing every server's tools (starting them)."""
        catalog = self.registry.catalog()
        choices, lines = [], []
        for server in self.registry.server_names():
            choices.append((text("tools_all", lang, server=server), server))
            for tool in (x for x in catalog.tools if x.server == server):
                choices.append((tool.qualified, tool.qualified))
                lines.append(f"- `{tool.qualified}` — {literal_html(tool.description.splitlines()[0][:200])}"
                             if tool.description else f"- `{tool.qualified}`")
            if server in catalog.problems:
                lines.append(text("tools_problem", lang, server=server, why=literal_html(catalog.problems[server])))
        return choices, "\n".join(lines)


def build_tools_selector(chat_tools: ChatTools):
    """The Tools selector and its status line (in the current Blocks context); returns the selector."""
    registry = chat_tools.registry
    initial = [(text("tools_all", "en", server=s), s) for s in registry.server_names()]
    with gr.Accordion(t("tools"), open=False, elem_id="chat-tools-panel"):
        selector = gr.Dropdown(initial, value=registry.default_selection(), multiselect=True, label=t("tools"),
                               info=t("tools_info"), elem_id="chat-tools")
        status = gr.Markdown(elem_id="chat-tools-status")

    def refresh(current, request: gr.Request = None):
        choices, lines = chat_tools.choices(language_of(request))
        known = {value for _, value in choices}
        return gr.update(choices=choices, value=[v for v in current or [] if v in known]), lines

    root = gr.context.Context.root_block
    if root is not None:
        root.load(refresh, [selector], [selector, status], api_visibility="private")
    return selector
