"""The Chat tab: streaming answers with stop, regenerate, edit-last and clear, beside a
sidebar of saved conversations; every edited question and regenerated answer is kept as a
branch (``webui.chat_branches``).

Handlers are plain generators over a per-browser-session history (``gr.State``), so several
users never see each other's messages; the engine's queue orders their turns. The history
holds engine messages plus an optional ``stats`` line per answer, shown under the reply only, and
an ``id`` per message (given when it is written), by which the saved tree knows it.
With a session store, each history is saved (``webui.chat_sessions``): the user's message
before the answer starts, the answer every few seconds while it streams, and the final (or
stopped, partial) answer at the end, so a crash or a closed tab loses at most seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import gradio as gr

from assist.attachments import AttachedPrompt, ChatAttachments, has_attachments
from assist.chat_defaults import system_prompt_for
from assist.errors import AssistError, QuotaExceeded
from assist.quotas import metered
from assist.session_tree import new_message_id
from assist.tools.errors import ToolError
from assist.tools.transcript import engine_messages, readable
from engine.config import SamplingParams
from engine.errors import EngineError
from engine.models import ModelRegistry
from engine.reasoning import ReasoningSplitter
from engine.stats import GenerationStats
from rag.errors import RagError
from webui.adapters import CancelRegistry, display_history, session_key, stats_line, ui_error
from webui.auth import current_owner
from webui.chat_branches import footers
from webui.chat_files import ChatFiles
from webui.chat_images import ChatImages
from webui.chat_sessions import ChatSessions
from webui.chat_tools import ChatTools
from webui.docs_format import cited_link, file_preview_url
from webui.i18n import register, text
from webui.model_picker import loading_notices

__all__ = ["ChatHandlers", "build_chat_tab"]

register(
    en={
        "chat_input": "Message", "chat_placeholder": "Ask anything… (Enter to send, Shift+Enter for a new line)",
        "send": "Send", "stop": "Stop", "regenerate": "Regenerate", "edit_last": "Edit last", "clear": "Clear",
        "parameters": "Parameters", "system_prompt": "System prompt", "temperature": "Temperature (0 = greedy)",
        "top_p": "Top-p", "top_k": "Top-k", "max_new_tokens": "Max new tokens",
        "repetition_penalty": "Repetition penalty", "seed": "Seed (-1 = random)",
        "chat_empty": "Start a conversation: type a message below.",
        "nothing_to_regenerate": "There is no answer to regenerate yet.",
        "nothing_to_edit": "There is no message to edit yet.", "empty_message": "Type a message first.",
        "chatbot": "Conversation", "thinking_switch": "Thinking",
        "thinking_info": "Reasoning models think before they answer; off answers directly (where the model supports it).",
    },
    zh={
        "chat_input": "消息", "chat_placeholder": "输入任何问题…（Enter 发送，Shift+Enter 换行）",
        "send": "发送", "stop": "停止", "regenerate": "重新生成", "edit_last": "编辑上一条", "clear": "清空",
        "parameters": "参数", "system_prompt": "系统提示词", "temperature": "温度（0 = 贪心）",
        "top_p": "Top-p", "top_k": "Top-k", "max_new_tokens": "最大生成长度",
        "repetition_penalty": "重复惩罚", "seed": "随机种子（-1 = 随机）",
        "chat_empty": "开始对话：在下方输入消息。",
        "nothing_to_regenerate": "还没有可以重新生成的回答。",
        "nothing_to_edit": "还没有可以编辑的消息。", "empty_message": "请先输入消息。",
        "chatbot": "对话", "thinking_switch": "思考",
        "thinking_info": "推理模型先思考再回答；关闭后直接回答（需模型支持）。",
    },
)



def to_engine_messages(history: list[dict], system_prompt: str) -> list[dict]:
    return engine_messages(history, system_prompt)  # earlier tool calls and results included


to_display = display_history  # chatbot value: each answer with its stats line in small print
SAVE_EVERY_S = 2.0  # while an answer streams, how often its partial text is saved



def params_from(temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed,
                thinking: bool = True) -> SamplingParams:
    seed = None if seed is None or int(seed) < 0 else int(seed)
    return SamplingParams(
        temperature=float(temperature), top_p=float(top_p), top_k=int(top_k),
        max_new_tokens=int(max_new_tokens), repetition_penalty=float(repetition_penalty), seed=seed,
        # Only the switch turned off is sent: templates without the variable are not touched.
        template_kwargs={} if thinking else {"enable_thinking": False},
    )


class ChatHandlers:
    """Event handlers of the Chat tab, independent of the component wiring (tested with fakes)."""

    def __init__(self, models, cancels: CancelRegistry | None = None, sessions: ChatSessions | None = None,
                 quotas=None, tools: ChatTools | None = None, files: ChatFiles | None = None,
                 images: ChatImages | None = None) -> None:
        self.models = ModelRegistry.of(models)  # the served models (or one engine)
        self.files = files  # files attached to messages: waiting per tab, read into the prompt
        self.images = images  # pictures for models that can see: waiting per tab, saved with the question
        self.tools = tools  # MCP servers / built-in tools; answers with tools selected go through the tool loop
        self.quotas = quotas  # assist.quotas.Quotas: each user's answers count against their limits
        self.cancels = cancels or CancelRegistry()
        self.sessions = sessions
        # The default model's own system text plus our language rule (assist.chat_defaults).
        self.default_system_prompt = system_prompt_for(self.models.engine())

    def display(self, history: list[dict], request=None, lang: str | None = None, streaming: bool = False,
                focus: str | None = None):
        """The Chatbot value of ``history``, with the branch arrows of the saved conversation
        (and ``focus``, the message a search hit opened, marked)."""
        lang = lang or _lang(request)
        positions = self.sessions.positions(request) if self.sessions is not None else {}
        return display_history(history, lang, footers(history, positions, lang, streaming, focus))

    def _save(self, request, history: list[dict], system_prompt: str) -> None:
        if self.sessions is not None:
            try:
                self.sessions.save(request, history, system_prompt)
            except EngineError as exc:
                raise ui_error(exc) from exc

    def _stream_saved(self, history: list[dict], system_prompt: str, params: SamplingParams,
                      request, lang: str, model: str | None = None, tools=None) -> Iterator[list[dict]]:
        """``_stream``, saving the history before, periodically during and after the answer."""
        self._save(request, history, system_prompt)
        # Saved now: a first message has made its conversation, whose files get their index there.
        conversation = (self.sessions.current(request) if self.sessions is not None else None) or session_key(request)
        current, saved_at = history, time.monotonic()
        try:
            for current in self._stream(history, system_prompt, params, session_key(request), lang,
                                        current_owner(request), model, tools, conversation):
                yield current
                if self.sessions is not None and time.monotonic() - saved_at > SAVE_EVERY_S:
                    self._save(request, current, system_prompt)
                    saved_at = time.monotonic()
        finally:  # also when stopped, failed or abandoned: keep what was written so far
            self._save(request, current, system_prompt)

    def _stream(self, history: list[dict], system_prompt: str, params: SamplingParams, key: str, lang: str,
                user: str | None = None, model: str | None = None, tools=None,
                conversation: str | None = None) -> Iterator[list[dict]]:
        """Append an answer to ``history`` (a fresh list), yielding it as it grows.

        The answer's content is the raw output, a think block included (the display splits it off
        and the engine drops it from later prompts); ``thinking_s`` is how long the thinking took.
        With ``user``, the answer counts against their quotas (``QuotaExceeded`` becomes a gr.Error).
        ``model`` names one of the served models (default: the first); one not in memory loads
        first, its progress shown where the answer's stats go. Files attached to the branch's
        questions are read into the prompt (``assist.attachments``; ``conversation`` names their index).
        """
        cancel = self.cancels.start(key)
        # The engine's KV cache is kept per branch (the message answered), so switching back to a
        # branch finds its cache again instead of the other branch's.
        cache_key = f"{key}/{history[-1].get('id') or ''}" if history else key
        answer = {"id": new_message_id(), "role": "assistant", "content": ""}
        history = [*history, answer]
        try:
            for notice in loading_notices(self.models, model, lang):
                answer["stats"] = notice
                yield history
            answer.pop("stats", None)
            with self.models.use(model) as engine:  # kept in memory until the answer ends
                if self.files is not None and has_attachments(history):  # indexing a large file takes a while
                    answer["stats"] = text("files_reading", lang)
                    yield history
                attached = self._attached(engine, readable(history[:-1], engine), system_prompt, params,
                                          conversation or key)
                answer.pop("stats", None)
                if self.tools is not None and tools:  # calls and results join the history as they happen
                    reading = attached.history if attached is not None else readable(history[:-1], engine)
                    for current in self.tools.answer(engine, [*reading, answer], system_prompt, params, key, user,
                                                     cancel, lang, list(tools), self.quotas):
                        yield [*history[:-1], *current[len(reading):]]  # saved as written, files not inlined
                else:
                    yield from self._answer(engine, history, system_prompt, params, cache_key, user, cancel, lang,
                                            attached)
        except (EngineError, QuotaExceeded, ToolError, AssistError, RagError) as exc:
            raise ui_error(exc) from exc
        finally:
            cancel.set()  # a closed stream (tab closed, event cancelled) frees the model too

    def _attached(self, engine, history: list[dict], system_prompt: str, params: SamplingParams,
                  conversation: str) -> AttachedPrompt | None:
        """The branch as the model reads it with its files, or None when it has none."""
        if self.files is None or not has_attachments(history):
            return None
        return self.files.attachments.prepare(engine, history, params, conversation, system_prompt)

    def _answer(self, engine, history: list[dict], system_prompt: str, params: SamplingParams, key: str,
                user: str | None, cancel, lang: str, attached: AttachedPrompt | None = None) -> Iterator[list[dict]]:
        answer = history[-1]
        splitter, started = ReasoningSplitter(), time.monotonic()
        reading = attached.history if attached is not None else readable(history[:-1], engine)
        stream = engine.stream_chat(to_engine_messages(reading, system_prompt), params, session_id=key, cancel=cancel)
        for item in metered(self.quotas, user, stream):
            if isinstance(item, GenerationStats):
                if splitter.reasoning:
                    item.extra["reasoning_tokens"] = engine.count_tokens(splitter.reasoning)
                answer["stats"] = stats_line(item, lang)
                if attached is not None and item.finish_reason != "cancelled":
                    saved = attached.conversation if self.sessions is not None else None  # previews need it saved
                    self._cite(answer, attached, history[-2]["content"], lang, saved)
                if splitter.reasoning and "thinking_s" not in answer:
                    answer["thinking_s"] = round(time.monotonic() - started, 1)
            else:
                answer["content"] += item
                splitter.feed(item)
                if splitter.closed and "thinking_s" not in answer:
                    answer["thinking_s"] = round(time.monotonic() - started, 1)
            yield history

    @staticmethod
    def _cite(answer: dict, attached: AttachedPrompt, question: str, lang: str, conversation: str | None = None) -> None:
        """Name the files and pages the answer used, as the Docs tab does: ``[2] report.pdf p.3`` before the
        stats line; the answer's own numbers checked against what it quotes (``ChatAttachments.cite``). With the
        saved ``conversation`` each citation links to the page's text (``webui.page_preview``)."""
        said = ReasoningSplitter()  # the answer without its thinking
        said.feed(answer["content"])
        said.finish()
        checked, cited = ChatAttachments.cite(said.content, attached, question)
        content = answer["content"]
        if checked != said.content and content.endswith(said.content):
            answer["content"] = content[:len(content) - len(said.content)] + checked
        if cited:
            passages = attached.mode == "passages"
            line = " · ".join(cited_link(n, hit, lang, file_preview_url(conversation, hit, passages) if conversation
                                         else None) for n, hit in cited)
            answer["stats"] = f"{line} · {answer['stats']}" if answer.get("stats") else line

    def respond(self, message: str, system_prompt: str | None = None, temperature: float = 0.7,
                top_p: float = 0.9, top_k: int = 50, max_new_tokens: int = 512,
                repetition_penalty: float = 1.1, seed: int = -1, history: list[dict] | None = None,
                thinking: bool = True, model: str | None = None, tools: list[str] | None = None,
                request: gr.Request | None = None):
        lang = _lang(request)
        history = list(history or [])
        if not (message or "").strip():
            raise gr.Error(text("empty_message", lang))
        try:
            params = params_from(temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed, thinking)
        except EngineError as exc:
            raise ui_error(exc) from exc
        question = {"id": new_message_id(), "role": "user", "content": message}
        files = self.files.take(request) if self.files is not None else []
        if files:  # the files picked in this tab go with this message, and are saved with it
            question["attachments"] = files
        images = self.images.take(request) if self.images is not None else []
        if images:  # so do the pictures
            question["images"] = images
        history = [*history, question]
        system_prompt = self.default_system_prompt if system_prompt is None else system_prompt
        for shown, current in self._answer_from(history, system_prompt, params, model, tools, request, lang):
            yield shown, current, ""

    def _answer_from(self, history: list[dict], system_prompt: str, params: SamplingParams, model, tools, request,
                     lang: str) -> Iterator[tuple[list[dict], list[dict]]]:
        """(display, history) while an answer to ``history`` (ending with a question) streams and is saved."""
        yield self.display(history, request, lang, streaming=True), history
        current = history
        for current in self._stream_saved(history, system_prompt, params, request, lang, model, tools):
            yield self.display(current, request, lang, streaming=True), current
        yield self.display(current, request, lang), current  # saved: its ids and arrows are final

    def answer_from(self, history, system_prompt, temperature, top_p, top_k, max_new_tokens, repetition_penalty,
                    seed, thinking=True, model=None, tools=None, request=None) -> Iterator[tuple]:
        """A new answer to ``history`` (cut after a question): a new version beside the old answer."""
        lang = _lang(request)
        if not history or history[-1]["role"] != "user":
            raise gr.Error(text("nothing_to_regenerate", lang))
        try:
            params = params_from(temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed, thinking)
        except EngineError as exc:
            raise ui_error(exc) from exc
        yield from self._answer_from(list(history), system_prompt, params, model, tools, request, lang)

    def regenerate(self, system_prompt, temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed,
                   history, thinking: bool = True, model: str | None = None, tools: list[str] | None = None,
                   request: gr.Request | None = None):
        history = list(history or [])
        while history and history[-1]["role"] in ("assistant", "tool"):  # the whole answer, its calls too
            history = history[:-1]
        yield from self.answer_from(history, system_prompt, temperature, top_p, top_k, max_new_tokens,
                                    repetition_penalty, seed, thinking, model, tools, request)

    def edit_last(self, history, request: gr.Request | None = None):
        """Put the last user message back in the input box and show the branch without that turn.

        Nothing is deleted: sending the edited text makes a new version beside the old question."""
        history = list(history or [])
        users = [i for i, m in enumerate(history) if m["role"] == "user"]
        if not users:
            raise gr.Error(text("nothing_to_edit", _lang(request)))
        last = users[-1]
        kept = history[:last]
        if self.files is not None:  # its files wait again, to go with the edited text
            self.files.put(request, history[last].get("attachments") or [])
        if self.images is not None:  # and its pictures
            self.images.put(request, history[last].get("images") or [])
        return self.display(kept, request), kept, history[last]["content"]

    def stop(self, request: gr.Request | None = None) -> None:
        self.cancels.cancel(session_key(request))

    def clear(self, request: gr.Request | None = None):
        """Start over: the saved conversation stays in the sidebar, a new one begins."""
        if self.sessions is not None:
            self.sessions.attach(request, None)
        elif self.files is not None:  # nothing saved: the tab's file index is not needed any more
            self.files.attachments.forget(session_key(request))
        return [], [], ""



def _lang(request) -> str:
    from webui.i18n import language_of

    return language_of(request)


def build_chat_tab(services, cancels: CancelRegistry | None = None) -> ChatHandlers:
    """Lay out the Chat tab in the current Blocks context and wire it (``webui.chat_layout``)."""
    from webui.chat_layout import build_chat_layout

    return build_chat_layout(services, cancels)
