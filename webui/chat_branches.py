"""Branches in the Chat tab: ‹n/m› arrows on a message, regenerate any answer, edit any question.

Every version of a message is kept (``assist.session_tree``); the chat shows one branch. A message
that has other versions ends with arrows (‹ 2/3 ›) that show the previous or next version and the
branch below it; every answer ends with ↻ (a new version of that answer) and, when it has others,
× (delete this version). Questions are edited in place (the Chatbot's own pencil, ``editable``):
the conversation continues from the edited question as a new branch.

The arrows are links inside the message (``#dcu-branch:<verb>:<message id>``). A small script in
the page (``HEAD``) turns a click on one into a click on a hidden button whose event reads the
action (its ``js`` puts the link's action into the first input), so the action reaches
``BranchHandlers.act`` with the tab's inputs like any other Chat event.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import gradio as gr

from assist.session_tree import new_message_id, valid_message_id
from webui.i18n import register, text

__all__ = ["footers", "BranchHandlers", "build_branch_controls", "HEAD", "CSS", "ACTION_JS", "SCROLL_TO_HIT", "VERBS"]

VERBS = ("prev", "next", "regen", "delete")

register(
    en={"branch_prev": "Previous version", "branch_next": "Next version", "branch_regen": "Regenerate this answer",
        "branch_delete": "Delete this version", "branch_gone": "That message is no longer in this conversation.",
        "search_found": "found here"},
    zh={"branch_prev": "上一个版本", "branch_next": "下一个版本", "branch_regen": "重新生成这个回答",
        "branch_delete": "删除这个版本", "branch_gone": "这条消息已不在当前会话中。",
        "search_found": "搜索结果"},
)

CSS = """
.dcu-branch { display: inline-flex; gap: 0.45rem; align-items: center; font-size: 0.85em; opacity: 0.8;
              user-select: none; }
.dcu-branch a { text-decoration: none !important; padding: 0 0.2rem; cursor: pointer; }
.dcu-hit { font-size: 0.8em; padding: 0.05rem 0.4rem; border-radius: 0.3rem;
           background: var(--color-accent-soft); color: var(--body-text-color); }
"""

# After a search hit opened a conversation: bring the message found into view (once the
# Chatbot has rendered and done its own scrolling to the end).
SCROLL_TO_HIT = """() => { setTimeout(() => {
  const hit = document.querySelector("#chatbot .dcu-hit");
  if (hit) hit.scrollIntoView({block: "center"});
}, 500); }"""

# Capture phase: the link's default (Gradio opens links in a new tab) never happens.
# The Chatbot's edit box starts from the message as displayed: drop the chips and arrows, show "<" again.
HEAD = """<script>
new MutationObserver(() => {
  document.querySelectorAll("#chatbot textarea.edit-textarea:not([data-dcu-clean])").forEach((box) => {
    box.dataset.dcuClean = "1";
    const clean = box.value.replace(/\\s*<span class="dcu-(files|branch)">[\\s\\S]*$/, "").replaceAll("&lt;", "<");
    if (clean !== box.value) {
      box.value = clean;
      box.dispatchEvent(new Event("input", {bubbles: true}));
    }
  });
}).observe(document.documentElement, {childList: true, subtree: true});
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#dcu-branch:"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  window.dcuBranchAction = link.getAttribute("href").slice("#dcu-branch:".length);
  const button = document.querySelector("#branch-go");
  if (button) button.click();
}, true);
</script>"""

ACTION_JS = "(...args) => { args[0] = window.dcuBranchAction || ''; window.dcuBranchAction = ''; return args; }"


def _link(verb: str, message_id: str, label: str, title: str) -> str:
    return f'<a href="#dcu-branch:{verb}:{message_id}" title="{html.escape(title)}">{label}</a>'


def _nav(message_id: str, position: tuple[int, int] | None, lang: str, answer: bool) -> str:
    parts = []
    if position:
        number, count = position
        parts += [_link("prev", message_id, "‹", text("branch_prev", lang)), f"<span>{number}/{count}</span>",
                  _link("next", message_id, "›", text("branch_next", lang))]
    if answer:
        parts.append(_link("regen", message_id, "↻", text("branch_regen", lang)))
        if position:
            parts.append(_link("delete", message_id, "×", text("branch_delete", lang)))
    return f'<span class="dcu-branch">{" ".join(parts)}</span>' if parts else ""


def _turn_end(history: list[dict], start: int) -> int:
    """The last message shown for the answer that starts at ``start`` (tool results are inside blocks)."""
    end = start
    for index in range(start, len(history)):
        if history[index]["role"] == "user":
            break
        if history[index]["role"] == "assistant":
            end = index
    return end


def footers(history: list[dict], positions: dict[str, tuple[int, int]], lang: str = "en",
            streaming: bool = False, focus: str | None = None) -> dict[int, str]:
    """History index -> the arrows to show at the end of that message (see the module docstring).

    Questions with other versions get arrows; every finished answer gets ↻ (not while one streams);
    the message ``focus`` (a search hit) is marked."""
    out: dict[int, str] = {}
    last_question = max((i for i, m in enumerate(history) if m["role"] == "user"), default=-1)
    for index, message in enumerate(history):
        message_id = message.get("id")
        if not message_id:
            continue
        if message["role"] == "user" and positions.get(message_id):
            out[index] = _nav(message_id, positions[message_id], lang, answer=False)
        elif message["role"] == "assistant" and index and history[index - 1]["role"] == "user":
            if streaming and index > last_question:
                continue  # the answer being written: nothing to act on yet
            end = _turn_end(history, index)
            nav = _nav(message_id, positions.get(message_id), lang, answer=True)
            out[end] = out.get(end, "") + nav
    for index, message in enumerate(history):
        if focus and message.get("id") == focus:
            out[index] = out.get(index, "") + f' <span class="dcu-hit">{text("search_found", lang)}</span>'
    return out


_FOOTER = re.compile(r'\s*<span class="dcu-(files|images|branch)">[\s\S]*$')  # chips, thumbnails, then arrows


def edited_text(value) -> str:
    """The question as typed from the Chatbot's edit box (which starts from the displayed message)."""
    return _FOOTER.sub("", value if isinstance(value, str) else str(value or "")).replace("&lt;", "<")


def parse_action(value: str | None) -> tuple[str, str] | None:
    """``"prev:<id>"`` -> ("prev", id); None for anything else."""
    verb, _, message_id = str(value or "").partition(":")
    return (verb, message_id) if verb in VERBS and valid_message_id(message_id) else None


class BranchHandlers:
    """The branch events of the Chat tab, over its ``ChatHandlers`` (``chat``)."""

    def __init__(self, chat) -> None:
        self.chat = chat

    def edit(self, evt: gr.EditData, system_prompt, temperature, top_p, top_k, max_new_tokens, repetition_penalty,
             seed, history, thinking: bool = True, model: str | None = None, tools: list[str] | None = None,
             request: gr.Request | None = None) -> Iterator[tuple]:
        """A question edited in place: the conversation continues from it as a new branch."""
        from webui.adapters import display_with_origins

        history = list(history or [])
        _, origins = display_with_origins(history)
        index = origins[evt.index] if isinstance(evt.index, int) and evt.index < len(origins) else None
        new_text = edited_text(evt.value)
        if index is None or history[index]["role"] != "user" or not new_text.strip() \
                or new_text == history[index]["content"]:
            yield self.chat.display(history, request), history
            return
        old = history[index]
        edited = {**{k: v for k, v in old.items() if k in ("attachments", "images")}, "role": "user", "content": new_text,
                  "id": new_message_id()}
        yield from self.chat.answer_from([*history[:index], edited], system_prompt, temperature, top_p, top_k,
                                         max_new_tokens, repetition_penalty, seed, thinking, model, tools, request)

    def act(self, action, system_prompt, temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed,
            history, thinking: bool = True, model: str | None = None, tools: list[str] | None = None,
            request: gr.Request | None = None) -> Iterator[tuple]:
        """A click on ‹ › ↻ or × under a message."""
        history = list(history or [])
        parsed = parse_action(action)
        index = next((i for i, m in enumerate(history) if parsed and m.get("id") == parsed[1]), None)
        if parsed is None or index is None:
            yield self.chat.display(history, request), history
            return
        verb, message_id = parsed
        if verb == "regen":
            yield from self.chat.answer_from(history[:index], system_prompt, temperature, top_p, top_k,
                                             max_new_tokens, repetition_penalty, seed, thinking, model, tools,
                                             request)
            return
        sessions = self.chat.sessions
        if sessions is None:
            yield self.chat.display(history, request), history
            return
        shown = sessions.move(request, message_id, verb)
        yield self.chat.display(shown, request), shown


def build_branch_controls() -> tuple[gr.Textbox, gr.Button]:
    """The hidden action box and button the page script clicks (in the current Blocks context)."""
    action = gr.Textbox(visible=False, elem_id="branch-action")
    go = gr.Button("branch", visible="hidden", elem_id="branch-go")
    return action, go
