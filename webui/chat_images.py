"""Images in a Chat message, for models that can see: the 🖼 button, the pictures waiting, the thumbnails.

The button shows only while the chosen model reads images (``ModelRegistry.sees_images``, the engine's
one rule). A picked picture is checked when it is picked (``engine.images.read_image``: a kind models
read, within the size limit) and kept per browser tab as a data: URL until the next message takes it
(like the files of ``webui.chat_files``); it is then saved with that question (``images``), so a
reload, a regenerate or an edited question shows and sends the same pictures. Thumbnails are small
JPEGs made here, so the page never receives the full pictures again; they are ``<img>`` elements with
a data: URL made by us, escaped, inside the Chatbot's sanitized HTML.
"""

from __future__ import annotations

import html
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from engine.errors import ConfigError
from engine.images import MAX_IMAGES, read_image, thumbnail
from webui.adapters import session_key
from webui.i18n import language_of, register, text

__all__ = ["ChatImages", "thumbs_html", "CSS", "IMAGE_TYPES"]

register(
    en={"attach_image": "🖼 Image", "images_clear": "✕ Images", "images_waiting": "Shown with the next message:",
        "images_too_many": "At most {n} images go with one message; the others were left out.",
        "image_alt": "image {n}"},
    zh={"attach_image": "🖼 图片", "images_clear": "✕ 图片", "images_waiting": "随下一条消息发送的图片：",
        "images_too_many": "一条消息最多附带 {n} 张图片；其余的未加入。", "image_alt": "图片 {n}"},
)

IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"]
CSS = """
.dcu-images { display: inline-flex; flex-wrap: wrap; gap: 0.35rem; }
/* !important: the Chatbot sizes a message's images itself (up to 420 px) */
.dcu-images img.dcu-thumb { width: auto !important; height: auto !important; max-height: 120px !important;
    max-width: 160px !important; margin: 0 !important; border-radius: 0.4rem;
    border: 1px solid var(--border-color-primary); }
#chat-images-waiting:empty { display: none; }
"""


_THUMBS: OrderedDict[tuple, str] = OrderedDict()  # a picture's key -> its thumbnail, least recently used first
_THUMBS_KEPT = 512
_thumbs_lock = threading.Lock()


def _thumbnail(url: str) -> str:
    """``thumbnail(url)``, remembered: a conversation is displayed again at every streamed token. The key is
    small (Python's salted string hash, the length and both ends of the URL) so that the cache does not hold
    the pictures themselves."""
    key = (hash(url), len(url), url[:160], url[-160:])
    with _thumbs_lock:
        small = _THUMBS.get(key)
        if small is not None:
            _THUMBS.move_to_end(key)
            return small
    small = thumbnail(url)
    with _thumbs_lock:
        _THUMBS[key] = small
        while len(_THUMBS) > _THUMBS_KEPT:
            _THUMBS.popitem(last=False)
    return small


def thumbs_html(images: list[str] | None, lang: str = "en") -> str:
    """The thumbnails of a message's images, or ""."""
    shown = []
    for number, url in enumerate(images or [], 1):
        small = _thumbnail(url)
        if small:
            alt = html.escape(text("image_alt", lang, n=number))
            shown.append(f'<img class="dcu-thumb" src="{html.escape(small)}" alt="{alt}">')
    return f'<span class="dcu-images">{"".join(shown)}</span>' if shown else ""


class ChatImages:
    """The pictures each browser tab has picked and not sent yet, and which models may get them."""

    def __init__(self, models, max_tracked: int = 1000) -> None:
        self.models = models
        self._waiting: OrderedDict[str, list[str]] = OrderedDict()
        self._max_tracked = max_tracked
        self._lock = threading.Lock()

    def waiting(self, request) -> list[str]:
        with self._lock:
            return list(self._waiting.get(session_key(request), []))

    def put(self, request, images: list[str]) -> None:
        with self._lock:
            key = session_key(request)
            if images:
                self._waiting[key] = list(images)
                self._waiting.move_to_end(key)
                while len(self._waiting) > self._max_tracked:  # tabs closed long ago
                    self._waiting.popitem(last=False)
            else:
                self._waiting.pop(key, None)

    def take(self, request) -> list[str]:
        """The pictures waiting in this tab, now sent (none wait any more)."""
        with self._lock:
            return self._waiting.pop(session_key(request), [])

    # -- handlers --------------------------------------------------------------------------

    def button(self, model: str | None = None) -> dict:
        """The 🖼 button: shown only while the chosen model reads images."""
        return gr.update(visible=self.models.sees_images(model))

    def add(self, paths, request: gr.Request = None) -> tuple:
        """Pictures picked with 🖼: each checked (a refused one shows why, the others stay); -> ``view``."""
        lang = language_of(request)
        current = self.waiting(request)
        for path in paths or []:
            path = Path(path)
            if len(current) >= MAX_IMAGES:
                gr.Warning(text("images_too_many", lang, n=MAX_IMAGES))
                break
            try:
                url = read_image(path.read_bytes(), path.name)
            except ConfigError as exc:
                gr.Warning(str(exc))
                continue
            if url not in current:
                current.append(url)
        self.put(request, current)
        return self.view(request, lang)

    def view(self, request: gr.Request = None, lang: str | None = None) -> tuple:
        """(the waiting thumbnails, the ✕ button shown only when pictures wait)."""
        waiting = self.waiting(request)
        if not waiting:
            return "", gr.update(visible=False)
        lang = lang or language_of(request)
        return f"<small>{text('images_waiting', lang)}</small> {thumbs_html(waiting, lang)}", gr.update(visible=True)

    def clear(self, request: gr.Request = None) -> tuple:
        self.put(request, [])
        return self.view(request)

    def sent(self, message: str, request: gr.Request = None) -> tuple:
        """After Send, before the answer starts: the thumbnails go with a message (it takes them), else stay."""
        return ("", gr.update(visible=False)) if (message or "").strip() else (gr.update(), gr.update())
