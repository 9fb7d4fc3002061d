"""Strings and text formatting of the Document Q&A tab: upload reports, the document table,
the sources panel and the citation line under each answer. Plain functions, no Gradio.

Everything shown comes from user files (names, PDF text), so it is escaped before it goes
into Markdown: a file called ``*_[x](y)`` must show as that name, not as a link.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import quote

from rag.retrieval import Hit
from webui.i18n import register, text
from webui.sync_badge import sync_change_line

__all__ = ["escape_md", "page_label", "source_label", "preview_url", "file_preview_url", "cited_link",
           "format_sources", "format_citations",
           "format_upload", "format_jobs", "document_rows", "table_headers", "SNIPPET_CHARS"]

SNIPPET_CHARS = 300

register(
    en={
        "docs_collection": "Collection", "docs_manage": "Manage collections",
        "docs_new_collection": "New collection", "docs_new_placeholder": "name: letters, digits, - or _",
        "docs_create": "Create", "docs_delete_collection": "Delete this collection…",
        "docs_confirm_delete_collection": "Delete collection **{name}** and its {n} document(s)? This cannot be undone.",
        "docs_confirm": "Yes, delete it", "docs_cancel": "Cancel",
        "docs_created": "Created collection **{name}**.", "docs_deleted_collection": "Deleted collection **{name}**.",
        "docs_default_protected": "The default collection cannot be deleted.",
        "docs_upload": "Add documents: PDF (scanned too), images, Word (.docx), Markdown, HTML or text",
        "docs_cancel_uploads": "Stop indexing", "docs_job_queued": "waiting", "docs_jobs_running": "{n} file(s) being indexed — you can leave this page "
                                                             "and come back.",
        "docs_added": "added · {pages} page(s), {chunks} chunk(s)", "docs_added_nopages": "added · {chunks} chunk(s)",
        "docs_duplicate": "already in this collection, skipped",
        "docs_upload_summary": "{added} added · {duplicates} already present · {failed} failed",
        "docs_documents": "Documents",
        "docs_empty": "No documents yet — upload PDFs, Word, Markdown, HTML or text files.",
        "docs_col_name": "Name", "docs_col_pages": "Pages", "docs_col_chunks": "Chunks", "docs_col_added": "Added",
        "docs_pick_document": "Document (or click a row)", "docs_delete_document": "Delete document",
        "docs_deleted_document": "Deleted **{name}**.",
        "docs_no_document_selected": "Pick a document to delete first (click its row in the table).",
        "docs_question": "Question",
        "docs_question_placeholder": "Ask about the documents in this collection… (Enter to send)",
        "docs_ask": "Ask", "docs_strict": "Answer only from the documents", "docs_top_k": "Passages to retrieve",
        "docs_max_tokens": "Max answer tokens", "docs_clear": "Clear", "docs_answers": "Answers",
        "docs_chat_empty": "Ask a question about your documents. Answers cite passages as [1], [2]… "
                           "and the passages are listed under Sources.",
        "docs_sources": "Sources",
        "docs_sources_empty": "The passages behind the latest answer appear here, with file, page and score.",
        "docs_sources_searching": "Searching the collection…",
        "docs_sources_none": "No passage in this collection is relevant enough to this question.",
        "docs_score": "score", "docs_no_documents_to_ask": "This collection has no documents yet — upload some files first.",
        "docs_empty_question": "Type a question first.", "docs_no_files": "Choose one or more files to upload.",
        "docs_stop": "Stop", "docs_show_page": "Show the cited page",
    },
    zh={
        "docs_collection": "文档集", "docs_manage": "管理文档集",
        "docs_new_collection": "新建文档集", "docs_new_placeholder": "名称：字母、数字、- 或 _",
        "docs_create": "创建", "docs_delete_collection": "删除此文档集…",
        "docs_confirm_delete_collection": "删除文档集 **{name}** 及其中的 {n} 个文档？此操作无法撤销。",
        "docs_confirm": "确认删除", "docs_cancel": "取消",
        "docs_created": "已创建文档集 **{name}**。", "docs_deleted_collection": "已删除文档集 **{name}**。",
        "docs_default_protected": "默认文档集不能删除。",
        "docs_upload": "添加文档：PDF（含扫描件）、图片、Word (.docx)、Markdown、HTML 或文本",
        "docs_cancel_uploads": "停止建立索引", "docs_job_queued": "等待中", "docs_jobs_running": "{n} 个文件正在建立索引——可以离开此页面，稍后再回来查看。",
        "docs_added": "已添加 · {pages} 页，{chunks} 个分块", "docs_added_nopages": "已添加 · {chunks} 个分块",
        "docs_duplicate": "已在此文档集中，已跳过",
        "docs_upload_summary": "新增 {added} 个 · 已存在 {duplicates} 个 · 失败 {failed} 个",
        "docs_documents": "文档",
        "docs_empty": "还没有文档——请上传 PDF、Word、Markdown、HTML 或文本文件。",
        "docs_col_name": "名称", "docs_col_pages": "页数", "docs_col_chunks": "分块", "docs_col_added": "添加时间",
        "docs_pick_document": "文档（或点击表格中的一行）", "docs_delete_document": "删除文档",
        "docs_deleted_document": "已删除 **{name}**。",
        "docs_no_document_selected": "请先选择要删除的文档（点击表格中的一行）。",
        "docs_question": "问题",
        "docs_question_placeholder": "就此文档集中的文档提问…（Enter 发送）",
        "docs_ask": "提问", "docs_strict": "仅根据文档回答", "docs_top_k": "检索段落数",
        "docs_max_tokens": "回答最大长度", "docs_clear": "清空", "docs_answers": "回答",
        "docs_chat_empty": "就你的文档提问。回答用 [1]、[2]… 标注引用的段落，段落列在“来源”中。",
        "docs_sources": "来源",
        "docs_sources_empty": "最近一次回答所依据的段落会显示在这里，包括文件、页码和相关度。",
        "docs_sources_searching": "正在检索文档集…",
        "docs_sources_none": "此文档集中没有与这个问题足够相关的段落。",
        "docs_score": "相关度", "docs_no_documents_to_ask": "此文档集还没有文档——请先上传文件。",
        "docs_empty_question": "请先输入问题。", "docs_no_files": "请选择要上传的文件。",
        "docs_stop": "停止", "docs_show_page": "查看引用的页面",
    },
)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def escape_md(value: str) -> str:
    """Text shown literally in Markdown (backslash-escaped specials, no line breaks)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def page_label(page: int | None, lang: str = "en") -> str:
    if page is None:
        return ""
    return f"第{page}页" if lang == "zh" else f"p.{page}"


def source_label(hit: Hit, lang: str = "en") -> str:
    """``report.pdf p.3`` — the page-level citation of one hit."""
    page = page_label(hit.page, lang)
    return f"{hit.source} {page}" if page else hit.source


def preview_url(collection: str, hit: Hit) -> str:
    """Where the cited page is shown (``webui.preview_api``): its image with the passage marked, or
    for a file without pages its text."""
    base = f"/api/collections/{quote(collection, safe=':')}/documents/{quote(hit.document_id, safe='')}"
    if hit.page is None:
        return f"{base}/text?chunk={int(hit.chunk_id)}"
    return f"{base}/pages/{int(hit.page)}.png?chunk={int(hit.chunk_id)}"


def file_preview_url(session_id: str, hit: Hit, passage: bool) -> str:
    """Where the cited page of a file in a Chat message is shown: its text (``webui.preview_api``);
    ``passage`` when the hit is a passage of the conversation's file index (not a whole page)."""
    url = f"/api/sessions/{quote(session_id, safe='')}/files/{quote(hit.document_id, safe='')}/text"
    query = [f"page={int(hit.page)}"] if hit.page is not None else []
    query += [f"chunk={int(hit.chunk_id)}"] if passage else []
    return url + ("?" + "&".join(query) if query else "")


def cited_link(n: int, hit: Hit, lang: str, url: str | None, bold: bool = False) -> str:
    """``[n] report.pdf p.3`` in Markdown, a link to ``url`` when given (the page script
    ``webui.page_preview`` opens it in a panel)."""
    if url is None:
        label = f"[{n}] {escape_md(source_label(hit, lang))}"
        return f"**{label}**" if bold else label
    # "[n]" as entities inside the link's text: "\\[" would start a formula in the Chatbot (LATEX_DELIMITERS)
    label = f"&#91;{n}&#93; {escape_md(source_label(hit, lang))}"
    label = f"**{label}**" if bold else label
    return f'[{label}]({url} "{text("docs_show_page", lang)}")'


def _cited(n: int, hit: Hit, lang: str, collection: str | None, bold: bool = False) -> str:
    return cited_link(n, hit, lang, None if collection is None else preview_url(collection, hit), bold)


def _snippet(value: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + "…"


def format_sources(hits: Sequence[Hit], lang: str = "en", collection: str | None = None) -> str:
    """The sources panel: one block per numbered hit with file, page, score and a snippet; with
    ``collection`` each source links to its page."""
    if not hits:
        return text("docs_sources_none", lang)
    blocks = [f"{_cited(n, hit, lang, collection, bold=True)} · {text('docs_score', lang)} {hit.score:.2f}\n"
              f"> {escape_md(_snippet(hit.text))}" for n, hit in enumerate(hits, 1)]
    return "\n\n".join(blocks)


def format_citations(hits: Sequence[Hit], lang: str = "en", collection: str | None = None) -> str:
    """The short line under an answer: ``[1] report.pdf p.3 · [2] guide.md`` (links with ``collection``)."""
    return " · ".join(_cited(n, hit, lang, collection) for n, hit in enumerate(hits, 1))


def format_upload(result, before: set[str], lang: str = "en") -> str:
    """Per-file lines (added / already present / error) and a summary, from an ``AddResult``.

    ``before`` holds the ids present before the upload: the store reports a file whose bytes
    are already indexed as that existing document, which makes it a duplicate here.
    """
    lines: list[str] = []
    seen = set(before)
    added = duplicates = 0
    for doc in result.documents:
        if doc.id in seen:
            duplicates += 1
            lines.append(f"- ↩ **{escape_md(doc.name)}** — {text('docs_duplicate', lang)}")
            continue
        seen.add(doc.id)
        added += 1
        detail = (text("docs_added", lang, pages=doc.pages, chunks=doc.chunks) if doc.pages
                  else text("docs_added_nopages", lang, chunks=doc.chunks))
        lines.append(f"- ✓ **{escape_md(doc.name)}** — {detail}")
    for error in result.errors:
        lines.append(f"- ✗ **{escape_md(error.name)}** — {escape_md(error.error)}")
    summary = text("docs_upload_summary", lang, added=added, duplicates=duplicates, failed=len(result.errors))
    return f"{summary}\n\n" + "\n".join(lines)


def format_jobs(jobs, lang: str = "en") -> str:
    """HTML of upload jobs (``IngestJob`` values, one file each): a progress bar per running file,
    then, as each ends, the same per-file lines and summary as ``format_upload``."""
    if not jobs:
        return ""
    rows: list[str] = []
    added = duplicates = failed = running = 0
    for job in jobs:
        name = html.escape(", ".join(job.files))
        if job.status in ("queued", "running"):
            running += 1
            detail = text("docs_job_queued", lang) if job.status == "queued" else job.message
            rows.append(f'<div class="docs-job" data-status="{job.status}"><b>{name}</b> — {round(100 * job.progress)} %'
                        f' <small style="opacity:0.7">{html.escape(detail)}</small><br><progress max="1" value="{job.progress:.3f}" '
                        f'style="width:100%"></progress></div>')
            continue
        for doc in job.documents:
            if doc.get("change"):  # a folder-sync pass (assist.sync): added, updated, renamed or removed
                rows.append(f'<div class="docs-job" data-status="done">{sync_change_line(doc, lang)}</div>')
                continue
            if doc.get("existing"):
                duplicates += 1
                line = f"↩ <b>{html.escape(doc['name'])}</b> — {text('docs_duplicate', lang)}"
            else:
                added += 1
                detail = (text("docs_added", lang, pages=doc["pages"], chunks=doc["chunks"]) if doc["pages"]
                          else text("docs_added_nopages", lang, chunks=doc["chunks"]))
                line = f"✓ <b>{html.escape(doc['name'])}</b> — {detail}"
            rows.append(f'<div class="docs-job" data-status="done">{line}</div>')
        for error in job.errors:
            failed += 1
            rows.append(f'<div class="docs-job" data-status="failed">✗ <b>{html.escape(error["name"] or name)}</b> — '
                        f'{html.escape(error["error"])}</div>')
    head = [text("docs_jobs_running", lang, n=running)] if running else []
    if added or duplicates or failed:
        head.append(text("docs_upload_summary", lang, added=added, duplicates=duplicates, failed=failed))
    return "".join(f"<p>{h}</p>" for h in head) + "".join(rows)


def _when(added_at: str) -> str:
    # "2025-06-01T12:00:00+00:00" -> "2025-06-01 12:00 UTC"
    match = re.match(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})", added_at or "")
    return f"{match.group(1)} {match.group(2)} UTC" if match else (added_at or "")


def table_headers(lang: str = "en") -> list[str]:
    return [text(k, lang) for k in ("docs_col_name", "docs_col_pages", "docs_col_chunks", "docs_col_added")]


def document_rows(documents) -> list[list]:
    """Rows of the document table: name, pages ("—" for unpaged files), chunks, when added."""
    return [[d.name, "—" if d.pages is None else str(d.pages), d.chunks, _when(d.added_at)] for d in documents]
