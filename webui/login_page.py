"""The sign-in page: one self-contained HTML document (inline style, no scripts, no Gradio assets),
so an anonymous browser needs nothing but ``/login`` to reach it."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

__all__ = ["login_page", "safe_next"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · dcu-chat</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; display: grid; place-items: center;
       min-height: 100vh; margin: 0; color: #1f2328; }}
form {{ background: #fff; padding: 2rem 2.2rem; border-radius: 10px; box-shadow: 0 2px 12px #0002;
       width: min(22rem, 90vw); display: grid; gap: 0.8rem; }}
h1 {{ margin: 0 0 0.4rem; font-size: 1.4rem; }}
label {{ display: grid; gap: 0.25rem; font-size: 0.9rem; }}
input {{ font: inherit; padding: 0.5rem 0.6rem; border: 1px solid #c8ccd1; border-radius: 6px; }}
button {{ font: inherit; padding: 0.55rem; border: 0; border-radius: 6px; background: #e8590c; color: #fff;
         cursor: pointer; }}
.error {{ color: #b42318; margin: 0; }} .hint {{ color: #59636e; font-size: 0.8rem; margin: 0; }}
.sso {{ display: block; text-align: center; padding: 0.55rem; border: 1px solid #c8ccd1; border-radius: 6px;
       color: #1f2328; text-decoration: none; }}
.or {{ text-align: center; color: #59636e; font-size: 0.8rem; margin: 0; }}
</style></head>
<body><form method="post" action="/login">
<h1>dcu-chat</h1>
{error}
{sso}<label>User name <input name="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
{hint}</form></body></html>
"""


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path on this server only (never ``//elsewhere``)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or path.startswith("/login"):
        return "/"
    return path


_KEY_HINT = '<p class="hint">To sign in with the server\'s API key, leave the name empty.</p>\n'


def _sso(provider: str, next_path: str) -> str:
    """The "Sign in with <provider>" link (``GET /login/oidc?next=...``) above the password form."""
    href = "/login/oidc?next=" + quote(safe_next(next_path), safe="/")
    return (f'<a class="sso" id="sign-in-oidc" href="{escape(href, quote=True)}">Sign in with {escape(provider)}</a>\n'
            '<p class="or">or with a user name and password</p>\n')


def login_page(next_path: str = "/", error: str = "", key_hint: bool = False, oidc_name: str | None = None) -> str:
    shown = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _PAGE.format(error=shown, next=escape(safe_next(next_path), quote=True), hint=_KEY_HINT if key_hint else "",
                        sso=_sso(oidc_name, next_path) if oidc_name else "")
