"""The Settings tab: who is signed in, a sign-out link, and the caller's own API tokens.

A token is shown once, when it is made (only its hash is kept), and can be revoked here at
any time; revocation takes effect on the next request. Admins also see the list of users
(names, roles, token counts, where they sign in: local, ldap, oidc, and their directory groups; no
content). ``SettingsHandlers`` are plain methods returning
``SettingsView`` values, tested without a browser; ``build_settings_tab`` lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from assist.errors import AssistError
from webui.adapters import ui_error
from webui.auth import audit_event, current_user
from webui.docs_format import escape_md
from webui.i18n import language_of, register, t, text
from webui.services import Services

__all__ = ["build_settings_tab", "SettingsHandlers", "SettingsView"]

register(
    en={"tab_settings": "Settings", "set_account": "Account", "set_tokens": "API tokens", "set_token_label": "What is the token for?",
        "set_token_placeholder": "e.g. laptop script", "set_create": "Create token", "set_revoke": "Revoke",
        "set_new_token": "New token: copy it now, it is not shown again", "set_pick_token": "Token to revoke",
        "set_users": "Users", "set_signed_in": "Signed in as **{name}** ({role})", "set_sign_out": "Sign out",
        "set_source": " through {source}", "set_groups": " · groups: {groups}",
        "set_off": "Sign-in is off: this server has no users, so everything is open to whoever can reach it. "
                   "Add one with `python app.py users add NAME` and restart.",
        "set_key_holder": "Signed in with the server's API key (admin). API tokens belong "
                          "to users; the key holder has none.",
        "set_no_tokens": "No tokens yet.",
        "set_token_help": "Send a token as `Authorization: Bearer <token>` to /v1, /api or the Gradio API."},
    zh={"tab_settings": "设置", "set_account": "账户", "set_tokens": "API 令牌", "set_token_label": "令牌用途",
        "set_token_placeholder": "例如：笔记本脚本", "set_create": "创建令牌", "set_revoke": "吊销",
        "set_new_token": "新令牌：请立即复制，之后不再显示", "set_pick_token": "要吊销的令牌",
        "set_users": "用户", "set_signed_in": "当前用户 **{name}**（{role}）", "set_sign_out": "退出登录",
        "set_source": "，通过 {source} 登录", "set_groups": " · 组：{groups}",
        "set_off": "未启用登录：服务器没有用户，任何能访问它的人都可以使用。"
                   "用 `python app.py users add NAME` 添加用户后重启。",
        "set_key_holder": "已用服务器 API 密钥登录（管理员）。API 令牌属于用户，密钥持有者没有令牌。",
        "set_no_tokens": "还没有令牌。",
        "set_token_help": "调用 /v1、/api 或 Gradio API 时发送 `Authorization: Bearer <令牌>`。"},
)

TOKEN_COLUMNS = ["id", "label", "created", "last used"]
USER_COLUMNS = ["name", "role", "tokens", "source", "groups"]


@dataclass
class SettingsView:
    account: str
    signed_in: bool = False  # shows the sign-out button
    can_have_tokens: bool = False
    tokens: list[list[str]] = field(default_factory=list)  # rows of TOKEN_COLUMNS
    token_choices: list[tuple[str, str]] = field(default_factory=list)  # (label, id)
    users: list[list[str]] | None = None  # admins only
    new_token: str = ""  # shown once, right after it was made


class SettingsHandlers:
    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def _users(self):
        return self.services.users

    def view(self, request=None) -> SettingsView:
        lang, user = language_of(request), current_user(request)
        if user is None:
            return SettingsView(text("set_off", lang))
        known = self._users.get(user.name) if self._users is not None else None
        if known is None:  # the shared API key's holder
            return SettingsView(text("set_key_holder", lang), signed_in=True,
                                users=self._user_rows() if user.is_admin else None)
        tokens = self._users.tokens(user.name)
        return SettingsView(
            text("set_signed_in", lang, name=user.name, role=known.role) + self._outside(user.name, lang),
            signed_in=True, can_have_tokens=True,
            tokens=[[tk.id, tk.label or "-", tk.created_at, tk.last_used_at or "never"] for tk in tokens],
            token_choices=[(f"{tk.id} · {tk.label or '-'}", tk.id) for tk in tokens],
            users=self._user_rows() if known.is_admin else None)

    def _outside(self, name: str, lang: str) -> str:
        """" through ldap · groups: a, b" for a user from a directory or provider; "" for local users."""
        source = self._users.source_of(name)
        if source not in ("ldap", "oidc"):
            return ""
        groups = self._users.groups_of(name)
        return (text("set_source", lang, source=source)
                + (text("set_groups", lang, groups=escape_md(", ".join(groups))) if groups else ""))

    def _user_rows(self) -> list[list[str]]:
        return ([[u.name, u.role, str(u.tokens), u.source, ", ".join(u.groups)] for u in self._users.list()]
                if self._users else [])

    def create_token(self, label: str = "", request=None) -> SettingsView:
        user = current_user(request)
        try:
            if user is None or self._users is None:
                raise AssistError(text("set_off", language_of(request)))
            info, secret = self._users.create_token(user.name, label)
        except AssistError as exc:
            raise ui_error(exc) from exc
        audit_event(self.services, request, "token.created", user=user.name, token_id=info.id, label=info.label)
        view = self.view(request)
        view.new_token = secret
        return view

    def revoke_token(self, token_id: str | None, request=None) -> SettingsView:
        user = current_user(request)
        if not token_id or user is None or self._users is None:
            return self.view(request)
        try:
            self._users.revoke_token(user.name, token_id)
        except AssistError as exc:
            raise ui_error(exc) from exc
        audit_event(self.services, request, "token.revoked", user=user.name, token_id=token_id)
        return self.view(request)


def build_settings_tab(services: Services, blocks: gr.Blocks) -> SettingsHandlers:
    """Lay out the tab inside ``blocks`` and fill it for the caller on each page load."""
    handlers = SettingsHandlers(services)
    with gr.Column(elem_id="settings-tab"):
        with gr.Row():
            account = gr.Markdown(elem_id="settings-account")
            sign_out = gr.Button(t("set_sign_out"), link="/logout", size="sm", scale=0, visible=False,
                                 elem_id="settings-sign-out")
        with gr.Column(visible=False, elem_id="settings-tokens") as token_box:
            gr.Markdown(t("set_token_help"))
            with gr.Row():
                label = gr.Textbox(label=t("set_token_label"), placeholder=t("set_token_placeholder"), scale=3,
                                   elem_id="settings-token-label")
                create = gr.Button(t("set_create"), variant="primary", scale=1, elem_id="settings-create")
            new_token = gr.Textbox(label=t("set_new_token"), visible=False, buttons=["copy"], interactive=False,
                                   elem_id="settings-new-token")
            table = gr.Dataframe(headers=TOKEN_COLUMNS, interactive=False, label=t("set_tokens"),
                                 elem_id="settings-token-table")
            with gr.Row():
                pick = gr.Dropdown(label=t("set_pick_token"), choices=[], scale=3, elem_id="settings-pick")
                revoke = gr.Button(t("set_revoke"), variant="stop", scale=1, elem_id="settings-revoke")
        users = gr.Dataframe(headers=USER_COLUMNS, interactive=False, label=t("set_users"), visible=False,
                             elem_id="settings-users")
        if services.presets is not None:  # Chat presets: make, change, delete (webui.presets)
            from webui.presets import PresetHandlers, build_preset_settings

            build_preset_settings(PresetHandlers(services.presets), blocks)
    outputs = [account, sign_out, token_box, table, pick, users, new_token]

    def show(view: SettingsView):
        return (view.account, gr.Button(visible=view.signed_in), gr.Column(visible=view.can_have_tokens), view.tokens,
                gr.Dropdown(choices=view.token_choices, value=None),
                gr.Dataframe(value=view.users or [], visible=view.users is not None),
                gr.Textbox(value=view.new_token, visible=bool(view.new_token)))

    def load(request: gr.Request = None):
        return show(handlers.view(request))

    def create_token(token_label: str, request: gr.Request = None):
        return show(handlers.create_token(token_label, request))

    def revoke_token(token_id: str | None, request: gr.Request = None):
        return show(handlers.revoke_token(token_id, request))

    private = {"api_visibility": "private", "show_progress": "hidden"}
    blocks.load(load, None, outputs, **private)
    create.click(create_token, [label], outputs, **private)
    revoke.click(revoke_token, [pick], outputs, **private)
    return handlers
