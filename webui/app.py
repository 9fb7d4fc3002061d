"""``build_app(services) -> gr.Blocks``: the three tabs, no launching here."""

from __future__ import annotations

import html

import gradio as gr

from webui.chat_branches import CSS as BRANCH_CSS
from webui.chat_branches import HEAD as BRANCH_HEAD
from webui.chat_files import CSS as FILES_CSS
from webui.chat_images import CSS as IMAGES_CSS
from webui.chat_tab import build_chat_tab
from webui.code_tab import build_code_tab
from webui.i18n import t
from webui.page_preview import CSS as PREVIEW_CSS
from webui.page_preview import HEAD as PREVIEW_HEAD
from webui.reading import CSS as READING_CSS
from webui.reading import HEAD as READING_HEAD
from webui.reading import build_theme_switch
from webui.services import Services
from webui.sessions_panel import CSS as SESSIONS_CSS
from webui.settings_tab import build_settings_tab
from webui.system_tab import build_system_tab

__all__ = ["build_app", "CSS", "HEAD"]

CSS = """
#chatbot sub { opacity: 0.65; }
.dcu-header { display: flex; align-items: baseline; gap: 0.8rem; }
.dcu-header h1 { margin: 0; }
footer { visibility: hidden; }
""" + SESSIONS_CSS + BRANCH_CSS + READING_CSS + FILES_CSS + IMAGES_CSS + PREVIEW_CSS
HEAD = BRANCH_HEAD + READING_HEAD + PREVIEW_HEAD  # page scripts (``mount_gradio_app(head=…)``)


def _header(services: Services, blocks: gr.Blocks) -> None:
    info = services.models.engine().info  # the default model (loaded at start)
    quant = f" · {info.quantization}" if info.quantization else ""
    # "llama.cpp (xllamacpp V) · CPU only · CPU AVX2 …" -> "llamacpp (CPU only)"; the System tab has it all
    parts = (getattr(info, "backend_detail", "") or "").split(" · ")
    backend = html.escape(f"{info.backend} ({parts[1]})" if len(parts) > 1 else info.backend)
    others = len(services.models.aliases) - 1
    more = f" (+{others} more: see System)" if others else ""
    with gr.Row(elem_id="header-row"):
        gr.Markdown(
            f"<div class='dcu-header'><h1>dcu-chat</h1><span>{info.model}{more} · {backend} · "
            f"{info.device.upper()} ({info.device_name}) · {info.dtype}{quant}</span></div>",
            elem_id="header",
        )
        build_theme_switch(blocks)
    for note in info.notes:
        if "CPU instead" in note or "falling back" in note.lower():
            gr.Markdown(f"⚠️ {note}", elem_id="device-warning")


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="dcu-chat", analytics_enabled=False) as blocks:
        _header(services, blocks)
        with gr.Tabs():
            with gr.Tab(t("tab_chat"), id="chat"):
                build_chat_tab(services)
            if services.store is not None:
                from webui.docs_tab import build_docs_tab

                with gr.Tab(t("tab_docs"), id="docs"):
                    build_docs_tab(services)
            with gr.Tab(t("tab_code"), id="code"):
                build_code_tab(services.models, services.quotas, services.sandbox)
            with gr.Tab(t("tab_system"), id="system"):
                build_system_tab(services)
            with gr.Tab(t("tab_settings"), id="settings"):
                build_settings_tab(services, blocks)
    return blocks
