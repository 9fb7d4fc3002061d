"""The Chat tab's layout and wiring: the conversations sidebar, the chat, its parameters.

Handlers live in ``webui.chat_tab`` (answers), ``webui.chat_branches`` (versions of messages) and
``webui.chat_sessions`` (the sidebar); here they are only placed and connected.
"""

from __future__ import annotations

import gradio as gr

from rag.parsing import SUPPORTED_EXTENSIONS
from webui.adapters import CancelRegistry
from webui.chat_branches import ACTION_JS, BranchHandlers, build_branch_controls
from webui.chat_files import ChatFiles
from webui.chat_images import IMAGE_TYPES, ChatImages
from webui.chat_sessions import ChatSessions
from webui.chat_tab import ChatHandlers
from webui.chat_tools import ChatTools, build_tools_selector
from webui.i18n import t, text
from webui.model_picker import model_picker
from webui.presets import DEFAULTS, PARAMS, PresetHandlers, build_preset_picker, wire_preset_picker
from webui.reading import LATEX_DELIMITERS
from webui.sessions_panel import build_sessions_panel, wire_sessions_panel

__all__ = ["build_chat_layout"]


def build_chat_layout(services, cancels: CancelRegistry | None = None) -> ChatHandlers:
    """Lay out the Chat tab (conversations sidebar + chat) in the current Blocks context and wire it."""
    sessions = None
    if services.sessions is not None:
        sessions = ChatSessions(services.sessions, services.web.session_exports_dir,
                                audit=services.audit)
    chat_tools = ChatTools(services.tools) if services.tools is not None and services.tools.enabled else None
    attachments = getattr(services, "attachments", None)
    files = ChatFiles(attachments) if attachments is not None else None
    # The 🖼 button exists where some served model can see; it shows while such a model is chosen.
    images = ChatImages(services.models) if services.models.vision_models() else None
    handlers = ChatHandlers(services.models, cancels, sessions, services.quotas, chat_tools, files, images)
    branches = BranchHandlers(handlers)
    history = gr.State([])
    with gr.Row(equal_height=False, elem_id="chat-row"):
        if sessions is not None:
            with gr.Column(scale=1, min_width=240, elem_id="session-sidebar"):
                panel = build_sessions_panel()
        with gr.Column(scale=4, min_width=300):
            with gr.Row(equal_height=True, elem_id="chat-pickers"):
                preset = build_preset_picker() if services.presets is not None else None
                with gr.Column(scale=3, min_width=200):
                    model = model_picker(services.models, "chat-model")
            chatbot = gr.Chatbot(show_label=False, height=520,
                                 placeholder=text("chat_empty", "en") + "<br>" + text("chat_empty", "zh"),
                                 buttons=["copy", "copy_all"], sanitize_html=True, elem_id="chatbot",
                                 editable="user", latex_delimiters=LATEX_DELIMITERS)
            with gr.Row(equal_height=True):
                message = gr.Textbox(label=t("chat_input"), placeholder=t("chat_placeholder"), lines=1,
                                     max_lines=10, scale=8, autofocus=True, elem_id="chat-input", submit_btn=False)
                with gr.Column(scale=1, min_width=120):
                    send = gr.Button(t("send"), variant="primary", elem_id="chat-send")
                    stop = gr.Button(t("stop"), variant="stop", elem_id="chat-stop")
                    if files is not None:  # files go with the next message (webui.chat_files)
                        attach = gr.UploadButton(t("attach"), file_count="multiple", size="sm", elem_id="chat-attach",
                                                 file_types=sorted(SUPPORTED_EXTENSIONS))
                    if images is not None:  # pictures go with the next message (webui.chat_images)
                        picture = gr.UploadButton(t("attach_image"), file_count="multiple", size="sm",
                                                  elem_id="chat-attach-image", file_types=IMAGE_TYPES,
                                                  visible=services.models.sees_images(None))
            if files is not None:
                with gr.Row(equal_height=True):
                    waiting = gr.HTML("", elem_id="chat-files-waiting")
                    drop = gr.Button(t("attach_clear"), size="sm", scale=0, min_width=90, visible=False,
                                     elem_id="chat-attach-clear")
            if images is not None:
                with gr.Row(equal_height=True):
                    pictures = gr.HTML("", elem_id="chat-images-waiting")
                    unpick = gr.Button(t("images_clear"), size="sm", scale=0, min_width=90, visible=False,
                                       elem_id="chat-images-clear")
            with gr.Row():
                regenerate = gr.Button(t("regenerate"), size="sm", elem_id="chat-regenerate")
                edit_last = gr.Button(t("edit_last"), size="sm", elem_id="chat-edit")
                clear = gr.Button(t("clear"), size="sm", elem_id="chat-clear")
            selector = [build_tools_selector(chat_tools)] if chat_tools is not None else []
            with gr.Accordion(t("parameters"), open=False):
                system_prompt = gr.Textbox(handlers.default_system_prompt, label=t("system_prompt"), lines=2,
                                           elem_id="chat-system-prompt")
                with gr.Row():
                    temperature = gr.Slider(0.0, 2.0, value=DEFAULTS["temperature"], step=0.05, label=t("temperature"))
                    top_p = gr.Slider(0.05, 1.0, value=DEFAULTS["top_p"], step=0.05, label=t("top_p"))
                    top_k = gr.Slider(0, 200, value=DEFAULTS["top_k"], step=1, label=t("top_k"))
                with gr.Row():
                    max_new_tokens = gr.Slider(16, 4096, value=DEFAULTS["max_new_tokens"], step=16,
                                               label=t("max_new_tokens"))
                    repetition_penalty = gr.Slider(1.0, 2.0, value=DEFAULTS["repetition_penalty"], step=0.05,
                                                   label=t("repetition_penalty"))
                    seed = gr.Number(-1, label=t("seed"), precision=0)
                thinking = gr.Checkbox(True, label=t("thinking_switch"), info=t("thinking_info"),
                                       elem_id="chat-thinking")
            branch_action, branch_go = build_branch_controls()
    sampling = [temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed]
    if preset is not None:  # the Preset dropdown sets the system prompt and the sliders it keeps
        tuned = dict(zip(PARAMS, sampling, strict=False))
        wire_preset_picker(preset, PresetHandlers(services.presets, handlers.default_system_prompt),
                           [system_prompt, *(tuned[p] for p in PARAMS)])
    answer_inputs = [system_prompt, *sampling, history, thinking, model, *selector]
    chat_inputs = [message, *answer_inputs]
    chat_outputs = [chatbot, history, message]
    streaming = {"api_visibility": "private", "concurrency_limit": None}
    if files is not None:  # first: the page runs a trigger's events in order, and Send clears the box
        send.click(files.sent, [message], [waiting, drop], queue=False, api_visibility="private")
        message.submit(files.sent, [message], [waiting, drop], queue=False, api_visibility="private")
    if images is not None:
        send.click(images.sent, [message], [pictures, unpick], queue=False, api_visibility="private")
        message.submit(images.sent, [message], [pictures, unpick], queue=False, api_visibility="private")
    events = [
        send.click(handlers.respond, chat_inputs, chat_outputs, api_name="chat", concurrency_limit=None),
        message.submit(handlers.respond, chat_inputs, chat_outputs, **streaming),
        regenerate.click(handlers.regenerate, answer_inputs, [chatbot, history], **streaming),
        edit := edit_last.click(handlers.edit_last, [history], [chatbot, history, message], api_visibility="private"),
        clear.click(handlers.clear, None, [chatbot, history, message], api_visibility="private"),
        chatbot.edit(branches.edit, answer_inputs, [chatbot, history], **streaming),
        branch_go.click(branches.act, [branch_action, *answer_inputs], [chatbot, history], js=ACTION_JS, **streaming),
    ]
    stop.click(handlers.stop, None, None, queue=False, api_visibility="private")
    if files is not None:
        private = {"api_visibility": "private"}
        attach.upload(files.add, [attach], [waiting, drop], **private)
        drop.click(files.clear, None, [waiting, drop], queue=False, **private)
        edit.then(files.view, None, [waiting, drop], **private)  # Edit last: its files wait again
    if images is not None:
        private = {"api_visibility": "private"}
        picture.upload(images.add, [picture], [pictures, unpick], **private)
        unpick.click(images.clear, None, [pictures, unpick], queue=False, **private)
        edit.then(images.view, None, [pictures, unpick], **private)  # Edit last: its pictures wait again
        model.change(images.button, [model], [picture], queue=False, **private)
    if chat_tools is not None:  # Allow / Deny under a call that waits for approval
        chatbot.option_select(chat_tools.decide, None, None, queue=False, api_visibility="private")
    if sessions is not None:
        wire_sessions_panel(panel, sessions, [chatbot, history, system_prompt], after=events, display=handlers.display)
    return handlers
