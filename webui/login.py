"""``/login`` and ``/logout``: the one sign-in for the browser UI and ``gradio_client``.

``POST /login`` takes the form fields ``username`` and ``password`` (what Gradio's login and
``gradio_client.Client(auth=...)`` send) and sets the ``dcu_session`` cookie (HttpOnly,
SameSite=Lax, Secure over https). Browsers are redirected to where they were going; other
clients get ``{"success": true}``. After 5 failures in a minute for a name or an address,
attempts get 429 with ``Retry-After`` before any password is checked. Every attempt goes to
the audit log.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from assist.errors import NotAuthenticated, TooManyAttempts
from assist.sessions import LOCAL_OWNER
from assist.users import SIGN_IN_SECONDS, User
from webui.adapters import error_body
from webui.auth import SESSION_COOKIE, Gate, client_address, current_user
from webui.login_page import login_page, safe_next

__all__ = ["include_login_routes"]


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _refuse(request: Request, gate: Gate, exc: Exception, next_path: str, headers: dict | None = None) -> Response:
    status = int(exc.http_status)
    if _wants_page(request):
        return HTMLResponse(login_page(next_path, str(exc), gate.has_api_key), status_code=status, headers=headers)
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


def include_login_routes(app: FastAPI, gate: Gate, audit=None) -> None:
    def record(event: str, request: Request, actor: str | None, **details) -> None:
        if audit is not None:
            audit.record(event, actor=actor, address=client_address(request), **details)

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        if not gate.enabled or current_user(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return HTMLResponse(login_page(next, key_hint=gate.has_api_key))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
        next_path = safe_next(str(form.get("next") or "/"))
        if not gate.enabled:
            return RedirectResponse(next_path, status_code=303)
        keys = [f"user:{name}", f"address:{client_address(request)}"]
        wait = gate.throttle.retry_after(keys)
        if wait:
            record("login.throttled", request, name or None, retry_after=wait)
            exc = TooManyAttempts(f"Too many failed sign-ins; try again in {wait} seconds.", wait)
            return _refuse(request, gate, exc, next_path, headers={"Retry-After": str(wait)})
        user: User | None = None
        if not name and gate.key_matches(password):
            user = User(LOCAL_OWNER, "admin")
        elif name and gate.users is not None:
            user = await run_in_threadpool(gate.users.authenticate, name, password)  # argon2 takes a while
        if user is None:
            gate.throttle.failed(keys)
            record("login.failed", request, name or None)
            return _refuse(request, gate, NotAuthenticated("Wrong user name or password."), next_path)
        gate.throttle.succeeded(keys[0])
        record("login.ok", request, user.name, via="api key" if not name else "password")
        secret = await run_in_threadpool(gate.sign_in, user)
        response: Response = (RedirectResponse(next_path, status_code=303) if _wants_page(request)
                              else JSONResponse({"success": True}))
        response.set_cookie(SESSION_COOKIE, secret, max_age=SIGN_IN_SECONDS, path="/", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
        return response

    @app.api_route("/logout", methods=["GET", "POST"], include_in_schema=False)
    def logout(request: Request) -> Response:
        secret = request.cookies.get(SESSION_COOKIE)
        user = current_user(request)
        if secret:
            gate.sign_out(secret)
            record("logout", request, user.name if user else None)
        response = RedirectResponse("/login" if gate.enabled else "/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=request.url.scheme == "https")
        return response
