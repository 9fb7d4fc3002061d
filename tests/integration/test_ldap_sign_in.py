"""Signing in at POST /login against a real OpenLDAP slapd on 127.0.0.1 (tests/ldap_support.py):
DN-template and search-then-bind, wrong password, unknown user, empty password, filter/DN injection,
admin by group, groups refreshed at each sign-in and used by group sharing, a local user and a
directory user of one name, StartTLS / ldaps with and without the CA, the directory stopped mid-run,
and ``python app.py users list``. The app runs in-process (FastAPI routes, fake model)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from argon2 import PasswordHasher
from docs_support import REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient
from ldap_support import (
    GROUPS,
    PEOPLE,
    ROOT_DN,
    ROOT_PW,
    SERVICE_DN,
    SERVICE_PW,
    USER_DN_TEMPLATE,
    USERS,
    Slapd,
    slapd_missing,
)

from assist.audit import AuditLog
from assist.identity.config import IdentityConfig
from assist.identity.signin import build_identity
from assist.sessions import SessionStore
from assist.users import UserStore
from bench.live_app import ROOT
from webui.api import build_api

LOCAL = {"olive": "olive-local-pw", "bob": "bob-local-pw-1"}  # bob is in the directory too (another password)
WRONG = "Wrong user name or password."


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    missing = slapd_missing()
    if missing:
        pytest.skip(missing)
    server = Slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        server.add_groups()
        yield server
    finally:
        server.stop()


def template(slapd, **extra) -> dict:
    return {"ldap_url": slapd.url, "ldap_user_dn": USER_DN_TEMPLATE, "ldap_group_base": GROUPS,
            "ldap_admin_group": f"cn=dcu-admins,{GROUPS}", **extra}


def search_then_bind(slapd, **extra) -> dict:
    return {"ldap_url": slapd.url, "ldap_bind_dn": SERVICE_DN, "ldap_bind_password": SERVICE_PW,
            "ldap_user_base": PEOPLE, "ldap_group_base": GROUPS, "ldap_admin_group": "dcu-admins", **extra}


@pytest.fixture
def app_for(tmp_path):
    made = []

    def make(**identity):
        data = tmp_path / f"data{len(made)}"
        services = make_services(data, FakeEngine())
        services.users = UserStore(data / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
        for name, password in LOCAL.items():
            services.users.add(name, password)
        services.sessions = SessionStore(data / "sessions.sqlite3")
        services.audit = AuditLog(data / "audit.jsonl")
        services.identity = build_identity(services.users, IdentityConfig(**identity))
        client = TestClient(build_api(services))
        made.append(services)
        return client, services

    yield make
    for services in made:
        services.sessions.close()
        services.store.close()


def login(client, name, password):
    client.cookies.clear()
    return client.post("/login", data={"username": name, "password": password})


def failures(services) -> list[tuple]:
    return [(e["actor"], e["source"], e["reason"]) for e in services.audit.recent() if e["event"] == "login.failed"]


@pytest.mark.parametrize("mode", [template, search_then_bind])
def test_a_directory_user_signs_in_sees_only_their_data_and_admins_come_from_a_group(slapd, app_for, mode):
    client, services = app_for(**mode(slapd))
    assert login(client, "dana", USERS["dana"][0]).json() == {"success": True}
    dana = client.cookies["dcu_session"]
    mine = client.post("/api/sessions/import", json={"messages": [{"role": "user", "content": "dana's plan"}]},
                       cookies={"dcu_session": dana}).json()["id"]
    assert login(client, "erik", USERS["erik"][0]).status_code == 200
    erik = {"dcu_session": client.cookies["dcu_session"]}
    client.cookies.clear()
    assert client.get("/api/sessions", cookies=erik).json() == {"sessions": []}
    assert client.get(f"/api/sessions/{mine}", cookies=erik).status_code == 404
    client.post("/api/sessions/import", json={"messages": [{"role": "user", "content": "erik's"}]}, cookies=erik)
    assert [r["user"] for r in client.get("/api/usage", cookies=erik).json()["users"]] == ["erik"]  # his own row
    users = services.users
    assert (users.get("dana").role, users.source_of("dana"), users.groups_of("dana")) == \
        ("admin", "ldap", ("dcu-admins", "engineers"))
    assert (users.get("erik").role, users.groups_of("erik")) == ("user", ("engineers",))
    usage = client.get("/api/usage", cookies={"dcu_session": dana}).json()
    assert {"dana", "erik"} <= {row["user"] for row in usage["users"]}  # an admin sees everyone's usage
    _, token = users.create_token("erik", "script")  # API tokens work for directory users
    assert client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert login(client, "ERIK", USERS["erik"][0]).status_code == 200  # the directory's spelling: one user
    assert sorted(u.name for u in users.list()) == ["bob", "dana", "erik", "olive"]
    oks = [(e["actor"], e["source"]) for e in services.audit.recent() if e["event"] == "login.ok"]
    assert oks == [("dana", "ldap"), ("erik", "ldap"), ("erik", "ldap")]


@pytest.mark.parametrize("mode", [template, search_then_bind])
def test_wrong_unknown_empty_and_injected_names_are_refused(slapd, app_for, mode):
    client, services = app_for(**mode(slapd))
    dana_pw = USERS["dana"][0]
    for name, password in [("dana", "wrong-pw"), ("nobody", dana_pw), ("dana", ""), ("*)(uid=*", dana_pw),
                           ("*", dana_pw)]:
        response = login(client, name, password)
        assert response.status_code == 401 and response.json()["error"]["message"] == WRONG, (name, response.text)
    assert services.users.source_of("dana") is None and not any(u.source == "ldap" for u in services.users.list())
    reasons = [reason for _, _, reason in failures(services)]
    if mode is template:  # a failed bind as a DN that does not exist reads like a wrong password
        assert reasons == ["bad password or unknown user"] * 2 + ["empty password"] + \
            ["bad password or unknown user"] * 2
    else:
        assert reasons == ["bad password", "unknown user", "empty password", "unknown user", "unknown user"]
    assert dana_pw not in services.audit.path.read_text()


def test_groups_follow_the_directory_at_each_sign_in_and_group_sharing(slapd, app_for):
    from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server

    client, services = app_for(**template(slapd))
    assert login(client, "olive", LOCAL["olive"]).status_code == 200
    olive = {"dcu_session": client.cookies["dcu_session"]}
    client.cookies.clear()
    upload = client.post("/api/collections/default/documents", cookies=olive,
                         files=[("files", ("report.pdf", make_pdf(REPORT_PAGES), "application/pdf"))])
    assert upload.status_code == 200
    shared = client.put("/api/collections/default/sharing", cookies=olive,
                        json={"users": ["group:engineers"], "mode": "read"})
    assert shared.json()["users"] == [{"user": "group:engineers", "mode": "read"}]

    def erik_searches() -> int:
        assert login(client, "erik", USERS["erik"][0]).status_code == 200
        return client.post("/api/collections/olive:default/search", json={"query": "warranty"}).status_code

    assert erik_searches() == 200
    assert login(client, "fay", USERS["fay"][0]).status_code == 200  # in no group
    assert client.post("/api/collections/olive:default/search", json={"query": "x"}).status_code == 404
    erik_dn, group = f"uid=erik,{PEOPLE}", f"cn=engineers,{GROUPS}"
    with Connection(Server(slapd.url, connect_timeout=5), ROOT_DN, ROOT_PW, auto_bind=True) as admin:
        assert admin.modify(group, {"member": [(MODIFY_DELETE, [erik_dn])]})
        try:
            assert erik_searches() == 404 and services.users.groups_of("erik") == ()
        finally:
            assert admin.modify(group, {"member": [(MODIFY_ADD, [erik_dn])]})
    assert erik_searches() == 200


def test_a_local_user_and_a_directory_user_of_one_name_never_merge(slapd, app_for):
    client, services = app_for(**template(slapd))
    refused = login(client, "bob", USERS["bob"][0])  # the directory's bob
    assert refused.status_code == 409 and "bob is a local account" in refused.json()["error"]["message"]
    assert login(client, "bob", LOCAL["bob"]).status_code == 200  # ours
    assert services.users.source_of("bob") == "local"
    assert login(client, "bob", "neither").json()["error"]["message"] == WRONG
    assert failures(services) == [("bob", "ldap", "conflict"), ("bob", "local", "bad password")]


def test_start_tls_and_ldaps_need_the_directory_s_ca(slapd, app_for):
    for settings in ({"ldap_url": slapd.url, "ldap_start_tls": True}, {"ldap_url": slapd.ldaps_url}):
        trusted, _ = app_for(**template(slapd, **settings, ldap_ca_file=str(slapd.ca_file)))
        assert login(trusted, "fay", USERS["fay"][0]).status_code == 200, settings
        untrusted, services = app_for(**template(slapd, **settings))
        refused = login(untrusted, "fay", USERS["fay"][0])
        assert refused.status_code == 503 and "could not be secured" in refused.json()["error"]["message"]
        assert login(untrusted, "olive", LOCAL["olive"]).status_code == 200


def test_users_list_names_the_source_and_groups(slapd, app_for):
    client, services = app_for(**template(slapd))
    assert login(client, "dana", USERS["dana"][0]).status_code == 200
    data = services.users.path.parent
    listed = subprocess.run([sys.executable, "app.py", "--data-dir", str(data), "users", "list"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "dana\tadmin\t0 token(s)\tldap\tdcu-admins,engineers\t" in listed.stdout
    assert "olive\tuser\t0 token(s)\tlocal\t-\t" in listed.stdout


def test_the_directory_stopped_mid_run(slapd, app_for):
    client, services = app_for(**search_then_bind(slapd))
    assert login(client, "dana", USERS["dana"][0]).status_code == 200
    signed_in = {"dcu_session": client.cookies["dcu_session"]}
    slapd.stop()
    try:
        down = login(client, "dana", USERS["dana"][0])
        assert down.status_code == 503
        assert down.json()["error"]["message"].startswith(f"The company directory ({slapd.url}) cannot be reached")
        assert "Local accounts still sign in" in down.json()["error"]["message"]
        html = client.post("/login", data={"username": "erik", "password": USERS["erik"][0]},
                           headers={"accept": "text/html"})
        assert html.status_code == 503 and "cannot be reached" in html.text and "<form" in html.text
        assert login(client, "olive", LOCAL["olive"]).status_code == 200  # local users still sign in
        client.cookies.clear()
        assert client.get("/api/sessions", cookies=signed_in).status_code == 200  # signed-in users stay in
    finally:
        slapd.start()
    assert login(client, "dana", USERS["dana"][0]).status_code == 200
    assert ("dana", "ldap", "directory down") in failures(services)
    assert all(USERS["dana"][0] not in json.dumps(e) for e in services.audit.recent())
