"""Sharing a collection from the Docs tab: with named users, groups (``group:NAME``) or everyone,
read-only or read-write.

The handler is a plain method over ``assist.collections`` (the same checks as
``PUT /api/collections/{c}/sharing``: only the owner may change it); ``build_sharing`` lays out
its few components inside the tab's "Manage" accordion and wires them.
"""

from __future__ import annotations

import re

import gradio as gr

from webui.adapters import domain_error_types, ui_error
from webui.auth import current_owner
from webui.docs_format import escape_md
from webui.i18n import language_of, register, t, text

__all__ = ["SharingHandlers", "build_sharing"]

register(
    en={"docs_share_users": "Share with (user names or group:NAME, comma-separated)", "docs_share_all": "Everyone",
        "docs_share_mode": "Access", "docs_share_read": "Read (search, ask)",
        "docs_share_write": "Read and write (upload, delete documents)", "docs_share_save": "Save sharing",
        "docs_shared": "**{name}** is now shared with: {who} ({mode}).",
        "docs_unshared": "**{name}** is private again: only you can see it.", "docs_share_everyone": "everyone",
        "docs_shared_read": "read-only", "docs_shared_write": "read and write"},
    zh={"docs_share_users": "共享给（用户名或 group:组名，用逗号分隔）", "docs_share_all": "所有人",
        "docs_share_mode": "权限", "docs_share_read": "只读（搜索、提问）",
        "docs_share_write": "读写（上传、删除文档）", "docs_share_save": "保存共享设置",
        "docs_shared": "**{name}** 现已共享给：{who}（{mode}）。",
        "docs_unshared": "**{name}** 已恢复为私有：只有你能看到。", "docs_share_everyone": "所有人",
        "docs_shared_read": "只读", "docs_shared_write": "读写"},
)

_DOMAIN = domain_error_types()


class SharingHandlers:
    def __init__(self, collections) -> None:
        self.collections = collections  # assist.collections.UserCollections

    def share(self, collection: str, users: str, everyone: bool, mode: str, request: gr.Request | None = None):
        """-> status line. Replaces who else may use ``collection`` (its owner only)."""
        lang = language_of(request)
        names = [n for n in re.split(r"[,\s，]+", users or "") if n]
        try:
            result = self.collections.share(current_owner(request), collection, names, bool(everyone), mode or "read")
        except _DOMAIN as exc:
            raise ui_error(exc) from exc
        who = [text("docs_share_everyone", lang)] if result.everyone else []
        who += sorted(result.users)
        if not who:
            return text("docs_unshared", lang, name=escape_md(collection))
        return text("docs_shared", lang, name=escape_md(collection), who=escape_md(", ".join(who)),
                    mode=text(f"docs_shared_{mode or 'read'}", lang))


def build_sharing(collections, collection: gr.Dropdown) -> SharingHandlers:
    """The sharing controls for the selected ``collection``, in the current Blocks context."""
    handlers = SharingHandlers(collections)
    with gr.Row(equal_height=True):
        users = gr.Textbox(label=t("docs_share_users"), scale=3, elem_id="docs-share-users")
        everyone = gr.Checkbox(label=t("docs_share_all"), scale=1, elem_id="docs-share-all")
    mode = gr.Radio([(t("docs_share_read"), "read"), (t("docs_share_write"), "write")], value="read",
                    label=t("docs_share_mode"), elem_id="docs-share-mode")
    save = gr.Button(t("docs_share_save"), size="sm", elem_id="docs-share-save")
    status = gr.Markdown(elem_id="docs-share-status")
    save.click(handlers.share, [collection, users, everyone, mode], [status], api_visibility="private")
    return handlers
