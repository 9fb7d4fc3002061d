"""The Chat tab's left column: saved conversations (new, open, rename, delete, search,
export, import) and resuming the open one after a page refresh.

Only layout and wiring live here; the handlers are ``webui.chat_sessions.ChatSessions``
methods. The open conversation's id is kept in the browser (``gr.BrowserState``) and
reopened on page load; its history comes from SQLite, so it also survives a server restart.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from webui.adapters import display_history
from webui.chat_branches import SCROLL_TO_HIT
from webui.chat_sessions import ChatSessions, PanelView
from webui.i18n import t

__all__ = ["SessionPanel", "build_sessions_panel", "wire_sessions_panel", "sidebar_updates", "full_updates"]

# The stored value is only a random session id, and every lookup also checks the owner, so a
# fixed key is safe; a random one (Gradio's default) would change at each server start and
# make the browser forget the open conversation after a restart.
_BROWSER_SECRET = "dcu-chat-open-session"

CSS = """
#session-sidebar { gap: 0.5rem; }
#session-list .wrap { flex-direction: column; gap: 0.25rem; max-height: 420px; overflow-y: auto; flex-wrap: nowrap; }
#session-list label { width: 100%; overflow: hidden; }
#session-list label span { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
                           overflow: hidden; overflow-wrap: anywhere; }
#session-empty { opacity: 0.75; font-size: 0.9em; }
"""


@dataclass
class SessionPanel:
    """The sidebar's components."""

    browser_state: gr.BrowserState
    new: gr.Button
    search: gr.Textbox
    session_list: gr.Radio
    note: gr.Markdown
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    confirm_row: gr.Group
    confirm: gr.Button
    cancel: gr.Button
    download_md: gr.DownloadButton
    download_json: gr.DownloadButton
    upload: gr.UploadButton

    @property
    def sidebar_outputs(self) -> list:
        return [self.session_list, self.note, self.title, self.download_md, self.download_json, self.browser_state]


def build_sessions_panel() -> SessionPanel:
    """Lay out the sidebar inside the current Blocks context (a column)."""
    browser_state = gr.BrowserState(None, storage_key="dcu-chat-open-session", secret=_BROWSER_SECRET)
    new = gr.Button(t("new_chat"), variant="primary", size="sm", elem_id="session-new")
    search = gr.Textbox(label=t("search_sessions"), placeholder=t("search_placeholder"), show_label=False,
                        max_lines=1, elem_id="session-search", container=False)
    note = gr.Markdown(visible=False, elem_id="session-empty")
    session_list = gr.Radio(choices=[], value=None, label=t("sessions"), elem_id="session-list", visible=False)
    with gr.Accordion(t("manage_session"), open=False, elem_id="session-manage"):
        title = gr.Textbox(label=t("session_title"), max_lines=1, elem_id="session-title")
        with gr.Row():
            rename = gr.Button(t("rename"), size="sm", min_width=80, elem_id="session-rename")
            delete = gr.Button(t("delete"), size="sm", variant="stop", min_width=80, elem_id="session-delete")
        with gr.Group(visible=False) as confirm_row:
            gr.Markdown(t("confirm_delete"), elem_id="session-confirm-text")
            with gr.Row():
                confirm = gr.Button(t("delete"), size="sm", variant="stop", min_width=80,
                                    elem_id="session-delete-confirm")
                cancel = gr.Button(t("cancel"), size="sm", min_width=80, elem_id="session-delete-cancel")
        with gr.Row():
            download_md = gr.DownloadButton(t("export_md"), size="sm", interactive=False, min_width=80,
                                            elem_id="session-export-md")
            download_json = gr.DownloadButton(t("export_json"), size="sm", interactive=False, min_width=80,
                                              elem_id="session-export-json")
    upload = gr.UploadButton(t("import_json"), file_types=[".json"], type="filepath", size="sm",
                             elem_id="session-import")
    return SessionPanel(browser_state, new, search, session_list, note, title, rename, delete, confirm_row,
                        confirm, cancel, download_md, download_json, upload)


def sidebar_updates(view: PanelView) -> tuple:
    ids = {session_id for _, session_id in view.choices}
    md, js = view.exports
    return (
        gr.update(choices=view.choices, value=view.current if view.current in ids else None,
                  visible=bool(view.choices)),
        gr.update(value=view.note, visible=bool(view.note)),
        view.title,
        gr.update(value=md, interactive=bool(md)),
        gr.update(value=js, interactive=bool(js)),
        view.current,
    )


def full_updates(view: PanelView, display=None, request=None) -> tuple:
    """Chat (chatbot, history, system prompt) then sidebar updates; None parts stay as they are.

    ``display(history, request)`` makes the Chatbot value (the Chat tab's, with branch arrows)."""
    if view.history is None:
        chat = (gr.skip(), gr.skip())
    else:
        shown = display(view.history, request, focus=view.focus) if display is not None \
            else display_history(view.history)
        chat = (shown, view.history)
    prompt = gr.skip() if view.system_prompt is None else view.system_prompt
    return (*chat, prompt, *sidebar_updates(view))


def wire_sessions_panel(panel: SessionPanel, sessions: ChatSessions, chat_outputs: list, after: list,
                        display=None) -> None:
    """Events of the sidebar; ``chat_outputs`` are (chatbot, history, system prompt); ``after``
    are chat events (their ``.then``) after which the list and exports are refreshed; ``display``
    makes the Chatbot value of a history (``ChatHandlers.display``)."""
    full = [*chat_outputs, *panel.sidebar_outputs]
    hide_confirm = gr.update(visible=False)

    def updates(view: PanelView, request) -> tuple:
        return full_updates(view, display, request)

    def on_restore(saved_id, query, request: gr.Request):
        return updates(sessions.restore(saved_id, query, request), request)

    def on_new(query, request: gr.Request):
        return updates(sessions.new(query, request), request)

    def on_open(session_id, query, request: gr.Request):
        return updates(sessions.open(session_id, query, request), request)

    def on_refresh(query, request: gr.Request):
        return sidebar_updates(sessions.refresh(query, request))

    def on_rename(title, query, request: gr.Request):
        return sidebar_updates(sessions.rename(title, query, request))

    def on_delete(query, request: gr.Request):
        return (*updates(sessions.delete(query, request), request), hide_confirm)

    def on_import(path, query, request: gr.Request):
        return updates(sessions.import_file(path, query, request), request)

    private = {"api_visibility": "private"}
    root = gr.context.Context.root_block
    if root is not None:
        root.load(on_restore, [panel.browser_state, panel.search], full, **private)
    panel.new.click(on_new, [panel.search], full, **private)
    panel.session_list.input(on_open, [panel.session_list, panel.search], full, **private).then(
        None, js=SCROLL_TO_HIT, **private)
    panel.search.change(on_refresh, [panel.search], panel.sidebar_outputs, trigger_mode="always_last", **private)
    panel.rename.click(on_rename, [panel.title, panel.search], panel.sidebar_outputs, **private)
    panel.title.submit(on_rename, [panel.title, panel.search], panel.sidebar_outputs, **private)
    panel.delete.click(lambda: gr.update(visible=True), None, [panel.confirm_row], queue=False, **private)
    panel.cancel.click(lambda: hide_confirm, None, [panel.confirm_row], queue=False, **private)
    panel.confirm.click(on_delete, [panel.search], [*full, panel.confirm_row], **private)
    panel.upload.upload(on_import, [panel.upload, panel.search], full, **private)
    for event in after:
        event.then(on_refresh, [panel.search], panel.sidebar_outputs, **private)
