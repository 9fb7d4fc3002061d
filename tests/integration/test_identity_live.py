"""``python app.py --ldap-url … --oidc-issuer …`` as an admin starts it, with a real slapd and a real
OpenID provider on loopback: the start-up output says how passwords are checked; a directory user
signs in at /login and sees only their own data, a member of the admin group is admin; "Sign in
with …" completes over real HTTP and lands on the app signed in, with the provider's groups."""

from __future__ import annotations

import httpx
import pytest
from ldap_support import GROUPS, USER_DN_TEMPLATE, USERS, Slapd, slapd_missing
from oidc_support import ADMIN_GROUP, authorize, running_provider

SECRET = "live-client-secret"


@pytest.fixture(scope="module")
def servers(tmp_path_factory, launch_app):
    missing = slapd_missing()
    if missing:
        pytest.skip(missing)
    slapd = Slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        slapd.add_groups()
        with running_provider() as issuer:
            app = launch_app("--ldap-url", slapd.url, "--ldap-user-dn", USER_DN_TEMPLATE, "--ldap-group-base", GROUPS,
                             "--ldap-admin-group", "dcu-admins", "--oidc-issuer", issuer, "--oidc-client-id",
                             "dcu-chat", "--oidc-name", "Test SSO", "--oidc-admin-group", ADMIN_GROUP,
                             env={"DCU_CHAT_OIDC_CLIENT_SECRET": SECRET})
            yield app, issuer
            app.stop()  # before the servers it talks to
    finally:
        slapd.stop()


def signed_in(app, name: str, password: str) -> httpx.Client:
    """A client holding ``name``'s sign-in cookie (close it with ``with``)."""
    response = httpx.post(app.url + "/login", data={"username": name, "password": password}, timeout=60)
    assert response.status_code == 200, response.text
    return httpx.Client(base_url=app.url, timeout=60, cookies={"dcu_session": response.cookies["dcu_session"]})


def test_start_up_says_how_passwords_are_checked(servers):
    app, issuer = servers
    log = app.log()
    assert "Sign-in: on: every route" in log and "Passwords: the users file, then LDAP ldap://127.0.0.1:" in log
    assert f"OpenID Connect {issuer} ('Sign in with Test SSO' at /login)" in log
    assert SECRET not in log


def test_a_directory_user_sees_only_their_own_data_and_the_admin_group_is_admin(servers):
    app, _ = servers
    assert httpx.get(app.url + "/api/sessions", timeout=30).status_code == 401
    erik, dana = signed_in(app, "erik", USERS["erik"][0]), signed_in(app, "dana", USERS["dana"][0])
    with erik, dana:
        made = erik.post("/api/sessions/import", json={"messages": [{"role": "user", "content": "erik's notes"}]})
        assert made.status_code == 201
        assert [s["id"] for s in erik.get("/api/sessions").json()["sessions"]] == [made.json()["id"]]
        assert dana.get("/api/sessions").json() == {"sessions": []}
        assert dana.get(f"/api/sessions/{made.json()['id']}").status_code == 404
        assert {r["user"] for r in dana.get("/api/usage").json()["users"]} >= {"erik"}  # dana is admin
        assert [r["user"] for r in erik.get("/api/usage").json()["users"]] == ["erik"]
        answer = erik.post("/v1/chat/completions", json={"model": "default", "max_tokens": 2,
                                                          "messages": [{"role": "user", "content": "Hi"}]})
        assert answer.status_code == 200  # the model answers a directory user like anyone
    wrong = httpx.post(app.url + "/login", data={"username": "erik", "password": "nope"}, timeout=30)
    assert wrong.status_code == 401


def test_sign_in_with_the_provider_over_real_http(servers):
    app, issuer = servers
    with httpx.Client(base_url=app.url, timeout=60) as browser:
        page = browser.get("/", headers={"accept": "text/html"})
        assert page.status_code == 401 and "Sign in with Test SSO" in page.text
        start = browser.get("/login/oidc", params={"next": "/?tab=docs"})
        assert start.status_code == 303 and start.headers["location"].startswith(issuer + "/oauth2/authorize?")
        callback = authorize(start.headers["location"], "sub-carol")
        assert callback.startswith(app.url + "/login/oidc/callback?")
        landed = browser.get(callback)
        assert landed.status_code == 303 and landed.headers["location"] == "/?tab=docs"
        assert browser.get("/", headers={"accept": "text/html"}).status_code == 200  # the app, signed in
        assert browser.get("/api/usage").json()["users"] is not None
        assert browser.get("/gradio_api/info").status_code == 200
        out = browser.get("/logout")
        assert out.status_code == 303 and out.headers["location"].startswith(issuer + "/oauth2/end_session?")
        assert browser.get("/api/sessions").status_code == 401
