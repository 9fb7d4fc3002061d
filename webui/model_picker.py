"""The model selector each tab shows when the server has several models, and the notices a tab
shows while a model that is not in memory loads (``engine.models`` loads on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from webui.i18n import register, t, text

__all__ = ["model_picker", "loading_notices"]

register(
    en={"model_picker": "Model", "model_loading": "Loading the model {model} (first use; this can take a while)…"},
    zh={"model_picker": "模型", "model_loading": "正在加载模型 {model}（首次使用，可能需要一些时间）…"},
)


def model_picker(models, elem_id: str) -> gr.Dropdown:
    """A dropdown of the served models, the default chosen; hidden when there is only one."""
    several = len(models.aliases) > 1
    with gr.Row(visible=several):
        picker = gr.Dropdown(choices=models.aliases, value=models.default, label=t("model_picker"), interactive=True,
                             visible=several, elem_id=elem_id, scale=1, min_width=200)
        gr.Column(scale=2, min_width=0)  # keeps the dropdown narrow beside the tab's own controls
    return picker


def loading_notices(models, model: str | None, lang: str) -> Iterator[str]:
    """What to show while ``model`` loads: nothing when it is in memory, else a line naming it,
    then that line with each of the loader's own progress messages. Raises the engine's error (unknown model, load failure)."""
    alias = models.resolve(model)
    if models.is_loaded(alias):
        return
    header = text("model_loading", lang, model=alias)
    yield header
    for message in models.loading_messages(alias):
        yield f"{header} {message}"  # which model, and how far its load has come
