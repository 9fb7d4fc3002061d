"""The Document Q&A tab: collections, uploads, the document table, and grounded answers.

Every upload is a background job per file (``assist.ingest_jobs``): the handler returns at once,
a ``gr.Timer`` polls the page's jobs and draws a progress bar per file, and when the page is
loaded again the caller's running jobs are shown again. The timer runs only while jobs do.

``DocsHandlers`` holds the event handlers as plain methods and generators (tested with a fake
engine and a real store); ``build_docs_tab`` only lays out components and wires events. The
answer event is public as ``api_name="ask"`` with the question first, so
``Client(url).predict("What is the warranty?", api_name="/ask")`` asks the ``default``
collection. Answers and search go through ``assist.answers``, shared with the REST routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import gradio as gr

from assist.answers import DEFAULT_MAX_TOKENS, answer_stream, default_params
from assist.errors import JobNotFound
from engine.stats import GenerationStats
from rag.errors import TooManyFiles
from rag.parsing import SUPPORTED_EXTENSIONS
from rag.store import DEFAULT_COLLECTION
from webui.adapters import CancelRegistry, domain_error_types, literal_html, session_key, stats_line, ui_error
from webui.auth import current_owner
from webui.docs_format import document_rows, format_citations, format_jobs, format_sources, table_headers
from webui.docs_sharing import build_sharing
from webui.i18n import language_of, t, text
from webui.model_picker import loading_notices, model_picker
from webui.reading import LATEX_DELIMITERS, inline_math
from webui.sync_badge import sync_badge

__all__ = ["DocsHandlers", "build_docs_tab"]

_DOMAIN = domain_error_types()
_RUNNING = ("queued", "running")
POLL_S = 1.0  # how often a page with running uploads asks for their progress
RECENT_S = 600  # a reloaded page shows the outcome of uploads started this long ago
BADGE_S = 20.0  # how often the folder-sync badge is refreshed



def to_display(history: list[dict]) -> list[dict]:
    """Chatbot value: each answer with its citation/stats line in small print ("…" while waiting)."""
    shown = []
    for m in history:
        answer = inline_math(m["content"]) if m["role"] == "assistant" else m["content"]
        content = literal_html(answer) or ("…" if m.get("pending") else "")
        shown.append({"role": m["role"], "content": f"{content}\n\n<sub>{m['meta']}</sub>" if m.get("meta")
                      else content})
    return shown


class DocsHandlers:
    """Event handlers of the Docs tab, independent of the component wiring."""

    def __init__(self, services, cancels: CancelRegistry | None = None) -> None:
        self.services = services
        self.collections_of = services.collections  # the store behind each user's ownership checks
        self.cancels = cancels or CancelRegistry()

    # ------------------------------------------------------------ collections

    def collections(self, selected: str | None = None, request: gr.Request | None = None):
        """The selector with the user's collections and those shared with them (``owner:name``);
        the selection is kept when it still exists."""
        names = self.collections_of.labels(current_owner(request))
        return gr.update(choices=names, value=selected if selected in names else DEFAULT_COLLECTION)

    def create_collection(self, name: str, request: gr.Request | None = None):
        """-> (selector, status, name box). The new collection becomes the selected one."""
        name = (name or "").strip()
        try:
            self.collections_of.create(current_owner(request), name)
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        return self.collections(name, request), text("docs_created", language_of(request), name=name), ""

    def ask_delete_collection(self, collection: str, request: gr.Request | None = None):
        """-> (confirmation group, its message): the first step of deleting a collection."""
        lang = language_of(request)
        if collection == DEFAULT_COLLECTION:
            raise gr.Error(text("docs_default_protected", lang))
        user = current_owner(request)
        try:
            self.collections_of.resolve(user, collection, "owner")  # only the owner is asked
            count = len(self.collections_of.documents(user, collection))
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        return gr.update(visible=True), text("docs_confirm_delete_collection", lang, name=collection, n=count)

    def delete_collection(self, collection: str, request: gr.Request | None = None):
        """-> (selector, confirmation group, status)."""
        try:
            self.collections_of.delete(current_owner(request), collection)
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        status = text("docs_deleted_collection", language_of(request), name=collection)
        return self.collections(DEFAULT_COLLECTION, request), gr.update(visible=False), status

    @staticmethod
    def cancel_delete():
        return gr.update(visible=False)

    # ------------------------------------------------------------ documents

    def documents(self, collection: str, request: gr.Request | None = None):
        """-> (table, empty-state note, document picker, row ids) for ``collection``."""
        lang = language_of(request)
        try:
            docs = self.collections_of.documents(current_owner(request), collection or DEFAULT_COLLECTION)
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        table = {"headers": table_headers(lang), "data": document_rows(docs)}
        picker = gr.update(choices=[(d.name, d.id) for d in docs], value=None)
        return table, gr.update(visible=not docs, value=text("docs_empty", lang)), picker, [d.id for d in docs]

    def sync_badge(self, collection: str, request: gr.Request | None = None):
        """The folder-sync badge under the selector: shown only for a collection that follows a folder."""
        badge = sync_badge(self.services, current_owner(request), collection, language_of(request))
        return gr.update(value=badge, visible=bool(badge))

    def upload(self, files, collection: str, watched: dict | None = None, request: gr.Request | None = None):
        """Queue one job per file -> (report with progress bars, file box cleared, watched jobs, timer on)."""
        lang = language_of(request)
        config = self.services.rag_config or self.store.config
        paths = [Path(getattr(f, "name", None) or getattr(f, "path", None) or f) for f in (files or [])]
        if not paths:
            raise gr.Error(text("docs_no_files", lang))
        owner, jobs = current_owner(request), self.services.jobs
        try:
            if len(paths) > config.max_files_per_upload:
                raise TooManyFiles(f"{len(paths)} files were chosen at once; the limit is "
                                   f"{config.max_files_per_upload}. Upload them in smaller groups.")
            # Refused now, not in a job: a collection this user may not write to, or none at all.
            storage = self.collections_of.resolve(owner, collection, "write").storage
            ids = [jobs.submit(owner, storage, [(p.name, p.read_bytes())]).id for p in paths]
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        # Jobs of earlier uploads stay on show while they run; finished ones make room.
        still = [j.id for j in self._jobs(watched, owner) if j.status in _RUNNING]
        watched = {"ids": still + ids, "open": still + ids}
        return format_jobs(self._jobs(watched, owner), lang), None, watched, gr.update(active=True)

    def poll(self, collection: str, watched: dict | None, request: gr.Request | None = None):
        """Timer tick -> (report, watched, timer, table, empty note, picker, row ids); the listing is
        refreshed only when a job has just ended, and the timer stops when none runs."""
        owner = current_owner(request)
        jobs = self._jobs(watched, owner)
        open_ids = set((watched or {}).get("open", []))
        ended = [j for j in jobs if j.id in open_ids and j.status not in _RUNNING]
        still = [j.id for j in jobs if j.status in _RUNNING]
        state = {"ids": [j.id for j in jobs], "open": still}
        listing = self.documents(collection, request) if ended else (gr.skip(),) * 4
        return (format_jobs(jobs, language_of(request)), state, gr.update(active=bool(still)), *listing)

    def resume(self, watched: dict | None = None, request: gr.Request | None = None):
        """Page load or tab opened -> (report, watched, timer): the caller's running jobs and those
        started in the last ``RECENT_S`` are shown (again, after a reload), next to this page's."""
        owner = current_owner(request)
        cutoff = (datetime.now(timezone.utc) - timedelta(seconds=RECENT_S)).isoformat(timespec="milliseconds")
        recent = [j.id for j in self.services.jobs.list(owner) if j.status in _RUNNING or j.created_at >= cutoff]
        known = list((watched or {}).get("ids", []))
        ids = known + [i for i in recent if i not in known]
        jobs = self._jobs({"ids": ids}, owner)
        still = [j.id for j in jobs if j.status in _RUNNING]
        return (format_jobs(jobs, language_of(request)), {"ids": [j.id for j in jobs], "open": still},
                gr.update(active=bool(still)))

    def cancel_uploads(self, watched: dict | None = None, request: gr.Request | None = None):
        """Stop indexing -> (report, watched, timer): this page's queued and running uploads are
        cancelled (nothing of theirs is added); finished ones stay as they are."""
        owner = current_owner(request)
        for job in self._jobs(watched, owner):
            if job.status in _RUNNING:
                self.services.jobs.cancel(job.id, owner, wait_s=0)
        return self.resume(watched, request)

    @staticmethod
    def uploads_running(watched: dict | None) -> dict:
        """The Stop indexing button: shown while this page has uploads being indexed."""
        return gr.update(visible=bool((watched or {}).get("open")))

    def _jobs(self, watched: dict | None, owner: str) -> list:
        out = []
        for job_id in (watched or {}).get("ids", []):
            try:
                out.append(self.services.jobs.get(job_id, owner))
            except JobNotFound:  # forgotten (old) or another user's: nothing to show
                continue
        return out

    @staticmethod
    def pick_row(row_ids: list[str], evt: gr.SelectData):
        """A click on a table row selects that document in the picker."""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return row_ids[row] if row_ids and 0 <= row < len(row_ids) else None

    def delete_document(self, collection: str, document_id: str | None, request: gr.Request | None = None):
        """-> (status, table, empty note, picker, row ids)."""
        lang = language_of(request)
        if not document_id:
            raise gr.Error(text("docs_no_document_selected", lang))
        try:
            name = self.collections_of.delete_document(current_owner(request), collection, document_id).name
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        return (text("docs_deleted_document", lang, name=name), *self.documents(collection, request))

    # ------------------------------------------------------------ questions

    def ask(self, question: str, collection: str = DEFAULT_COLLECTION, top_k: int = 5, strict: bool = True,
            max_tokens: int = DEFAULT_MAX_TOKENS, history: list[dict] | None = None, model: str | None = None,
            request: gr.Request | None = None) -> Iterator[tuple]:
        """Streams (chat, sources panel, history, question box) while the answer is written."""
        lang = language_of(request)
        history = list(history or [])
        question = (question or "").strip()
        if not question:
            raise gr.Error(text("docs_empty_question", lang))
        user = current_owner(request)
        try:
            params = default_params(int(max_tokens))
            if not self.collections_of.documents(user, collection or DEFAULT_COLLECTION):
                raise gr.Error(text("docs_no_documents_to_ask", lang))
            storage = self.collections_of.resolve(user, collection).storage
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        key = session_key(request)
        cancel = self.cancels.start(key)
        answer = {"role": "assistant", "content": "", "pending": True}
        turns = [*history, {"role": "user", "content": question}, answer]
        sources = text("docs_sources_searching", lang)
        yield to_display(turns), sources, turns, ""
        try:
            for notice in loading_notices(self.services.models, model, lang):
                yield to_display(turns), notice, turns, ""
            for item in answer_stream(self.services, storage, question, int(top_k), bool(strict), history, cancel,
                                      params=params, session_id=f"docs-{key}", user=user, model=model):
                if isinstance(item, tuple):
                    ref = collection or DEFAULT_COLLECTION  # sources link to their pages (webui.page_preview)
                    sources, answer["meta"] = format_sources(item[1], lang, ref), format_citations(item[1], lang, ref)
                elif isinstance(item, GenerationStats):
                    answer.pop("pending", None)
                    answer["meta"] = " · ".join(p for p in (answer.get("meta"), stats_line(item, lang)) if p)
                else:
                    answer["content"] += item
                yield to_display(turns), sources, turns, ""
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        finally:
            answer.pop("pending", None)
            cancel.set()  # a closed stream (tab closed, event cancelled) frees the model too

    def stop(self, request: gr.Request | None = None) -> None:
        self.cancels.cancel(session_key(request))

    @staticmethod
    def clear(request: gr.Request | None = None):
        """-> (chat, sources, history, question box)."""
        return [], text("docs_sources_empty", language_of(request)), [], ""



def _refresh_triggers() -> list:
    """Refresh the selector and table on page load and whenever the tab is opened."""
    triggers = []
    root = gr.context.Context.root_block
    if root is not None:
        triggers.append(root.load)
    parent = gr.context.Context.block
    if isinstance(parent, gr.Tab):
        triggers.append(parent.select)
    return triggers


def build_docs_tab(services, cancels: CancelRegistry | None = None) -> DocsHandlers:
    """Lay out the Docs tab inside the current Blocks context (a ``gr.Tab``) and wire its events."""
    handlers = DocsHandlers(services, cancels)
    config = services.rag_config or services.store.config
    history, row_ids, watched = gr.State([]), gr.State([]), gr.State({"ids": [], "open": []})
    timer = gr.Timer(POLL_S, active=False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340, elem_id="docs-library"):
            collection = gr.Dropdown(choices=[DEFAULT_COLLECTION], value=DEFAULT_COLLECTION,
                                     label=t("docs_collection"), interactive=True, elem_id="docs-collection",
                                     # collections made later (other tabs, REST) must be accepted by /ask;
                                     # an unknown name gets the store's "no collection named" message
                                     allow_custom_value=True)
            badge = gr.HTML(visible=False, elem_id="docs-sync-badge")
            with gr.Accordion(t("docs_manage"), open=False):
                with gr.Row(equal_height=True):
                    new_name = gr.Textbox(label=t("docs_new_collection"), placeholder=t("docs_new_placeholder"),
                                          scale=3, elem_id="docs-new-name")
                    create = gr.Button(t("docs_create"), scale=1, elem_id="docs-create")
                delete_col = gr.Button(t("docs_delete_collection"), variant="stop", size="sm",
                                       elem_id="docs-delete-collection")
                with gr.Group(visible=False) as confirm_box:
                    confirm_text = gr.Markdown()
                    with gr.Row():
                        confirm = gr.Button(t("docs_confirm"), variant="stop", size="sm", elem_id="docs-confirm")
                        cancel = gr.Button(t("docs_cancel"), size="sm")
                build_sharing(services.collections, collection)
            status = gr.Markdown(elem_id="docs-status")
            files = gr.File(label=t("docs_upload"), file_count="multiple", file_types=sorted(SUPPORTED_EXTENSIONS),
                            type="filepath", height=140, elem_id="docs-upload")
            report = gr.HTML(elem_id="docs-upload-report")
            cancel_uploads = gr.Button(t("docs_cancel_uploads"), variant="stop", size="sm", visible=False,
                                       elem_id="docs-cancel-uploads")
            empty = gr.Markdown(t("docs_empty"), elem_id="docs-empty")
            table = gr.Dataframe(headers=table_headers(), datatype=["str", "str", "number", "str"],
                                 label=t("docs_documents"), show_label=True,
                                 interactive=False, wrap=True, max_height=320, elem_id="docs-table")
            with gr.Row(equal_height=False):
                picker = gr.Dropdown(choices=[], label=t("docs_pick_document"), scale=3, elem_id="docs-picker")
                delete_doc = gr.Button(t("docs_delete_document"), variant="stop", size="sm", scale=1,
                                       elem_id="docs-delete-document")
        with gr.Column(scale=3, min_width=420, elem_id="docs-qa"):
            model = model_picker(services.models, "docs-model")
            # The chatbot placeholder is HTML, which the browser does not translate: both languages.
            chatbot = gr.Chatbot(label=t("docs_answers"), height=440,
                                 placeholder=text("docs_chat_empty", "en") + "<br>" + text("docs_chat_empty", "zh"),
                                 buttons=["copy"], sanitize_html=True, latex_delimiters=LATEX_DELIMITERS,
                                 elem_id="docs-chatbot")
            with gr.Row(equal_height=True):
                question = gr.Textbox(label=t("docs_question"), placeholder=t("docs_question_placeholder"),
                                      lines=1, max_lines=6, scale=8, elem_id="docs-question", submit_btn=False)
                with gr.Column(scale=1, min_width=110):
                    ask = gr.Button(t("docs_ask"), variant="primary", elem_id="docs-ask")
                    stop = gr.Button(t("docs_stop"), variant="stop", size="sm", elem_id="docs-stop")
                    clear = gr.Button(t("docs_clear"), size="sm", elem_id="docs-clear")
            strict = gr.Checkbox(value=config.strict, label=t("docs_strict"), elem_id="docs-strict")
            with gr.Row():
                top_k = gr.Slider(1, 20, value=config.top_k, step=1, label=t("docs_top_k"), min_width=200)
                max_tokens = gr.Slider(16, 2048, value=DEFAULT_MAX_TOKENS, step=16, label=t("docs_max_tokens"),
                                       min_width=200)
            with gr.Accordion(t("docs_sources"), open=True):
                sources = gr.Markdown(t("docs_sources_empty"), elem_id="docs-sources")

    listing = [table, empty, picker, row_ids]
    triggers = _refresh_triggers()
    if triggers:
        gr.on(triggers, handlers.collections, [collection], [collection], queue=False,
              api_visibility="private").then(handlers.documents, [collection], listing, queue=False,
                                             api_visibility="private")
        gr.on(triggers, handlers.resume, [watched], [report, watched, timer], queue=False,
              api_visibility="private").then(handlers.uploads_running, [watched], [cancel_uploads], queue=False,
                                             api_visibility="private")
    collection.change(handlers.documents, [collection], listing, queue=False, api_visibility="private")
    sync = getattr(services, "sync", None)
    if sync is not None and sync.config.enabled:  # the badge: on selection, and kept fresh ("2 min ago")
        badge_timer = gr.Timer(BADGE_S)
        for trigger in (*triggers, collection.change, badge_timer.tick):
            trigger(handlers.sync_badge, [collection], [badge], queue=False, api_visibility="private",
                    show_progress="hidden")
    create.click(handlers.create_collection, [new_name], [collection, status, new_name], api_visibility="private")
    new_name.submit(handlers.create_collection, [new_name], [collection, status, new_name], api_visibility="private")
    delete_col.click(handlers.ask_delete_collection, [collection], [confirm_box, confirm_text],
                     api_visibility="private")
    confirm.click(handlers.delete_collection, [collection], [collection, confirm_box, status],
                  api_visibility="private")
    cancel.click(handlers.cancel_delete, None, [confirm_box], queue=False, api_visibility="private")
    for event in (files.upload(handlers.upload, [files, collection, watched], [report, files, watched, timer],
                               api_visibility="private"),
                  timer.tick(handlers.poll, [collection, watched], [report, watched, timer, *listing], queue=False,
                             api_visibility="private", show_progress="hidden"),
                  cancel_uploads.click(handlers.cancel_uploads, [watched], [report, watched, timer], queue=False,
                                       api_visibility="private")):
        event.then(handlers.uploads_running, [watched], [cancel_uploads], queue=False, api_visibility="private",
                   show_progress="hidden")
    table.select(handlers.pick_row, [row_ids], [picker], queue=False, api_visibility="private")
    delete_doc.click(handlers.delete_document, [collection, picker], [status, *listing], api_visibility="private")

    ask_inputs = [question, collection, top_k, strict, max_tokens, history, model]
    ask_outputs = [chatbot, sources, history, question]
    ask.click(handlers.ask, ask_inputs, ask_outputs, api_name="ask", concurrency_limit=None)
    question.submit(handlers.ask, ask_inputs, ask_outputs, api_visibility="private", concurrency_limit=None)
    stop.click(handlers.stop, None, None, queue=False, api_visibility="private")
    clear.click(handlers.clear, None, ask_outputs, api_visibility="private")
    return handlers
