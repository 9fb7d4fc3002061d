"""``/login`` and ``/logout``: the one sign-in for the browser UI and ``gradio_client``.

``POST /login`` takes the form fields ``username`` and ``password`` (what Gradio's login and
``gradio_client.Client(auth=...)`` send) and sets the ``dcu_session`` cookie (HttpOnly,
SameSite=Lax, Secure over https). Browsers are redirected to where they were going; other
clients get ``{"success": true}``. The password is checked by ``assist.identity``: a local user's
here, any other name's by the company directory when ``--ldap-url`` is set (503 when it is down;
local users still sign in). After 5 failures in a minute for a name or an address, attempts get
429 with ``Retry-After`` before any password is checked. Every attempt goes to the audit log with
its ``source`` (local, ldap, api key) and, when it fails, the ``reason`` (never the password).
``/logout`` ends our sign-in, and for a user of an OpenID provider that offers it, the provider's
session too (RP-initiated logout).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from assist.errors import NotAuthenticated, TooManyAttempts
from assist.identity.errors import IdentityError, SignInFailed
from assist.sessions import LOCAL_OWNER
from assist.users import SIGN_IN_SECONDS, User
from webui.adapters import error_body
from webui.auth import SESSION_COOKIE, Gate, client_address, current_user
from webui.login_page import safe_next

__all__ = ["include_login_routes", "signed_in_response", "refuse"]


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def refuse(request: Request, gate: Gate, exc: Exception, next_path: str, headers: dict | None = None,
           page: bool | None = None) -> Response:
    """The sign-in page with the error (browsers), or our error JSON, with the error's status."""
    status = int(exc.http_status)
    if _wants_page(request) if page is None else page:
        return HTMLResponse(gate.login_page(next_path, str(exc)), status_code=status, headers=headers)
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


async def signed_in_response(request: Request, gate: Gate, user: User, response: Response) -> Response:
    """``response`` with a new sign-in cookie for ``user``."""
    secret = await run_in_threadpool(gate.sign_in, user)
    response.set_cookie(SESSION_COOKIE, secret, max_age=SIGN_IN_SECONDS, path="/", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")
    return response


def include_login_routes(app: FastAPI, gate: Gate, audit=None) -> None:
    def record(event: str, request: Request, actor: str | None, **details) -> None:
        if audit is not None:
            audit.record(event, actor=actor, address=client_address(request), **details)

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        if not gate.enabled or current_user(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return HTMLResponse(gate.login_page(next))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
        next_path = safe_next(str(form.get("next") or "/"))
        if not gate.enabled:
            return RedirectResponse(next_path, status_code=303)
        keys = [f"user:{name.casefold()}", f"address:{client_address(request)}"]  # directories ignore case
        wait = gate.throttle.retry_after(keys)
        if wait:
            record("login.throttled", request, name or None, retry_after=wait)
            exc = TooManyAttempts(f"Too many failed sign-ins; try again in {wait} seconds.", wait)
            return refuse(request, gate, exc, next_path, headers={"Retry-After": str(wait)})
        try:
            if not name and gate.key_matches(password):
                user, source = User(LOCAL_OWNER, "admin"), "api key"
            elif name and gate.identity is not None:  # argon2 and directory round trips take a while
                found = await run_in_threadpool(gate.identity.password_sign_in, name, password)
                user, source = found.user, found.source
            else:
                raise SignInFailed("unknown user" if name else "bad api key", source="local" if name else "api key")
        except IdentityError as exc:
            if isinstance(exc, SignInFailed):  # wrong credentials count; a directory that is down does not
                gate.throttle.failed(keys)
            record("login.failed", request, name or None, source=exc.source, reason=exc.reason)
            shown = NotAuthenticated(str(exc)) if isinstance(exc, SignInFailed) else exc  # 401 as always
            return refuse(request, gate, shown, next_path)
        gate.throttle.succeeded(keys[0])
        record("login.ok", request, user.name, via="api key" if not name else "password", source=source)
        response: Response = (RedirectResponse(next_path, status_code=303) if _wants_page(request)
                              else JSONResponse({"success": True}))
        return await signed_in_response(request, gate, user, response)

    @app.api_route("/logout", methods=["GET", "POST"], include_in_schema=False)
    def logout(request: Request) -> Response:
        secret = request.cookies.get(SESSION_COOKIE)
        user = current_user(request)
        if secret:
            gate.sign_out(secret)
            record("logout", request, user.name if user else None)
        where = "/login" if gate.enabled else "/"
        if user is not None and gate.oidc is not None and gate.users is not None \
                and gate.users.source_of(user.name) == "oidc":
            where = gate.oidc.logout_url(str(request.base_url).rstrip("/") + "/login") or where
        response = RedirectResponse(where, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=request.url.scheme == "https")
        return response
