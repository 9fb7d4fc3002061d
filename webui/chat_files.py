"""Files in a Chat message: the 📎 button, the chips of the files waiting to be sent, the chips on a message.

Files are read when they are picked (``assist.attachments``: rag's parsers, OCR for scans), so a
damaged, encrypted or too-large file is refused right away with a sentence saying why, and the
files read before it stay. Those waiting are kept per browser tab on the server (like the open
conversation in ``webui.chat_sessions``), so the public ``chat`` API keeps its inputs; the next
message sent from that tab takes them (``ChatFiles.take``) and they are saved with it.
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from assist.attachments import ChatAttachments
from webui.adapters import session_key
from webui.i18n import language_of, register, text

__all__ = ["ChatFiles", "chips_html", "CSS"]

register(
    en={"attach": "📎 Files", "attach_clear": "✕ Files", "attach_pages": "{n} p.",
        "attach_waiting": "Sent with the next message:", "files_reading": "Reading the attached files…"},
    zh={"attach": "📎 文件", "attach_clear": "✕ 文件", "attach_pages": "{n} 页",
        "attach_waiting": "随下一条消息发送：", "files_reading": "正在读取附件…"},
)

CSS = """
.dcu-files { display: inline-flex; flex-wrap: wrap; gap: 0.35rem; font-size: 0.85em; }
.dcu-file { padding: 0.1rem 0.5rem; border-radius: 1rem; border: 1px solid var(--border-color-primary);
            background: var(--background-fill-secondary); white-space: nowrap; }
#chat-files-waiting:empty { display: none; }
"""


def _chip(attachment: dict, lang: str) -> str:
    pages = attachment.get("pages")
    detail = f" · {text('attach_pages', lang, n=pages)}" if pages else ""
    return f'<span class="dcu-file">📎 {html.escape(str(attachment.get("name") or ""))}{detail}</span>'


def chips_html(attachments: list[dict] | None, lang: str = "en") -> str:
    """The chips of a message's files (file name, pages), or ""."""
    if not attachments:
        return ""
    return '<span class="dcu-files">' + "".join(_chip(a, lang) for a in attachments) + "</span>"


class ChatFiles:
    """The files each browser tab has picked and not sent yet, read by ``attachments``."""

    def __init__(self, attachments: ChatAttachments, max_tracked: int = 1000) -> None:
        self.attachments = attachments
        self._waiting: OrderedDict[str, list[dict]] = OrderedDict()
        self._max_tracked = max_tracked
        self._lock = threading.Lock()

    def waiting(self, request) -> list[dict]:
        with self._lock:
            return list(self._waiting.get(session_key(request), []))

    def put(self, request, attachments: list[dict]) -> None:
        with self._lock:
            key = session_key(request)
            if attachments:
                self._waiting[key] = list(attachments)
                self._waiting.move_to_end(key)
                while len(self._waiting) > self._max_tracked:  # tabs closed long ago
                    self._waiting.popitem(last=False)
            else:
                self._waiting.pop(key, None)

    def take(self, request) -> list[dict]:
        """The files waiting in this tab, now sent (none wait any more)."""
        with self._lock:
            return self._waiting.pop(session_key(request), [])

    # -- handlers --------------------------------------------------------------------------

    def add(self, paths, request: gr.Request = None) -> tuple:
        """Files picked with 📎: read each (a refused one shows why, the others stay); -> ``view``."""
        lang = language_of(request)
        files = []
        for path in paths or []:
            path = Path(path)
            files.append((_original_name(path), path.read_bytes()))
        current = self.waiting(request)
        read, errors = self.attachments.read(files, already=len(current))
        known = {a["id"] for a in current}
        self.put(request, current + [a for a in read if a["id"] not in known])
        for error in errors:
            gr.Warning(error)
        return self.view(request, lang)

    def chips(self, request=None, lang: str | None = None) -> str:
        """The chips of the files waiting in this tab, or ""."""
        waiting = self.waiting(request)
        if not waiting:
            return ""
        lang = lang or language_of(request)
        return f"<small>{text('attach_waiting', lang)}</small> {chips_html(waiting, lang)}"

    def view(self, request: gr.Request = None, lang: str | None = None) -> tuple:
        """(the waiting chips, the ✕ button shown only when files wait)."""
        chips = self.chips(request, lang)
        return chips, gr.update(visible=bool(chips))

    def clear(self, request: gr.Request = None) -> tuple:
        self.put(request, [])
        return self.view(request)

    def sent(self, message: str, request: gr.Request = None) -> tuple:
        """After Send, before the answer starts: the chips go with a message (it takes the files), else stay."""
        return ("", gr.update(visible=False)) if (message or "").strip() else (gr.update(), gr.update())


def _original_name(path: Path) -> str:
    # Gradio keeps an upload's own name as the file's name inside a temporary folder.
    return path.name
