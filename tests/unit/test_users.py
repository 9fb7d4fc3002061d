"""Users file (argon2 hashes, never plain text), API tokens (revocation at once), sign-in cookies,
the failed-sign-in throttle, the audit log and ``python app.py users ...``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fakes import FakeEngine
from fastapi.testclient import TestClient

from assist.audit import AuditLog
from assist.errors import UnknownUser, UserError
from assist.throttle import FailureThrottle
from assist.users import UserStore
from assist.users_cli import run_users_command
from webui.api import build_api
from webui.services import Services, WebConfig

ROOT = Path(__file__).resolve().parents[2]
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path) -> UserStore:
    return UserStore(tmp_path / "users.sqlite3", hasher=FAST_HASH)


def test_passwords_are_stored_only_as_argon2_hashes(tmp_path, store):
    store.add("alice", PASSWORD, role="admin")
    raw = (tmp_path / "users.sqlite3").read_bytes()
    assert PASSWORD.encode() not in raw and b"$argon2id$" in raw
    assert store.authenticate("alice", PASSWORD).is_admin
    assert store.authenticate("alice", PASSWORD + "x") is None and store.authenticate("nobody", PASSWORD) is None


def test_command_line_users_are_never_written(tmp_path):
    store = UserStore(tmp_path / "users.sqlite3", memory_users=[("ann", "pw1")], hasher=FAST_HASH)
    store.create_token("ann")
    assert b"pw1" not in (tmp_path / "users.sqlite3").read_bytes()
    assert store.authenticate("ann", "pw1").name == "ann" and store.has_users()
    assert [(u.name, u.source) for u in store.list()] == [("ann", "command line")]
    assert not UserStore(tmp_path / "users.sqlite3", hasher=FAST_HASH).has_users()  # restarted without --auth


def test_user_rules(store):
    for bad in ("", "a b", "x" * 65, "local", "<img>"):
        with pytest.raises(UserError):
            store.add(bad, PASSWORD)
    with pytest.raises(UserError, match="too short"):
        store.add("bob", "short")
    with pytest.raises(UserError, match="role"):
        store.add("bob", PASSWORD, role="root")
    store.add("bob", PASSWORD)
    with pytest.raises(UserError, match="exists"):
        store.add("bob", PASSWORD)
    store.remove("bob")
    with pytest.raises(UnknownUser):
        store.remove("bob")


def test_tokens_are_shown_once_stored_as_digests_and_revoked_at_once(tmp_path, store):
    store.add("alice", PASSWORD)
    info, secret = store.create_token("alice", "laptop")
    assert secret.startswith("dcu_") and secret.encode() not in (tmp_path / "users.sqlite3").read_bytes()
    assert store.user_for_token(secret).name == "alice"
    assert [t.label for t in store.tokens("alice")] == ["laptop"] and store.tokens("alice")[0].last_used_at
    with pytest.raises(UnknownUser):
        store.revoke_token("bob", info.id)  # only the owner's own tokens
    store.revoke_token("alice", info.id)
    assert store.user_for_token(secret) is None


def test_removing_a_user_ends_their_tokens_and_sign_ins(store):
    store.add("alice", PASSWORD)
    _, secret = store.create_token("alice")
    cookie = store.start_sign_in("alice")
    assert store.user_for_sign_in(cookie).name == "alice"
    store.remove("alice")
    assert store.user_for_token(secret) is None and store.user_for_sign_in(cookie) is None
    store.add("alice", PASSWORD)  # a new user of the same name does not inherit them
    assert store.user_for_token(secret) is None and store.user_for_sign_in(cookie) is None


def test_a_new_password_ends_browser_sign_ins(store, tmp_path):
    store.add("alice", PASSWORD)
    cookie = store.start_sign_in("alice")
    assert run_users_command(["passwd", "alice"], store, stdin=io.StringIO("a brand new password\n"),
                             out=io.StringIO()) == 0
    assert store.user_for_sign_in(cookie) is None and store.authenticate("alice", PASSWORD) is None
    assert store.authenticate("alice", "a brand new password").name == "alice"
    with pytest.raises(UnknownUser):
        store.set_password("nobody", "long enough password")


def test_expired_sign_ins_do_not_work(store):
    store.add("alice", PASSWORD)
    assert store.user_for_sign_in(store.start_sign_in("alice", seconds=-1)) is None


def test_throttle_counts_per_key_in_a_sliding_window():
    now = [1000.0]
    throttle = FailureThrottle(limit=5, window_s=60, clock=lambda: now[0])
    for _ in range(5):
        assert throttle.retry_after(["user:a", "address:1"]) == 0
        throttle.failed(["user:a", "address:1"])
        now[0] += 1
    # the first of the five failures (at 1000) ages out at 1060; it is 1005 now
    assert throttle.retry_after(["user:a"]) == 55 and throttle.retry_after(["user:b", "address:1"]) == 55
    assert throttle.retry_after(["user:b", "address:2"]) == 0
    throttle.succeeded("user:a")
    assert throttle.retry_after(["user:a", "address:2"]) == 0 and throttle.retry_after(["address:1"]) > 0
    now[0] += 55
    assert throttle.retry_after(["address:1"]) == 0


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    users = UserStore(tmp_path / "users.sqlite3", memory_users=[("alice", "pw1")], hasher=FAST_HASH)
    users.add("bob", PASSWORD)
    audit = AuditLog(tmp_path / "audit.jsonl")
    services = Services(engine=FakeEngine(), web=WebConfig(data_dir=tmp_path, auth=(("alice", "pw1"),)),
                        users=users, audit=audit)
    return TestClient(build_api(services), follow_redirects=False), users, audit


def login(client, name, password, **headers):
    response = client.post("/login", data={"username": name, "password": password}, headers=headers)
    client.cookies.clear()
    return response


def test_sign_in_cookie_flags_and_use(served):
    client, _, audit = served
    response = login(client, "alice", "pw1")
    assert response.status_code == 200 and response.json() == {"success": True}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dcu_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain http here
    secret = response.cookies["dcu_session"]
    assert client.get("/v1/models", headers={"Cookie": f"dcu_session={secret}"}).status_code == 200
    out = client.get("/logout", headers={"Cookie": f"dcu_session={secret}"})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/v1/models", headers={"Cookie": f"dcu_session={secret}"}).status_code == 401
    assert [e["event"] for e in audit.recent()] == ["login.ok", "logout"]


def test_the_cookie_is_secure_over_https(served):
    client, _, _ = served
    secure = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    cookie = secure.post("/login", data={"username": "alice", "password": "pw1"}).headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_browser_sign_in_redirects_only_to_local_paths(served):
    client, _, _ = served
    html = {"accept": "text/html"}
    ok = client.post("/login", data={"username": "bob", "password": PASSWORD, "next": "/?tab=docs"}, headers=html)
    assert ok.status_code == 303 and ok.headers["location"] == "/?tab=docs"
    client.cookies.clear()
    evil = client.post("/login", data={"username": "bob", "password": PASSWORD, "next": "//evil.example/"},
                       headers=html)
    assert evil.headers["location"] == "/"
    client.cookies.clear()
    wrong = client.post("/login", data={"username": "bob", "password": "nope"}, headers=html)
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text and "<form" in wrong.text


def test_failed_sign_ins_are_throttled_per_user_and_address(served):
    client, _, audit = served
    for _ in range(5):
        assert login(client, "bob", "wrong").status_code == 401
    blocked = login(client, "bob", PASSWORD)  # even the right password: nothing is checked while blocked
    assert blocked.status_code == 429 and 0 < int(blocked.headers["retry-after"]) <= 60
    assert blocked.json()["error"]["type"] == "TooManyAttempts"
    assert login(client, "alice", "pw1").status_code == 429  # same address
    events = [e["event"] for e in audit.recent()]
    assert events.count("login.failed") == 5 and events.count("login.throttled") == 2
    assert all("wrong" not in json.dumps(e) and PASSWORD not in json.dumps(e) for e in audit.recent())


def test_a_revoked_token_stops_working_on_the_next_request(served):
    client, users, _ = served
    info, secret = users.create_token("alice")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/models", headers=bearer).status_code == 200
    users.revoke_token("alice", info.id)
    response = client.get("/v1/models", headers=bearer)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_the_api_key_signs_in_a_browser_too(tmp_path):
    client = TestClient(build_api(Services(engine=FakeEngine(), web=WebConfig(data_dir=tmp_path, api_key="k" * 20))),
                        follow_redirects=False)
    response = client.post("/login", data={"username": "", "password": "k" * 20})
    assert response.status_code == 200
    assert client.get("/v1/models", headers={"Cookie": f"dcu_session={response.cookies['dcu_session']}"}
                      ).status_code == 200


# -- python app.py users ... -------------------------------------------------------------------


def test_users_cli_functions(store, tmp_path, capsys):
    audit = AuditLog(tmp_path / "audit.jsonl")
    assert run_users_command(["add", "carol"], store, audit, role="admin", stdin=io.StringIO(PASSWORD + "\n")) == 0
    assert store.authenticate("carol", PASSWORD).is_admin
    out = io.StringIO()
    assert run_users_command(["token", "carol"], store, audit, label="ci", out=out) == 0
    secret = out.getvalue().strip()
    assert store.user_for_token(secret).name == "carol"
    token_id = store.tokens("carol")[0].id
    assert run_users_command(["revoke", "carol", token_id], store, audit, out=io.StringIO()) == 0
    assert store.user_for_token(secret) is None
    assert run_users_command(["add", "dave"], store, stdin=io.StringIO("short\n")) == 2
    assert "too short" in capsys.readouterr().err
    assert [e["event"] for e in audit.recent()] == ["user.added", "token.created", "token.revoked"]
    assert secret not in (tmp_path / "audit.jsonl").read_text()


def test_users_cli_end_to_end(tmp_path):
    def app(*args, stdin=""):
        return subprocess.run([sys.executable, "app.py", "--data-dir", str(tmp_path), "users", *args], cwd=ROOT,
                              input=stdin, capture_output=True, text=True, timeout=120)

    added = app("add", "erin", "--role", "admin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    token = app("token", "erin", "--label", "script")
    assert token.returncode == 0 and token.stdout.strip().startswith("dcu_") and "shown only now" in token.stderr
    listed = app("list")
    assert "erin\tadmin\t1 token(s)\tlocal\t-\t" in listed.stdout
    assert PASSWORD.encode() not in (tmp_path / "users.sqlite3").read_bytes()
    removed = app("remove", "erin")
    assert removed.returncode == 0 and app("list").stdout == ""
    assert app("frobnicate").returncode == 2
