"""The Docs tab's folder-sync badge: which folder a collection follows, when it was last synced, what failed.

    ⟳ synced from /srv/docs/manuals · 2 min ago · 12 files · 1 failed: broken.pdf — This PDF is damaged…

Plain functions, no Gradio; the folder and the messages come from the server's disk, so
everything is HTML-escaped.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone

from assist.errors import AssistError
from webui.i18n import register, text

__all__ = ["sync_badge", "format_badge", "sync_change_line"]

_SHOWN_FAILURES = 3

register(
    en={"sync_synced": "⟳ synced from {folder}", "sync_running": "⟳ syncing from {folder}…",
        "sync_pending": "⟳ follows {folder} · first pass pending", "sync_files": "{n} files",
        "sync_failed": "{n} failed", "sync_pass_failed": "last pass failed: {message}",
        "sync_change_added": "added", "sync_change_updated": "updated", "sync_change_renamed": "renamed from {old}",
        "sync_change_removed": "removed (deleted from the folder)",
        "sync_now": "just now", "sync_min": "{n} min ago", "sync_hours": "{n} h ago", "sync_days": "{n} d ago"},
    zh={"sync_synced": "⟳ 同步自 {folder}", "sync_running": "⟳ 正在同步 {folder}…",
        "sync_pending": "⟳ 跟随 {folder} · 等待首次同步", "sync_files": "{n} 个文件",
        "sync_failed": "{n} 个失败", "sync_pass_failed": "上次同步失败：{message}",
        "sync_change_added": "已添加", "sync_change_updated": "已更新", "sync_change_renamed": "由 {old} 改名",
        "sync_change_removed": "已移除（文件夹中已删除）",
        "sync_now": "刚刚", "sync_min": "{n} 分钟前", "sync_hours": "{n} 小时前", "sync_days": "{n} 天前"},
)


def _ago(stamp: str, lang: str, now: datetime | None = None) -> str:
    try:
        then = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return ""
    seconds = max(0, ((now or datetime.now(timezone.utc)) - then).total_seconds())
    if seconds < 60:
        return text("sync_now", lang)
    if seconds < 3600:
        return text("sync_min", lang, n=int(seconds // 60))
    if seconds < 86400:
        return text("sync_hours", lang, n=int(seconds // 3600))
    return text("sync_days", lang, n=int(seconds // 86400))


def sync_change_line(doc: dict, lang: str = "en") -> str:
    """One file of a folder-sync pass job (``{"name", "change", "from"?}``) as a line of the upload report."""
    change = doc.get("change", "")
    what = text(f"sync_change_{change}", lang, old=html.escape(doc.get("from", ""))) if change in (
        "added", "updated", "renamed", "removed") else html.escape(change)
    return f"⟳ <b>{html.escape(doc.get('name', ''))}</b> — {what}"


def format_badge(status: dict, lang: str = "en", now: datetime | None = None) -> str:
    """The badge's HTML for a ``FolderSync.status`` answer."""
    folder = html.escape(status["folder"])
    last = status.get("last_pass")
    if status["pass"]["state"] == "running":
        parts = [text("sync_running", lang, folder=folder)]
    elif not last:
        parts = [text("sync_pending", lang, folder=folder)]
    else:
        fresh = max(last.get("finished_at") or "", last.get("checked_at") or "")  # a check that found no change
        parts = [text("sync_synced", lang, folder=folder), _ago(fresh, lang, now)]
    if last and last.get("status") == "failed":
        parts.append(text("sync_pass_failed", lang, message=html.escape(last.get("message", ""))))
    elif last:
        parts.append(text("sync_files", lang, n=last.get("files", 0)))
    failed = (last or {}).get("failed") or []
    line = " · ".join(p for p in parts if p)
    if failed:
        items = "".join(f"<li><b>{html.escape(f['path'])}</b> — {html.escape(f['error'])}</li>"
                        for f in failed[:_SHOWN_FAILURES])
        more = f"<li>… +{len(failed) - _SHOWN_FAILURES}</li>" if len(failed) > _SHOWN_FAILURES else ""
        return (f'<details class="sync-badge"><summary>{line} · ⚠ {text("sync_failed", lang, n=len(failed))}'
                f"</summary><ul>{items}{more}</ul></details>")
    return f'<div class="sync-badge">{line}</div>'


def sync_badge(services, user: str, collection: str, lang: str = "en") -> str:
    """The badge for ``collection`` as ``user`` sees it; "" when it follows no folder (or sync is absent)."""
    sync = getattr(services, "sync", None)
    if sync is None or not collection:
        return ""
    try:
        return format_badge(sync.status(user, collection), lang)
    except AssistError:  # follows nothing, or not visible to this user: no badge
        return ""
