"""One sign-in rule for every route, and the one way to ask who is calling.

Once any auth is configured (``--auth``, users in the users file, ``--api-key``, a company
directory ``--ldap-url`` or an OpenID provider ``--oidc-issuer``), every route except
``/api/health`` and the sign-in pages (``/login``, ``/logout``, ``/login/oidc`` and its callback)
needs credentials:
the sign-in cookie set by ``/login``, or ``Authorization: Bearer`` with the server's API key
or a user's API token. That covers ``/v1``, ``/api``, ``/metrics`` (unless ``--metrics-public``)
and all of Gradio's own routes (page, config, queue, upload, files, the ``chat``/``ask``/``code``
event API): ``AuthMiddleware`` is the outermost ASGI layer, so nothing behind it runs for an
anonymous caller. Anonymous callers get 401: OpenAI's error JSON on ``/v1``, our error JSON
elsewhere, and the sign-in form for a browser asking for a page. We use our own sign-in page
instead of Gradio's login so that one cookie, one throttle and one audit log serve all routes;
Gradio is told who is signed in through its ``auth_dependency`` hook.

The middleware puts the caller in ``request.state.user``: a ``User`` (name, role), or None when
no auth is configured (the single local user). ``current_user(request)`` reads it from a
FastAPI request or a ``gr.Request``; ``current_owner(request)`` is the owner name that
stores use. With the shared API key the caller is ``local`` (role admin), or the user named in
``X-DCU-User`` (a gateway that knows who is signed in).
"""

from __future__ import annotations

import hmac
import logging

from fastapi import FastAPI

from assist.errors import NotAuthenticated
from assist.identity.signin import Identity
from assist.sessions import LOCAL_OWNER
from assist.throttle import FailureThrottle
from assist.users import User, UserStore
from webui.adapters import error_body
from webui.openai_schema import error_response

__all__ = ["Gate", "AuthMiddleware", "install_guards", "current_user", "current_owner",
           "audit_event", "client_address", "gate_for", "USER_HEADER", "SESSION_COOKIE", "OPEN_PATHS"]

log = logging.getLogger(__name__)

# probes, and the ways to sign in
OPEN_PATHS = frozenset({"/api/health", "/login", "/logout", "/login/oidc", "/login/oidc/callback"})
SESSION_COOKIE = "dcu_session"
USER_HEADER = "X-DCU-User"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def _cookie(scope, name: str) -> str | None:
    from http.cookies import CookieError, SimpleCookie

    raw = _header(scope, b"cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw.decode("latin-1"))
    except CookieError:
        return None
    return jar[name].value if name in jar else None


def client_address(scope_or_request) -> str:
    scope = getattr(scope_or_request, "scope", scope_or_request)
    client = scope.get("client") if isinstance(scope, dict) else None
    return client[0] if client else "unknown"


class Gate:
    """Who may call: decides once at start-up whether sign-in is on, then checks each request."""

    def __init__(self, users: UserStore | None = None, api_key: str | None = None,
                 metrics_public: bool = False, identity: Identity | None = None) -> None:
        self.users, self.metrics_public = users, metrics_public
        # how passwords are checked: the users file, then a company directory when one is configured
        self.identity = identity if identity is not None else (Identity(users) if users is not None else None)
        self._key = api_key.encode("utf-8") if api_key else None
        self.enabled = (bool(self._key) or bool(users and users.has_users())
                        or bool(self.identity and self.identity.enabled))
        self._key_sign_ins: set[str] = set()  # browser sign-ins with the API key: memory only
        self.throttle = FailureThrottle()  # failed sign-ins per name and per address

    @property
    def has_api_key(self) -> bool:
        return self._key is not None

    @property
    def oidc(self):
        """The OpenID provider (``assist.identity.oidc.OidcProvider``), or None."""
        return self.identity.oidc if self.identity is not None else None

    def login_page(self, next_path: str = "/", error: str = "") -> str:
        from webui.login_page import login_page

        return login_page(next_path, error, self.has_api_key, self.oidc.name if self.oidc is not None else None)

    def is_open(self, path: str) -> bool:
        return not self.enabled or path in OPEN_PATHS or (self.metrics_public and path == "/metrics")

    def key_matches(self, secret: str) -> bool:
        return self._key is not None and hmac.compare_digest(secret.encode("utf-8"), self._key)

    def key_holder(self, scope) -> User:
        """The caller holding the shared key: ``local`` (admin), or the user a gateway names."""
        named = (_header(scope, USER_HEADER.lower().encode()) or b"").decode("utf-8", "replace").strip()
        if not named or named == LOCAL_OWNER:
            return User(LOCAL_OWNER, "admin")
        known = self.users.get(named) if self.users is not None else None
        return known or User(named, "user")

    def resolve(self, scope) -> tuple[User | None, str | None]:
        """(the caller, None), or (None, why not) when credentials are missing or wrong."""
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            scheme, _, secret = authorization.decode("latin-1").partition(" ")
            secret = secret.strip()
            if scheme.lower() != "bearer" or not secret:
                return None, "Send credentials as 'Authorization: Bearer <API key or token>'."
            if self.key_matches(secret):
                return self.key_holder(scope), None
            user = self.users.user_for_token(secret) if self.users is not None else None
            return (user, None) if user else (None, "Incorrect API key or token (it may have been revoked).")
        cookie = _cookie(scope, SESSION_COOKIE)
        if cookie:
            if cookie in self._key_sign_ins:
                return User(LOCAL_OWNER, "admin"), None
            user = self.users.user_for_sign_in(cookie) if self.users is not None else None
            if user:
                return user, None
            return None, "Your sign-in has expired or was ended; sign in again."
        return None, "Sign in first: send 'Authorization: Bearer <API key or token>' or sign in at /login."

    def sign_in(self, user: User) -> str:
        """A new cookie secret for ``user``."""
        if self.users is not None and self.users.get(user.name) is not None:
            return self.users.start_sign_in(user.name)
        import secrets

        secret = secrets.token_urlsafe(32)
        self._key_sign_ins.add(secret)
        return secret

    def sign_out(self, secret: str) -> None:
        self._key_sign_ins.discard(secret)
        if self.users is not None:
            self.users.end_sign_in(secret)

    def describe(self) -> str:
        """The start-up line that says what is protected and how."""
        if not self.enabled:
            return ("Sign-in: off: every route is open to whoever can reach this address "
                    "(add users with 'python app.py users add NAME', --auth or --api-key).")
        ways = ["the sign-in cookie from /login"]
        if (self.users is not None and self.users.has_users()) or (self.identity and self.identity.enabled):
            ways.append("'Authorization: Bearer <user API token>'")
        if self._key:
            ways.append("'Authorization: Bearer <--api-key>'")
        metrics = " /metrics is public (--metrics-public)." if self.metrics_public else ""
        ldap, oidc = (self.identity.ldap, self.identity.oidc) if self.identity is not None else (None, None)
        sources = f" Passwords: the users file, then {ldap.describe()}." if ldap is not None else ""
        sources += f" Also {oidc.describe()}." if oidc is not None else ""
        return (f"Sign-in: on: every route (UI, Gradio API, /v1, /api, /metrics) except /api/health and /login "
                f"needs {', '.join(ways[:-1])} or {ways[-1]}." + sources + metrics)


def _refusal(scope, why: str, gate: Gate):
    from fastapi.responses import HTMLResponse, JSONResponse

    path, headers = scope["path"], {"WWW-Authenticate": "Bearer"}
    if _under(path, "/v1"):
        return error_response(401, why, code="invalid_api_key", headers=headers)
    wants_page = scope.get("method") == "GET" and b"text/html" in (_header(scope, b"accept") or b"")
    if wants_page and not (_under(path, "/api") or _under(path, "/gradio_api")):
        return HTMLResponse(gate.login_page(next_path=path), status_code=401, headers=headers)
    return JSONResponse(error_body(NotAuthenticated(why)), status_code=401, headers=headers)


class AuthMiddleware:
    """Sets ``scope["state"]["user"]`` for every request and refuses anonymous ones (see module doc)."""

    def __init__(self, app, gate: Gate) -> None:
        self.app, self.gate = app, gate

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        user, why = (None, None) if not self.gate.enabled else self.gate.resolve(scope)
        if user is None and not self.gate.is_open(scope["path"]):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _refusal(scope, why or "Sign in first.", self.gate)(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)


def current_user(request) -> User | None:
    """The caller of a route or UI handler; None when no auth is configured (the local user).

    Works with a FastAPI/Starlette request, a ``gr.Request`` (whose state Gradio keeps through
    its queue) and None (a handler called directly, e.g. in tests).
    """
    if request is None:
        return None
    state = getattr(request, "state", None)
    user = getattr(state, "user", None) if state is not None else None
    if isinstance(user, User):
        return user
    name = getattr(request, "username", None)  # a gr.Request rebuilt without its state
    return User(name) if isinstance(name, str) and name else None


def current_owner(request) -> str:
    """The owner name stores file the caller's data under: the user's name, else ``local``."""
    user = current_user(request)
    return user.name if user else LOCAL_OWNER


def audit_event(services, request, event: str, **details) -> None:
    """Record ``event`` in the audit log (if the server keeps one) as done by the caller of ``request``."""
    audit = getattr(services, "audit", None)
    if audit is None:
        return
    user = current_user(request)
    scope = getattr(getattr(request, "request", request), "scope", None)
    audit.record(event, actor=user.name if user else LOCAL_OWNER,
                 address=client_address(scope) if isinstance(scope, dict) else None, **details)


def gate_for(services) -> Gate:
    """The gate for ``services``; ``--auth`` users without a store get an in-memory one."""
    identity = getattr(services, "identity", None)
    if services.users is None and (services.web.auth or identity is not None):
        services.users = identity.users if identity is not None else UserStore(":memory:", services.web.auth)
    return Gate(services.users, services.web.api_key, services.web.metrics_public, identity)


def install_guards(app: FastAPI, web, gate: Gate) -> None:
    """Sign-in outermost, so unauthenticated bodies are never read (webui.request_guard checks bodies)."""
    app.add_middleware(AuthMiddleware, gate=gate)
