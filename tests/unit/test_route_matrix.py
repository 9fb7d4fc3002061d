"""Every route of the built app (FastAPI + Gradio), called by every kind of caller.

The route table is read from the app itself, so a new route without an expectation here fails
``test_every_route_has_an_expectation``; an expectation for a route that no longer exists fails
too. Callers: anonymous, a wrong token, a stale sign-in cookie, alice (API token), bob (sign-in
cookie from /login), root (an admin's token), the shared API key, dana (a company-directory user,
admin by her LDAP group, with a sign-in cookie) and carol (a user from the OpenID provider, with an
API token). The server has a directory and a provider configured (both unreachable here: the
local users still sign in). With sign-in on, only /api/health and the sign-in pages answer
anonymous callers; everything else is 401.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pytest
from argon2 import PasswordHasher
from docs_support import make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient
from starlette.routing import Mount

from assist.audit import AuditLog
from assist.identity.config import IdentityConfig
from assist.identity.signin import build_identity
from assist.presets import PresetStore
from assist.sessions import SessionStore
from assist.sync import FolderSync
from assist.sync_config import SyncConfig
from assist.users import UserStore
from bench.live_app import free_port
from webui.server import create_asgi_app

API_KEY = "sk-matrix-key"
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # real argon2, cheap parameters
ANY = "any"  # the route ran (its own answer, whatever it is), but it was not refused for lack of credentials
STREAMS = "streams"  # an endless event stream: only the refusals are checked (TestClient waits for the end)
REFUSED = ("anonymous", "wrong token", "stale cookie")
SIGNED_IN = ("alice", "bob", "root", "api key", "dana (ldap)", "carol (oidc)")


@dataclass(frozen=True)
class Expect:
    ok: int | str = 200  # status for signed-in callers (or ANY / STREAMS)
    url: str | None = None  # concrete URL (default: the route path); {session} = alice's conversation
    anonymous: int = 401  # status for the REFUSED callers
    kwargs: dict = field(default_factory=dict)
    by_caller: dict = field(default_factory=dict)  # per-caller exceptions to ``ok``


CHAT = {"json": {"model": "default", "messages": [{"role": "user", "content": "hi"}]}}
UPLOAD = {"files": {"files": ("notes.txt", b"The X200 pump has a 36 month warranty.", "text/plain")}}
SEARCH = {"json": {"query": "warranty", "top_k": 2}}
ASK = {"json": {"question": "What is the warranty?", "top_k": 2}}
IMPORT = {"content": json.dumps({"title": "imported", "messages": [{"role": "user", "content": "hello"}]}),
          "headers": {"content-type": "application/json"}}
GR = "/gradio_api"

EXPECTATIONS: dict[tuple[str, str], Expect] = {
    # --- open: probes and the way to sign in
    ("GET", "/api/health"): Expect(200, anonymous=200),
    ("GET", "/login"): Expect(303, anonymous=200),  # signed in: straight on to the app
    ("POST", "/login"): Expect(200, anonymous=200, kwargs={"data": {"username": "alice", "password": "pw-alice-1"}}),
    ("GET", "/logout"): Expect(303, anonymous=303),
    ("POST", "/logout"): Expect(303, anonymous=303),
    # the provider is unreachable here: starting says so (503, the sign-in page), a made-up callback is refused
    ("GET", "/login/oidc"): Expect(503, anonymous=503),
    ("GET", "/login/oidc/callback"): Expect(400, anonymous=400, url="/login/oidc/callback?state=made-up&code=x"),
    # --- the API: ours
    ("GET", "/api/openapi.json"): Expect(200),
    ("GET", "/api/docs"): Expect(200),
    ("GET", "/docs/oauth2-redirect"): Expect(200),
    ("GET", "/redoc"): Expect(200),
    ("GET", "/v1/models"): Expect(200),
    ("GET", "/v1/models/{model_id:path}"): Expect(200, url="/v1/models/fake-model"),
    ("POST", "/v1/chat/completions"): Expect(200, kwargs=CHAT),
    ("POST", "/v1/embeddings"): Expect(200, kwargs={"json": {"model": "default", "input": ["hello"]}}),
    ("GET", "/api/sessions"): Expect(200),
    ("GET", "/api/sessions/search"): Expect(200, url="/api/sessions/search?q=hello"),  # the caller's own only
    ("GET", "/api/presets"): Expect(200),  # the built-in ones and the caller's own
    ("POST", "/api/presets"): Expect(ANY, kwargs={"json": {"name": "Terse", "params": {"temperature": 0.2}}}),
    ("DELETE", "/api/presets/{preset_id}"): Expect(404, url="/api/presets/p-no-such-preset"),
    ("POST", "/api/sessions/import"): Expect(201, kwargs=IMPORT),
    # alice's conversation: another user's id answers 404, also for admins (usage, not content)
    ("GET", "/api/sessions/{session_id}"): Expect(404, url="/api/sessions/{session}", by_caller={"alice": 200}),
    ("GET", "/api/sessions/{session_id}/export"): Expect(404, url="/api/sessions/{session}/export",
                                                         by_caller={"alice": 200}),
    ("DELETE", "/api/sessions/{session_id}"): Expect(404, url="/api/sessions/no-such-session"),
    ("GET", "/metrics"): Expect(200),
    ("GET", "/api/jobs"): Expect(200),
    ("GET", "/api/jobs/{job_id}"): Expect(404, url="/api/jobs/no-such-job"),
    ("DELETE", "/api/jobs/{job_id}"): Expect(404, url="/api/jobs/no-such-job"),
    ("GET", "/api/collections"): Expect(200),
    ("POST", "/api/collections"): Expect(ANY, kwargs={"json": {"name": "matrix"}}),
    ("DELETE", "/api/collections/{collection}"): Expect(404, url="/api/collections/no-such-collection"),
    ("GET", "/api/collections/{collection}/documents"): Expect(200, url="/api/collections/default/documents"),
    ("POST", "/api/collections/{collection}/documents"): Expect(200, url="/api/collections/default/documents",
                                                                kwargs=UPLOAD),
    ("DELETE", "/api/collections/{collection}/documents/{document_id}"): Expect(
        404, url="/api/collections/default/documents/no-such-document"),
    ("POST", "/api/collections/{collection}/search"): Expect(200, url="/api/collections/default/search",
                                                             kwargs=SEARCH),
    ("POST", "/api/collections/{collection}/ask"): Expect(200, url="/api/collections/default/ask", kwargs=ASK),
    # previews of a cited page: a document the caller's collection does not hold is 404 like a missing one
    ("GET", "/api/collections/{collection}/documents/{document_id}/pages/{page}.png"): Expect(
        404, url="/api/collections/default/documents/no-such-document/pages/1.png"),
    ("GET", "/api/collections/{collection}/documents/{document_id}/text"): Expect(
        404, url="/api/collections/default/documents/no-such-document/text?page=1"),
    ("GET", "/api/sessions/{session_id}/files/{file_id}/text"): Expect(
        404, url="/api/sessions/{session}/files/no-such-file/text?page=1"),  # alice's conversation has no files
    # sharing: only the owner reads or sets it; another user's (or a missing) collection is 404
    ("GET", "/api/collections/{collection}/sharing"): Expect(200, url="/api/collections/default/sharing"),
    ("PUT", "/api/collections/{collection}/sharing"): Expect(404, url="/api/collections/root:default/sharing",
                                                             kwargs={"json": {"users": ["bob"], "mode": "read"}},
                                                             by_caller={"root": 200}),
    # folder sync: anyone who may read a collection sees its source; only admins (root, the API key, dana) set it
    ("GET", "/api/collections/{collection}/source"): Expect(404, url="/api/collections/no-such-collection/source"),
    ("PUT", "/api/collections/{collection}/source"): Expect(
        403, url="/api/collections/synced/source", kwargs={"json": {"folder": "docs", "interval_s": 3600}},
        by_caller={"root": 200, "api key": 200, "dana (ldap)": 200}),
    ("DELETE", "/api/collections/{collection}/source"): Expect(
        403, url="/api/collections/no-such-collection/source",
        by_caller={"root": 404, "api key": 404, "dana (ldap)": 404}),
    ("GET", "/api/usage"): Expect(200),  # counts and tokens; all users for admins, one's own row otherwise
    # the code sandbox is off here (no --sandbox): signed-in callers are told so, never run anything
    ("POST", "/api/code/run"): Expect(403, kwargs={"json": {"language": "python", "code": "print(1)"}}),
    # tools: none configured here; /api/chat still answers (the tool loop with no tools)
    ("GET", "/api/tools"): Expect(200),
    ("POST", "/api/chat"): Expect(200, kwargs={"json": {"messages": [{"role": "user", "content": "hi"}]}}),
    # --- Gradio: the page and what it loads
    ("GET", "/"): Expect(200, kwargs={"headers": {"accept": "text/html"}}),
    ("HEAD", "/"): Expect(200),
    ("GET", "/config"): Expect(200),
    ("GET", "/config/"): Expect(ANY),
    ("GET", "/openapi.json"): Expect(ANY),
    ("GET", "/theme.css"): Expect(200),
    ("GET", "/favicon.ico"): Expect(ANY),
    ("GET", "/robots.txt"): Expect(ANY),
    ("GET", "/manifest.json"): Expect(ANY),
    ("GET", "/pwa_icon"): Expect(ANY),
    ("GET", "/pwa_icon/{size}"): Expect(ANY, url="/pwa_icon/192"),
    ("GET", "/svelte/{path:path}"): Expect(ANY, url="/svelte/svelte.js"),
    ("GET", "/static/{path:path}"): Expect(ANY, url="/static/img/logo.svg"),
    ("GET", "/assets/{path:path}"): Expect(ANY, url="/assets/index.js"),
    ("POST", "/login/"): Expect(ANY, kwargs={"data": {"username": "x", "password": "y"}}),  # Gradio's, unused
    ("GET", "/monitoring"): Expect(ANY),
    ("GET", "/monitoring/summary"): Expect(ANY),
    ("GET", "/monitoring/{key}"): Expect(ANY, url="/monitoring/key"),
    # --- Gradio's API: config, info, the event API (chat / ask / code), files, queue
    ("GET", f"{GR}/info"): Expect(200),
    ("GET", f"{GR}/info/"): Expect(ANY),
    ("GET", f"{GR}/openapi.json"): Expect(ANY),
    ("GET", f"{GR}/deep_link"): Expect(ANY),
    ("GET", f"{GR}/user"): Expect(200),
    ("GET", f"{GR}/user/"): Expect(ANY),
    ("GET", f"{GR}/login_check"): Expect(200),
    ("GET", f"{GR}/login_check/"): Expect(ANY),
    ("GET", f"{GR}/token"): Expect(ANY),
    ("GET", f"{GR}/token/"): Expect(ANY),
    ("GET", f"{GR}/app_id"): Expect(200),
    ("GET", f"{GR}/app_id/"): Expect(ANY),
    ("GET", f"{GR}/dev/reload"): Expect(STREAMS),
    ("GET", f"{GR}/runs"): Expect(ANY),
    ("GET", f"{GR}/runs/"): Expect(ANY),
    ("GET", f"{GR}/custom_component/{{id}}/{{environment}}/{{type}}/{{file_name}}"): Expect(
        ANY, url=f"{GR}/custom_component/1/client/js/index.js"),
    ("GET", f"{GR}/proxy={{url_path:path}}"): Expect(ANY, url=f"{GR}/proxy=http://127.0.0.1:9/x"),
    ("HEAD", f"{GR}/proxy={{url_path:path}}"): Expect(ANY, url=f"{GR}/proxy=http://127.0.0.1:9/x"),
    ("GET", f"{GR}/file={{path_or_url:path}}"): Expect(ANY, url=f"{GR}/file=/etc/hostname"),
    ("HEAD", f"{GR}/file={{path_or_url:path}}"): Expect(ANY, url=f"{GR}/file=/etc/hostname"),
    ("GET", f"{GR}/file/{{path:path}}"): Expect(ANY, url=f"{GR}/file/etc/hostname"),
    ("POST", f"{GR}/stream/{{event_id}}"): Expect(ANY, url=f"{GR}/stream/1"),
    ("POST", f"{GR}/stream/{{event_id}}/close"): Expect(ANY, url=f"{GR}/stream/1/close"),
    ("GET", f"{GR}/stream/{{session_hash}}/{{run}}/{{component_id}}/playlist.m3u8"): Expect(
        ANY, url=f"{GR}/stream/s/1/1/playlist.m3u8"),
    ("GET", f"{GR}/stream/{{session_hash}}/{{run}}/{{component_id}}/{{segment_id}}.{{ext}}"): Expect(
        ANY, url=f"{GR}/stream/s/1/1/1.ts"),
    ("GET", f"{GR}/stream/{{session_hash}}/{{run}}/{{component_id}}/playlist-file"): Expect(
        ANY, url=f"{GR}/stream/s/1/1/playlist-file"),
    ("POST", f"{GR}/reset"): Expect(ANY),
    ("POST", f"{GR}/reset/"): Expect(ANY),
    ("GET", f"{GR}/heartbeat/{{session_hash}}"): Expect(STREAMS, url=f"{GR}/heartbeat/s"),
    ("POST", f"{GR}/api/{{api_name}}"): Expect(ANY, url=f"{GR}/api/chat"),
    ("POST", f"{GR}/api/{{api_name}}/"): Expect(ANY, url=f"{GR}/api/chat/"),
    ("POST", f"{GR}/run/{{api_name}}"): Expect(ANY, url=f"{GR}/run/chat"),
    ("POST", f"{GR}/run/{{api_name}}/"): Expect(ANY, url=f"{GR}/run/chat/"),
    ("POST", f"{GR}/call/{{api_name}}"): Expect(200, url=f"{GR}/call/chat", kwargs={"json": {"data": ["hi"]}}),
    ("POST", f"{GR}/call/{{api_name}}/"): Expect(ANY, url=f"{GR}/call/ask/"),
    ("POST", f"{GR}/call/v2/{{api_name}}"): Expect(ANY, url=f"{GR}/call/v2/code"),
    ("POST", f"{GR}/call/v2/{{api_name}}/"): Expect(ANY, url=f"{GR}/call/v2/code/"),
    ("GET", f"{GR}/call/{{api_name}}/{{event_id}}"): Expect(STREAMS, url=f"{GR}/call/chat/1"),
    ("GET", f"{GR}/call/v2/{{api_name}}/{{event_id}}"): Expect(STREAMS, url=f"{GR}/call/v2/chat/1"),
    ("POST", f"{GR}/queue/join"): Expect(ANY),
    ("GET", f"{GR}/queue/data"): Expect(STREAMS, url=f"{GR}/queue/data?session_hash=s"),
    ("GET", f"{GR}/queue/status"): Expect(ANY),
    ("POST", f"{GR}/cancel"): Expect(ANY),
    ("POST", f"{GR}/component_server"): Expect(ANY),
    ("POST", f"{GR}/component_server/"): Expect(ANY),
    ("GET", f"{GR}/upload_progress"): Expect(STREAMS, url=f"{GR}/upload_progress?upload_id=1"),
    ("POST", f"{GR}/upload"): Expect(200, kwargs={"files": {"files": ("a.txt", b"hello", "text/plain")}}),
    ("GET", f"{GR}/startup-events"): Expect(ANY),
    ("GET", f"{GR}/theme.css"): Expect(ANY),
    ("POST", f"{GR}/process_recording"): Expect(ANY),
    ("POST", f"{GR}/vibe-edit"): Expect(ANY),
    ("POST", f"{GR}/vibe-edit/"): Expect(ANY),
    ("POST", f"{GR}/undo-vibe-edit"): Expect(ANY),
    ("POST", f"{GR}/undo-vibe-edit/"): Expect(ANY),
    ("GET", f"{GR}/vibe-code"): Expect(ANY),
    ("GET", f"{GR}/vibe-code/"): Expect(ANY),
    ("POST", f"{GR}/vibe-code"): Expect(ANY),
    ("POST", f"{GR}/vibe-code/"): Expect(ANY),
    ("POST", f"{GR}/vibe-starter-queries"): Expect(ANY),
    ("POST", f"{GR}/vibe-starter-queries/"): Expect(ANY),
}


def route_table(routes, prefix: str = ""):
    """(method, path) of every route, through included routers and the mounted Gradio app.

    HEAD is listed only where a route has no GET (Starlette answers HEAD with the GET handler).
    """
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's lazily included router
            yield from route_table(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Mount):
            yield from route_table(route.routes, prefix + route.path)
        else:
            methods = set(getattr(route, "methods", None) or {"GET"})
            if "GET" in methods:
                methods.discard("HEAD")
            for method in sorted(methods):
                yield method, prefix + route.path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = tmp_path_factory.mktemp("matrix")
    users = UserStore(data / "users.sqlite3", memory_users=[("alice", "pw-alice-1")], hasher=FAST_HASH)
    users.add("bob", "pw-bob-12345")
    users.add("root", "pw-root-12345", role="admin")
    users.sign_in_from_outside("dana", "ldap", ["dcu-admins"], "admin")  # as after her first directory sign-in
    users.sign_in_from_outside("carol", "oidc", ["staff"], "user", external_id="sub-carol")
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    services = make_services(data, FakeEngine())
    services.identity = build_identity(users, IdentityConfig(
        ldap_url=f"ldap://{nowhere}", ldap_user_dn="uid={username},dc=example,dc=org", ldap_admin_group="dcu-admins",
        oidc_issuer=f"http://{nowhere}", oidc_client_id="dcu-chat", oidc_client_secret="s"))
    services.sessions = SessionStore(data / "sessions.sqlite3")
    services.presets = PresetStore(data / "presets.sqlite3")
    services.users, services.audit = users, AuditLog(data / "audit.jsonl")
    services.web = type(services.web)(data_dir=data, api_key=API_KEY, auth=(("alice", "pw-alice-1"),))
    (data / "srv" / "docs").mkdir(parents=True)
    services.sync = FolderSync(SyncConfig(root=data / "srv", events=False), services.store, services.collections,
                               services.jobs, data)
    app = create_asgi_app(services)
    session = services.sessions.create("alice", messages=[{"role": "user", "content": "alice's secret"}])
    tokens = {name: users.create_token(name, "matrix")[1] for name in ("alice", "root", "carol")}
    with TestClient(app, follow_redirects=False) as client:
        yield {"app": app, "client": client, "users": users, "tokens": tokens, "session": session.id}


def caller_headers(world, caller: str) -> dict:
    client, tokens = world["client"], world["tokens"]
    if caller == "anonymous":
        return {}
    if caller == "wrong token":
        return {"Authorization": "Bearer dcu_not-a-real-token"}
    if caller == "stale cookie":
        return {"Cookie": "dcu_session=expired-or-made-up"}
    if caller == "api key":
        return {"Authorization": f"Bearer {API_KEY}"}
    if caller == "bob":  # a fresh browser sign-in each time (a /logout in the matrix ends one)
        response = client.post("/login", data={"username": "bob", "password": "pw-bob-12345"})
        assert response.status_code == 200, response.text
        cookie = response.cookies["dcu_session"]
        client.cookies.clear()
        return {"Cookie": f"dcu_session={cookie}"}
    if caller == "dana (ldap)":  # her browser sign-in (the directory itself is tested with slapd)
        return {"Cookie": f"dcu_session={world['users'].start_sign_in('dana')}"}
    return {"Authorization": f"Bearer {tokens[caller.split()[0]]}"}


def call(world, method: str, path: str, expect: Expect, caller: str):
    client = world["client"]
    kwargs = {k: (dict(v) if isinstance(v, dict) else v) for k, v in expect.kwargs.items()}
    if "files" in kwargs:  # fresh file objects for each call
        kwargs["files"] = {k: (n, io.BytesIO(b), t) for k, (n, b, t) in expect.kwargs["files"].items()}
    headers = {**kwargs.pop("headers", {}), **caller_headers(world, caller)}
    url = (expect.url or path).format(session=world["session"])
    client.cookies.clear()
    response = client.request(method, url, headers=headers, **kwargs)
    client.cookies.clear()  # the jar must never carry one caller's sign-in to the next
    return response


def test_every_route_has_an_expectation(world):
    table = set(route_table(world["app"].routes))
    missing = sorted(table - set(EXPECTATIONS))
    stale = sorted(set(EXPECTATIONS) - table)
    assert not missing, f"routes without an expectation in the matrix: {missing}"
    assert not stale, f"expectations for routes that no longer exist: {stale}"


@pytest.mark.parametrize("method,path", sorted(EXPECTATIONS))
def test_route_matrix(world, method, path):
    expect = EXPECTATIONS[(method, path)]
    for caller in REFUSED:
        response = call(world, method, path, expect, caller)
        assert response.status_code == expect.anonymous, (caller, response.status_code, response.text[:300])
        if expect.anonymous == 401:
            assert response.headers["www-authenticate"] == "Bearer"
            if path.startswith("/v1"):
                assert response.json()["error"]["code"] == "invalid_api_key"
            elif method != "HEAD" and "text/html" not in response.headers["content-type"]:
                assert response.json()["error"]["type"] == "NotAuthenticated"
    if expect.ok == STREAMS:
        return
    for caller in SIGNED_IN:
        response = call(world, method, path, expect, caller)
        wanted = expect.by_caller.get(caller, expect.ok)
        if wanted == ANY:
            assert response.status_code != 401, (caller, response.text[:300])
        else:
            assert response.status_code == wanted, (caller, response.status_code, response.text[:300])


def test_the_ui_page_shows_the_sign_in_form_to_anonymous_browsers(world):
    response = world["client"].get("/", headers={"accept": "text/html"})
    assert response.status_code == 401 and '<form method="post" action="/login">' in response.text
    assert 'name="next" value="/"' in response.text
