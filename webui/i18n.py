"""English and Chinese strings for the UI.

Each tab module registers its own strings with ``register``; ``build_i18n`` hands all of them
to Gradio, whose front end picks the language from the browser (switchable in Settings).
Labels use ``t("key")``; messages built on the server use ``text(key, lang)``.
"""

from __future__ import annotations

__all__ = ["register", "t", "text", "build_i18n", "language_of", "LANGUAGES"]

LANGUAGES = ("en", "zh")
_STRINGS: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}


def register(en: dict[str, str], zh: dict[str, str]) -> None:
    missing = set(en) ^ set(zh)
    if missing:
        raise ValueError(f"Strings without a translation: {sorted(missing)}")
    _STRINGS["en"].update(en)
    _STRINGS["zh"].update(zh)


def t(key: str):
    """A label translated in the browser."""
    from gradio.i18n import I18nData

    if key not in _STRINGS["en"]:
        raise KeyError(f"No UI string registered for {key!r}")
    return I18nData(key)


def text(key: str, lang: str = "en", **values) -> str:
    """A string translated on the server (for messages built at run time)."""
    table = _STRINGS.get(lang) or _STRINGS["en"]
    return table.get(key, _STRINGS["en"][key]).format(**values)


def language_of(request) -> str:
    """'zh' when the browser prefers Chinese, else 'en' (from Accept-Language)."""
    header = ""
    if request is not None:
        headers = getattr(request, "headers", None) or {}
        header = headers.get("accept-language", "") if hasattr(headers, "get") else ""
    first = header.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def build_i18n():
    import gradio as gr

    # Gradio matches locales like zh-CN / zh-TW to "zh" and falls back to English.
    return gr.I18n(en=dict(_STRINGS["en"]), zh=dict(_STRINGS["zh"]))


register(
    en={
        "app_title": "dcu-chat",
        "tab_chat": "Chat",
        "tab_docs": "Document Q&A",
        "tab_code": "Code",
        "tab_system": "System",
        "error_busy": "The server is busy. Please try again in a moment.",
        "error_internal": "Something went wrong: {detail}",
    },
    zh={
        "app_title": "dcu-chat",
        "tab_chat": "对话",
        "tab_docs": "文档问答",
        "tab_code": "代码",
        "tab_system": "系统",
        "error_busy": "服务器繁忙，请稍后再试。",
        "error_internal": "出现错误：{detail}",
    },
)
