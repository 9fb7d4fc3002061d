"""``GET /login/oidc`` and ``GET /login/oidc/callback``: "Sign in with <provider>" (OpenID Connect).

``/login/oidc?next=/path`` starts a single-use flow (``assist.identity.oidc``: state, nonce, PKCE
S256) and redirects the browser to the provider. A short-lived HttpOnly cookie (``dcu_oidc_flow``,
path ``/login/oidc``) binds the flow to this browser, so a callback carrying someone else's code
is refused. The callback verifies everything, creates or refreshes the user (source ``oidc``,
groups from the token, admin when in ``--oidc-admin-group``), sets the one sign-in cookie
``dcu_session`` and redirects to ``next`` (a local path only). A failure shows the sign-in page
with the reason and is audited (``login.failed``, source ``oidc``, reason ``invalid token`` /
``conflict`` / ``provider down``); tokens never reach the log. Without ``--oidc-issuer`` both
routes answer 404.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from assist.identity.errors import IdentityError
from assist.identity.oidc_flows import FLOW_SECONDS, new_browser_secret
from webui.adapters import error_body
from webui.auth import Gate, client_address
from webui.login import refuse, signed_in_response
from webui.login_page import safe_next

__all__ = ["include_oidc_routes", "FLOW_COOKIE"]

FLOW_COOKIE = "dcu_oidc_flow"
_SECRET = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class _NotConfigured(IdentityError):
    http_status = 404


def include_oidc_routes(app: FastAPI, gate: Gate, audit=None) -> None:
    def record(event: str, request: Request, actor: str | None, **details) -> None:
        if audit is not None:
            audit.record(event, actor=actor, address=client_address(request), **details)

    def callback_uri(request: Request) -> str:
        configured = gate.identity.config.oidc_redirect_uri if gate.identity is not None else None
        return configured or str(request.url_for("oidc_callback"))

    def not_configured() -> Response:
        exc = _NotConfigured("Sign-in with an OpenID provider is not configured on this server (--oidc-issuer).")
        return JSONResponse(error_body(exc), status_code=404)

    @app.get("/login/oidc", include_in_schema=False)
    async def oidc_start(request: Request, next: str = "/") -> Response:
        provider = gate.oidc
        if provider is None:
            return not_configured()
        browser = request.cookies.get(FLOW_COOKIE) or ""
        browser = browser if _SECRET.match(browser) else new_browser_secret()
        try:  # discovery on first use: a provider that is down says so here
            url = await run_in_threadpool(provider.begin, browser, callback_uri(request), safe_next(next))
        except IdentityError as exc:
            record("login.failed", request, None, source="oidc", reason=exc.reason)
            return refuse(request, gate, exc, next, page=True)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(FLOW_COOKIE, browser, max_age=FLOW_SECONDS, path="/login/oidc", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
        return response

    @app.get("/login/oidc/callback", name="oidc_callback", include_in_schema=False)
    async def oidc_callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
        provider = gate.oidc
        if provider is None:
            return not_configured()
        name = None
        try:
            found = await run_in_threadpool(provider.finish, state, code, request.cookies.get(FLOW_COOKIE),
                                            error or None)
            name = found.name
            signed = await run_in_threadpool(gate.identity.outside_sign_in, "oidc", found.name, found.groups,
                                             provider.admin_group, found.subject)
        except IdentityError as exc:
            detail = getattr(exc, "detail", None)
            record("login.failed", request, name, source="oidc", reason=exc.reason, **({"detail": detail} if detail else {}))
            return refuse(request, gate, exc, "/", page=True)
        record("login.ok", request, signed.user.name, via="oidc", source="oidc", groups=list(signed.groups))
        return await signed_in_response(request, gate, signed.user, RedirectResponse(found.next_path, status_code=303))
