""""Sign in with ..." against a real OpenID provider (oidc-provider-mock on 127.0.0.1, see
tests/oidc_support.py), the browser's redirects followed with httpx / the test client: the whole
flow, groups claim -> admin, ``next`` only local, logout at the provider; and refusals: a tampered
state, a replayed callback, a replayed code, a wrong nonce, an ID token for another audience, a
forged signature, an expired token, a callback from another browser, Deny at the provider, a name
that is a local user's or another subject's, the provider down. The app runs in-process."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from argon2 import PasswordHasher
from docs_support import make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient
from oidc_support import ADMIN_GROUP, PEOPLE, authorize, deny, query_of, running_provider, set_claims

from assist.audit import AuditLog
from assist.identity.config import IdentityConfig
from assist.identity.errors import InvalidToken
from assist.identity.oidc import OidcProvider
from assist.identity.signin import build_identity
from assist.sessions import SessionStore
from assist.users import UserStore
from webui.api import build_api

CLIENT_ID, SECRET = "dcu-chat", "dcu-chat-secret"


@pytest.fixture(scope="module")
def issuer():
    with running_provider() as url:
        yield url


@pytest.fixture
def app_for(tmp_path):
    made = []

    def make(issuer_url: str, **extra):
        data = tmp_path / f"data{len(made)}"
        services = make_services(data, FakeEngine())
        services.users = UserStore(data / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
        services.users.add("bob", "bob-local-pw-1")  # the provider has a "bob" too
        services.sessions = SessionStore(data / "sessions.sqlite3")
        services.audit = AuditLog(data / "audit.jsonl")
        config = IdentityConfig(oidc_issuer=issuer_url, oidc_client_id=CLIENT_ID, oidc_client_secret=SECRET,
                                oidc_admin_group=ADMIN_GROUP, oidc_name="Test SSO", **extra)
        services.identity = build_identity(services.users, config)
        made.append(services)
        return TestClient(build_api(services), follow_redirects=False), services

    yield make
    for services in made:
        services.sessions.close()
        services.store.close()


def start(client, next_path: str = "/") -> str:
    """GET /login/oidc: the provider's authorization URL our app redirects to."""
    response = client.get("/login/oidc?" + urlencode({"next": next_path}))
    assert response.status_code == 303, response.text
    return response.headers["location"]


def sign_in(client, sub: str, next_path: str = "/"):
    return client.get(authorize(start(client, next_path), sub))


def failed(services) -> list[tuple]:
    return [(e["reason"], e.get("detail", "")) for e in services.audit.recent() if e["event"] == "login.failed"]


def test_the_whole_flow_signs_in_with_groups_and_goes_to_next(issuer, app_for):
    client, services = app_for(issuer)
    page = client.get("/login", headers={"accept": "text/html"})
    assert "Sign in with Test SSO" in page.text and 'href="/login/oidc?next=/"' in page.text
    where = start(client, "/?tab=docs")
    params = query_of(where)
    assert where.startswith(issuer + "/oauth2/authorize?") and params["client_id"] == CLIENT_ID
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["scope"] == "openid email profile" and params["nonce"] and params["state"]
    assert params["redirect_uri"] == "http://testserver/login/oidc/callback"
    flow_cookie = client.cookies.get("dcu_oidc_flow")
    assert flow_cookie
    back = client.get(authorize(where, "sub-carol"))
    assert back.status_code == 303 and back.headers["location"] == "/?tab=docs"
    cookie = back.headers["set-cookie"]
    assert cookie.startswith("dcu_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/api/sessions").status_code == 200  # the one sign-in cookie
    users = services.users
    assert (users.source_of("carol"), users.get("carol").role, users.groups_of("carol")) == \
        ("oidc", "admin", ("dcu-admins", "staff"))
    client.cookies.clear()
    assert sign_in(client, "sub-dave").status_code == 303 and users.get("dave").role == "user"
    _, token = users.create_token("dave")
    assert client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    ok = [(e["actor"], e["source"], e["groups"]) for e in services.audit.recent() if e["event"] == "login.ok"]
    assert ok == [("carol", "oidc", ["dcu-admins", "staff"]), ("dave", "oidc", ["staff"])]


def test_groups_and_admin_follow_the_provider_at_each_sign_in(issuer, app_for):
    client, services = app_for(issuer)
    assert sign_in(client, "sub-carol").status_code == 303 and services.users.get("carol").is_admin
    set_claims(issuer, "sub-carol", {**PEOPLE["sub-carol"], "groups": ["staff"]})
    try:
        client.cookies.clear()
        assert sign_in(client, "sub-carol").status_code == 303
        assert not services.users.get("carol").is_admin and services.users.groups_of("carol") == ("staff",)
    finally:
        set_claims(issuer, "sub-carol", PEOPLE["sub-carol"])


def test_the_user_name_falls_back_to_email(issuer, app_for):
    client, services = app_for(issuer)
    set_claims(issuer, "sub-eve", {"email": "eve@example.org"})
    assert sign_in(client, "sub-eve").status_code == 303 and services.users.source_of("eve@example.org") == "oidc"


@pytest.mark.parametrize("next_path", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_next_is_only_a_local_path(issuer, app_for, next_path):
    client, _ = app_for(issuer)
    assert sign_in(client, "sub-dave", next_path).headers["location"] == "/"


def refused(response, why: str):
    assert response.status_code == 400, response.text[:300]
    assert why in response.text and '<form method="post" action="/login">' in response.text
    assert "dcu_session" not in response.headers.get("set-cookie", "")


def test_a_tampered_state_and_a_replayed_callback_are_refused(issuer, app_for):
    client, services = app_for(issuer)
    callback = authorize(start(client), "sub-dave")
    parts = urlsplit(callback)
    tampered = dict(query_of(callback), state=query_of(callback)["state"][:-2] + "xx")
    refused(client.get(urlunsplit(parts._replace(query=urlencode(tampered)))), "unknown or already used state")
    assert client.get(callback).status_code == 303  # the untouched one still works...
    client.cookies.clear()
    refused(client.get(callback), "unknown or already used state")  # ...once
    assert services.users.source_of("dave") == "oidc"
    assert [r for r, _ in failed(services)] == ["invalid token", "invalid token"]


def test_a_replayed_code_is_refused(issuer, app_for):
    client, services = app_for(issuer)
    used = query_of(authorize(start(client), "sub-dave"))
    assert client.get("/login/oidc/callback?" + urlencode(used)).status_code == 303
    fresh = query_of(start(client))  # a new flow, and the old code pasted into its callback
    refused(client.get("/login/oidc/callback?" + urlencode({"state": fresh["state"], "code": used["code"]})),
            "the provider refused the code: invalid_grant")


def test_a_wrong_nonce_is_refused(issuer, app_for):
    client, services = app_for(issuer)
    first, second = start(client), start(client)  # two flows in one browser; the first one's code...
    code = query_of(authorize(first, "sub-carol"))["code"]  # ...carries the first nonce in its ID token
    refused(client.get("/login/oidc/callback?" + urlencode({"state": query_of(second)["state"], "code": code})),
            "ID token: Invalid claim: &#x27;nonce&#x27;")
    assert services.users.source_of("carol") is None
    assert failed(services) == [("invalid token", "ID token: Invalid claim: 'nonce'")]


def test_an_id_token_for_another_audience_is_refused(issuer, app_for):
    client, services = app_for(issuer)
    # Through the app: the person is sent to the provider as another client; the provider will not
    # hand that client's code to us.
    url = urlsplit(start(client))
    as_other = dict(query_of(url.geturl()), client_id="other-client")
    callback = authorize(urlunsplit(url._replace(query=urlencode(as_other))), "sub-dave")
    refused(client.get(callback), "the provider refused the code")
    # And a genuine ID token the provider issued to another client fails our own checks (aud).
    other = OidcProvider(IdentityConfig(oidc_issuer=issuer, oidc_client_id="other-client", oidc_client_secret="x"))
    flow_state = query_of(authorize(other.begin("browser", "http://other.example/cb", "/"), "sub-dave"))
    flow = other.flows.take(flow_state["state"], "browser")
    token = other._exchange(flow, flow_state["code"])
    assert other.verify_id_token(token["id_token"], flow.nonce, token["access_token"])["aud"] == ["other-client"]
    ours = services.identity.oidc
    with pytest.raises(InvalidToken, match="'aud'"):
        ours.verify_id_token(token["id_token"], flow.nonce, token["access_token"])
    head, body, signature = token["id_token"].split(".")
    forged = f"{head}.{body}.{signature[:20]}{'A' if signature[20] != 'A' else 'B'}{signature[21:]}"
    with pytest.raises(InvalidToken, match="bad_signature"):
        other.verify_id_token(forged, flow.nonce)
    with pytest.raises(InvalidToken, match="at_hash"):
        other.verify_id_token(token["id_token"], flow.nonce, "another-access-token")


def test_an_expired_id_token_is_refused(app_for):
    with running_provider(token_max_age=timedelta(minutes=-5)) as stale_issuer:
        client, services = app_for(stale_issuer)
        refused(sign_in(client, "sub-dave"), "expired")
        assert services.users.source_of("dave") is None


def test_a_callback_in_another_browser_and_deny_are_refused(issuer, app_for):
    client, services = app_for(issuer)
    callback = authorize(start(client), "sub-dave")
    stranger = TestClient(client.app, follow_redirects=False)  # no flow cookie: someone else's browser
    refused(stranger.get(callback), "started in another browser")
    refused(client.get(callback), "unknown or already used state")  # and the state is spent
    refused(client.get(deny(start(client))), "the provider answered &#x27;access_denied&#x27;")
    assert services.users.source_of("dave") is None
    assert [r for r, _ in failed(services)] == ["invalid token", "invalid token", "refused by the provider"]


def test_a_name_of_a_local_user_or_of_another_subject_is_refused(issuer, app_for):
    client, services = app_for(issuer)
    clash = sign_in(client, "sub-bob")  # the provider's bob is not our local bob
    assert clash.status_code == 409 and "bob belongs to a local account" in clash.text
    assert services.users.source_of("bob") == "local"
    assert sign_in(client, "sub-dave").status_code == 303
    client.cookies.clear()
    set_claims(issuer, "sub-dave-2", {"preferred_username": "dave", "groups": [ADMIN_GROUP]})
    other = sign_in(client, "sub-dave-2")  # another person calling themselves dave
    assert other.status_code == 409 and "another oidc account" in other.text
    assert not services.users.get("dave").is_admin
    assert [r for r, _ in failed(services)] == ["conflict", "conflict"]


def test_logout_ends_the_provider_session_too(issuer, app_for):
    client, _ = app_for(issuer)
    assert sign_in(client, "sub-dave").status_code == 303
    out = client.get("/logout")
    assert out.status_code == 303
    ends = out.headers["location"]
    assert ends.startswith(issuer + "/oauth2/end_session?")
    assert query_of(ends) == {"client_id": CLIENT_ID, "post_logout_redirect_uri": "http://testserver/login"}
    assert client.get("/api/sessions").status_code == 401


def test_a_provider_that_is_down_says_so_and_passwords_still_work(app_for):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client, services = app_for(f"http://127.0.0.1:{port}")
    down = client.get("/login/oidc", headers={"accept": "text/html"})
    assert down.status_code == 503 and "cannot be reached" in down.text and "Sign in with Test SSO" in down.text
    assert client.post("/login", data={"username": "bob", "password": "bob-local-pw-1"}).status_code == 200
    assert [r for r, _ in failed(services)] == ["provider down"]


def test_no_code_or_token_reaches_the_audit_log(issuer, app_for):
    client, services = app_for(issuer)
    callback = authorize(start(client), "sub-carol")
    code = query_of(callback)["code"]
    assert client.get(callback).status_code == 303
    refused(client.get(callback), "already used")
    text = services.audit.path.read_text()
    assert code not in text and SECRET not in text and "eyJ" not in text
    assert all("code" not in e and "id_token" not in e for e in map(json.loads, text.splitlines()))
