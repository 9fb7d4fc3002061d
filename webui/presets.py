"""Presets in the UI: the Preset dropdown in Chat, and making, changing and deleting them in Settings.

Choosing a preset in Chat sets the system prompt and the parameters it keeps (the others stay as
they are); "Default" goes back to the Chat's defaults. In Settings, picking a preset fills the
form; Save stores it under its name (a built-in one is saved as your own copy), Delete removes
one of your own. The handlers are plain methods over ``assist.presets.PresetStore``; the
``build_*`` functions only lay them out.
"""

from __future__ import annotations

import gradio as gr

from assist.presets import PARAM_RANGES, PresetError, PresetStore
from webui.adapters import ui_error
from webui.auth import current_owner
from webui.i18n import language_of, register, t, text

__all__ = ["DEFAULTS", "PresetHandlers", "build_preset_picker", "wire_preset_picker", "build_preset_settings",
           "PARAMS"]

PARAMS = tuple(PARAM_RANGES)  # temperature, top_p, top_k, max_new_tokens, repetition_penalty
DEFAULTS = {"temperature": 0.7, "top_p": 0.9, "top_k": 50, "max_new_tokens": 512, "repetition_penalty": 1.1}

register(
    en={"preset": "Preset", "preset_default": "Default", "presets": "Presets", "preset_pick": "Preset to edit",
        "preset_new": "(new preset)", "preset_name": "Name", "preset_prompt": "System prompt",
        "preset_save": "Save preset", "preset_delete": "Delete preset", "preset_saved": "Saved “{name}”.",
        "preset_deleted": "Deleted.", "preset_builtin": "A built-in preset: Save makes your own copy under a new name.",
        "preset_help": "A preset is a system prompt plus parameters, chosen from the Preset list in Chat. "
                       "Leave a parameter empty to keep the Chat's value."},
    zh={"preset": "预设", "preset_default": "默认", "presets": "预设", "preset_pick": "要编辑的预设",
        "preset_new": "（新预设）", "preset_name": "名称", "preset_prompt": "系统提示词",
        "preset_save": "保存预设", "preset_delete": "删除预设", "preset_saved": "已保存“{name}”。",
        "preset_deleted": "已删除。", "preset_builtin": "内置预设：保存时请换个名称，作为你自己的副本。",
        "preset_help": "预设 = 系统提示词 + 参数，在对话页的“预设”列表中选择。参数留空则沿用对话页的设置。"},
)


def _number(name: str, value) -> float:
    try:
        return float(str(value).strip().replace(",", "."))
    except ValueError as exc:
        raise PresetError(f"{name} must be a number (got {value!r}).") from exc


class PresetHandlers:
    """What the Preset dropdown and the Settings form do, for the calling user."""

    def __init__(self, store: PresetStore, default_system_prompt: str = "") -> None:
        self.store = store
        self.default_system_prompt = default_system_prompt

    def choices(self, request=None, with_default: bool = True) -> list[tuple[str, str]]:
        lang = language_of(request)
        own = [(p.name, p.id) for p in self.store.list(current_owner(request))]
        return [(text("preset_default", lang), ""), *own] if with_default else own

    def values(self, preset_id: str | None, request=None) -> tuple:
        """(system prompt, *PARAMS) for the Chat; None where the preset leaves a value alone."""
        if not preset_id:
            return (self.default_system_prompt, *(DEFAULTS[p] for p in PARAMS))
        try:
            preset = self.store.get(current_owner(request), preset_id)
        except PresetError as exc:
            raise ui_error(exc) from exc
        return (preset.system_prompt, *(preset.params.get(p) for p in PARAMS))

    def form(self, preset_id: str | None, request=None) -> tuple:
        """(name, system prompt, *PARAMS as text, note) for the Settings form; empty for a new preset."""
        if not preset_id:
            return ("", "", *("" for _ in PARAMS), "")
        prompt, *values = self.values(preset_id, request)
        preset = self.store.get(current_owner(request), preset_id)
        note = text("preset_builtin", language_of(request)) if preset.builtin else ""
        return (preset.name, prompt, *("" if v is None else f"{v:g}" for v in values), note)

    def save(self, preset_id: str | None, name: str, system_prompt: str, *params, request=None):
        """Store the form (parameters as typed: empty keeps the Chat's value); returns (choices, the saved
        preset's id, note)."""
        try:
            given = {p: _number(p, v) for p, v in zip(PARAMS, params, strict=True)
                     if v is not None and str(v).strip() != ""}
            preset = self.store.save(current_owner(request), name, system_prompt or "", given, preset_id or None)
        except PresetError as exc:
            raise ui_error(exc) from exc
        return self.choices(request, with_default=False), preset.id, text("preset_saved", language_of(request),
                                                                         name=preset.name)

    def delete(self, preset_id: str | None, request=None):
        """Delete one of the caller's presets; returns (choices, note)."""
        if preset_id:
            try:
                self.store.delete(current_owner(request), preset_id)
            except PresetError as exc:
                raise ui_error(exc) from exc
        return self.choices(request, with_default=False), text("preset_deleted", language_of(request))


def build_preset_picker() -> gr.Dropdown:
    """The Chat's Preset dropdown, in the current Blocks context (``wire_preset_picker`` connects it)."""
    return gr.Dropdown(choices=[(text("preset_default", "en"), "")], value="", label=t("preset"),
                       elem_id="chat-preset", scale=1, min_width=160)


def wire_preset_picker(picker: gr.Dropdown, handlers: PresetHandlers, outputs: list) -> None:
    """Choosing a preset fills ``outputs`` (system prompt, then the components of ``PARAMS``); the
    list is read again on page load and whenever the dropdown is opened (Settings may have changed it)."""

    def refresh(current, request: gr.Request = None):
        choices = handlers.choices(request)
        return gr.update(choices=choices, value=current if current in {v for _, v in choices} else "")

    def apply(preset_id, request: gr.Request = None):
        return tuple(gr.skip() if v is None else v for v in handlers.values(preset_id, request))

    private = {"api_visibility": "private", "show_progress": "hidden"}
    picker.focus(refresh, [picker], [picker], **private)
    picker.input(apply, [picker], outputs, **private)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(refresh, [picker], [picker], **private)


def build_preset_settings(handlers: PresetHandlers, blocks: gr.Blocks) -> None:
    """The Presets section of Settings (current Blocks context)."""
    with gr.Accordion(t("presets"), open=False, elem_id="settings-presets"):
        gr.Markdown(t("preset_help"))
        pick = gr.Dropdown(choices=[], value=None, label=t("preset_pick"), elem_id="settings-preset-pick")
        name = gr.Textbox(label=t("preset_name"), max_lines=1, elem_id="settings-preset-name")
        prompt = gr.Textbox(label=t("preset_prompt"), lines=3, elem_id="settings-preset-prompt")
        with gr.Row():
            # Text, not numbers: an empty box means "keep the Chat's value" (a Number shows 0).
            params = [gr.Textbox(label=t(p), placeholder=f"{PARAM_RANGES[p][0]:g}–{PARAM_RANGES[p][1]:g}", max_lines=1,
                                 elem_id=f"settings-preset-{p}", min_width=120) for p in PARAMS]
        note = gr.Markdown(elem_id="settings-preset-note")
        with gr.Row():
            save = gr.Button(t("preset_save"), variant="primary", elem_id="settings-preset-save")
            delete = gr.Button(t("preset_delete"), variant="stop", elem_id="settings-preset-delete")

    def load(request: gr.Request = None):
        return gr.update(choices=handlers.choices(request, with_default=False), value=None)

    def on_pick(preset_id, request: gr.Request = None):
        return handlers.form(preset_id, request)

    def on_save(preset_id, name_, prompt_, temperature, top_p, top_k, max_new_tokens, repetition_penalty,
                request: gr.Request = None):
        choices, saved, message = handlers.save(preset_id, name_, prompt_, temperature, top_p, top_k,
                                                max_new_tokens, repetition_penalty, request=request)
        return gr.update(choices=choices, value=saved), message

    def on_delete(preset_id, request: gr.Request = None):
        choices, message = handlers.delete(preset_id, request)
        return (gr.update(choices=choices, value=None), *handlers.form(None, request)[:-1], message)

    private = {"api_visibility": "private", "show_progress": "hidden"}
    blocks.load(load, None, [pick], **private)
    pick.input(on_pick, [pick], [name, prompt, *params, note], **private)
    save.click(on_save, [pick, name, prompt, *params], [pick, note], **private)
    delete.click(on_delete, [pick], [pick, name, prompt, *params, note], **private)
