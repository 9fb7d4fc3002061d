"""Saved conversations in the Chat tab: which one each browser tab has open, saving its
history (the branch it shows), moving between versions of a message, and the sidebar's handlers
(new, open, rename, delete, search, export, import).

The open conversation is tracked per Gradio session (``request.session_hash``), not in a
component, so the public ``chat`` API keeps its inputs and outputs and a ``gradio_client``
caller gets a saved conversation too. Handlers are plain methods returning ``PanelView``
values (tested with fakes); ``webui.sessions_panel`` lays out the sidebar and turns views
into component updates. The owner is the logged-in user with ``--auth``, else ``"local"``.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from assist.errors import SessionError, SessionNotFound
from assist.session_tree import branch_positions, new_message_id, siblings
from assist.sessions import SessionStore
from webui.adapters import session_key, ui_error
from webui.auth import current_owner
from webui.i18n import language_of, register, text

__all__ = ["ChatSessions", "PanelView", "owner_of"]

register(
    en={
        "sessions": "Conversations", "new_chat": "＋ New chat", "search_sessions": "Search conversations",
        "search_placeholder": "Search titles and messages…", "session_title": "Title", "rename": "Rename",
        "delete": "Delete", "confirm_delete": "Delete this conversation for good?", "cancel": "Cancel",
        "export_md": "⬇ Markdown", "export_json": "⬇ JSON", "import_json": "⬆ Import JSON",
        "no_sessions": "No conversations yet — start one by typing below.",
        "no_match": "Nothing found for “{query}” (titles and messages).", "untitled": "New conversation",
        "session_gone": "That conversation no longer exists; it may have been deleted in another tab.",
        "open_first": "Open or start a conversation first.", "manage_session": "This conversation",
    },
    zh={
        "sessions": "会话", "new_chat": "＋ 新对话", "search_sessions": "搜索会话",
        "search_placeholder": "搜索标题和消息…", "session_title": "标题", "rename": "重命名",
        "delete": "删除", "confirm_delete": "确定永久删除这个会话吗？", "cancel": "取消",
        "export_md": "⬇ Markdown", "export_json": "⬇ JSON", "import_json": "⬆ 导入 JSON",
        "no_sessions": "还没有会话——在下方输入消息即可开始。",
        "no_match": "标题和消息中都没有找到“{query}”。", "untitled": "新对话",
        "session_gone": "这个会话已不存在，可能已在其他标签页中删除。",
        "open_first": "请先打开或开始一个会话。", "manage_session": "当前会话",
    },
)


def owner_of(request) -> str:
    """The signed-in user's name, else the shared local owner (``webui.auth.current_owner``)."""
    return current_owner(request)



@dataclass
class PanelView:
    """What the sidebar shows; ``history``/``system_prompt`` None leave the chat untouched."""

    choices: list[tuple[str, str]]  # (label, session id), most recent first
    current: str | None
    title: str = ""
    note: str = ""  # empty state or notice; "" hides it
    exports: tuple[str | None, str | None] = (None, None)  # Markdown, JSON files to download
    history: list[dict] | None = None
    system_prompt: str | None = None
    focus: str | None = None  # the message a search hit opened the conversation at


class ChatSessions:
    """Saves chat histories in a ``SessionStore`` and serves the sidebar's handlers."""

    def __init__(self, store: SessionStore, exports_dir: Path | None = None, max_tracked: int = 10_000,
                 audit=None) -> None:
        self.store = store
        self.audit = audit  # assist.audit.AuditLog: deletions are recorded
        self.exports_dir = Path(exports_dir) if exports_dir else None
        # Per browser tab: the open conversation and the versions (n, m) of the messages it shows.
        self._open: OrderedDict[str, tuple[str | None, dict]] = OrderedDict()
        self._max_tracked = max_tracked
        self._lock = threading.Lock()

    # -- the open conversation of each browser tab ----------------------------------------

    def current(self, request) -> str | None:
        with self._lock:
            return self._open.get(session_key(request), (None, {}))[0]

    def positions(self, request) -> dict[str, tuple[int, int]]:
        """Message id -> (version number, versions) for the messages the tab shows that have others."""
        with self._lock:
            return self._open.get(session_key(request), (None, {}))[1]

    def attach(self, request, session_id: str | None, positions: dict | None = None) -> None:
        with self._lock:
            self._open[session_key(request)] = (session_id, positions or {})
            self._open.move_to_end(session_key(request))
            while len(self._open) > self._max_tracked:  # tabs closed long ago
                self._open.popitem(last=False)

    def save(self, request, history: list[dict], system_prompt: str | None = None) -> str | None:
        """Save the branch shown (``history``) in the open conversation, creating it on the first message.

        Messages get their ``id`` here when they have none yet (tool results, for one): in place,
        so the next save of the same history finds them instead of writing them again."""
        messages = list(history or [])
        last = messages[-1] if messages else {}
        if last.get("role") == "assistant" and not last.get("content") and not last.get("tool_calls"):
            messages = messages[:-1]  # an answer that never started is not worth keeping
        for message in messages:
            message.setdefault("id", new_message_id())
        owner, session_id = owner_of(request), self.current(request)
        if not messages:
            return session_id
        if session_id:
            try:
                self.store.save_branch(session_id, owner, messages, system_prompt)
                self._show(request, session_id, owner)
                return session_id
            except SessionNotFound:
                pass  # deleted meanwhile (another tab, the API): keep the conversation as a new one
        session = self.store.create(owner, system_prompt=system_prompt or "", messages=messages)
        self.attach(request, session.id, branch_positions(session.tree, session.messages))
        return session.id

    def _show(self, request, session_id: str, owner: str) -> list[dict]:
        """Read the branch shown and remember its versions for the arrows; returns the branch."""
        session = self.store.get(session_id, owner)
        self.attach(request, session_id, branch_positions(session.tree, session.messages))
        return session.messages

    def move(self, request, message_id: str, verb: str) -> list[dict]:
        """``prev`` / ``next``: show another version of a message (and the branch below it);
        ``delete``: delete this version and what follows it. Returns the branch now shown."""
        owner, session_id = owner_of(request), self._require_current(request)
        try:
            if verb == "delete":
                self.store.delete_branch(session_id, owner, message_id)
                if self.audit is not None:
                    self.audit.record("session.branch_deleted", actor=owner, session=session_id)
            else:
                versions = siblings(self.store.get(session_id, owner).tree, message_id)
                index = versions.index(message_id) if message_id in versions else 0
                step = -1 if verb == "prev" else 1
                self.store.switch(session_id, owner, versions[(index + step) % len(versions)])
            return self._show(request, session_id, owner)
        except SessionError as exc:
            raise ui_error(exc) from exc

    # -- sidebar handlers ------------------------------------------------------------------

    def restore(self, saved_id: str | None, query: str = "", request=None) -> PanelView:
        """On page load: reopen the conversation this browser had open, if it still exists."""
        if saved_id and self.store.exists(saved_id, owner_of(request)):
            return self.open(saved_id, query, request)
        self.attach(request, None)
        return self.refresh(query, request)

    def new(self, query: str = "", request=None) -> PanelView:
        """Start a new conversation; it is saved when its first message is sent."""
        self.attach(request, None)
        view = self.refresh(query, request)
        view.history = []
        return view

    def open(self, session_id: str | None, query: str = "", request=None) -> PanelView:
        """Open a conversation; ``"<session id>#<message id>"`` (a search hit) opens it at that message,
        showing the branch that holds it."""
        if not session_id:
            return self.refresh(query, request)
        session_id, _, focus = session_id.partition("#")
        if focus:
            try:
                self.store.switch(session_id, owner_of(request), focus)
            except SessionError:
                focus = ""  # the message (or conversation) is gone: open what is there
        try:
            session = self.store.get(session_id, owner_of(request))
        except SessionNotFound:
            self.attach(request, None)
            view = self.refresh(query, request)
            view.note, view.history = text("session_gone", language_of(request)), []
            return view
        self.attach(request, session.id, branch_positions(session.tree, session.messages))
        view = self.refresh(query, request)
        view.history, view.system_prompt = session.messages, session.system_prompt or None
        view.focus = focus or None
        return view

    def refresh(self, query: str = "", request=None) -> PanelView:
        """The list (or, with ``query``, the search hits), the open conversation's title and export files."""
        owner, lang, current = owner_of(request), language_of(request), self.current(request)
        if (query or "").strip():
            choices = self._hits(owner, query, lang)
        else:
            choices = [(s.title or text("untitled", lang), s.id) for s in self.store.list(owner)]
        note = ""
        if not choices:
            note = text("no_match", lang, query=query.strip()) if (query or "").strip() else text("no_sessions", lang)
        view = PanelView(choices=choices, current=current, note=note)
        if current:
            try:
                title = self.store.get(current, owner).title
            except SessionNotFound:
                self.attach(request, None)
                view.current = None
                return view
            view.title, view.exports = title, self._write_exports(current, owner)
        return view

    def rename(self, title: str, query: str = "", request=None) -> PanelView:
        self.store.rename(self._require_current(request), owner_of(request), title or "")
        return self.refresh(query, request)

    def delete(self, query: str = "", request=None) -> PanelView:
        session_id = self._require_current(request)
        try:
            self.store.delete(session_id, owner_of(request))
            if self.audit is not None:
                self.audit.record("session.deleted", actor=owner_of(request), session=session_id)
        except SessionNotFound:
            pass  # already gone: the result the user asked for
        if self.exports_dir is not None:
            shutil.rmtree(self.exports_dir / session_id, ignore_errors=True)
        return self.new(query, request)

    def import_file(self, path: str | None, query: str = "", request=None) -> PanelView:
        if not path:
            return self.refresh(query, request)
        try:
            session = self.store.import_json(owner_of(request), Path(path).read_bytes())
        except SessionError as exc:
            raise ui_error(exc) from exc
        return self.open(session.id, "", request)

    # -- internals ---------------------------------------------------------------------------

    def _hits(self, owner: str, query: str, lang: str) -> list[tuple[str, str]]:
        """Search hits as list entries: the best one of each conversation, "title · snippet"."""
        choices, seen = [], set()
        for hit in self.store.search(owner, query):
            if hit.session_id in seen:
                continue
            seen.add(hit.session_id)
            title = hit.title or text("untitled", lang)
            label = title if hit.message_id is None else f"{title} · {hit.snippet}"
            choices.append((label, f"{hit.session_id}#{hit.message_id}" if hit.message_id else hit.session_id))
        return choices

    def _require_current(self, request) -> str:
        session_id = self.current(request)
        if not session_id:
            raise ui_error(SessionNotFound(text("open_first", language_of(request))))
        return session_id

    def _write_exports(self, session_id: str, owner: str) -> tuple[str | None, str | None]:
        """Fresh Markdown and JSON files of the conversation for the download buttons."""
        if self.exports_dir is None:
            return None, None
        folder = self.exports_dir / session_id
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt in ("md", "json"):
            name, content = self.store.export(session_id, owner, fmt)
            path = folder / name
            temp = folder / f".{name}.tmp"
            temp.write_text(content, encoding="utf-8")
            os.replace(temp, path)  # a download never sees a half-written file
            paths.append(path)
        for stale in folder.iterdir():  # files named after an earlier title
            if stale not in paths and not stale.name.startswith("."):
                stale.unlink(missing_ok=True)
        return str(paths[0]), str(paths[1])
