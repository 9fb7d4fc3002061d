"""Sign-in from outside without real servers: settings, escaping, users that come from a directory
or a provider (created, refreshed, never merged with a local user), the password sign-in order
(local first, then the directory), single-use OpenID flows, a directory that hangs, the sign-in
page's "Sign in with ..." link. The real slapd and OpenID provider are in tests/integration."""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest
from argon2 import PasswordHasher
from fakes import FakeEngine
from fastapi.testclient import TestClient

from assist.audit import AuditLog
from assist.errors import UserError
from assist.identity.config import IdentityConfig
from assist.identity.errors import (
    DirectoryDown,
    IdentityConfigError,
    InvalidToken,
    SignInConflict,
    SignInFailed,
)
from assist.identity.ldap import DirectoryUser, LdapDirectory, user_dn_for, user_filter_for
from assist.identity.oidc_flows import PendingFlows
from assist.identity.signin import Identity
from assist.users import UserStore
from webui.api import build_api
from webui.login_page import login_page
from webui.services import Services, WebConfig

FAST_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
TEMPLATE = "uid={username},ou=people,dc=example,dc=org"


@pytest.fixture
def users(tmp_path) -> UserStore:
    store = UserStore(tmp_path / "users.sqlite3", memory_users=[("ann", "pw-ann-123")], hasher=FAST_HASH)
    store.add("alice", "pw-alice-123")
    return store


@pytest.mark.parametrize("settings,fix", [
    ({"ldap_url": "http://dc1"}, "ldap:// or ldaps://"),
    ({"ldap_url": "ldap://dc1"}, "--ldap-user-dn"),
    ({"ldap_url": "ldap://dc1", "ldap_user_dn": "uid=x,dc=org"}, "{username}"),
    ({"ldap_url": "ldap://dc1", "ldap_user_base": "dc=org", "ldap_user_filter": "(uid=bob)"}, "{username}"),
    ({"ldap_url": "ldaps://dc1", "ldap_user_dn": TEMPLATE, "ldap_start_tls": True}, "encrypted already"),
    ({"ldap_url": "ldap://dc1", "ldap_user_base": "dc=org", "ldap_bind_dn": "cn=svc"}, "go together"),
    ({"oidc_issuer": "https://sso.example.org"}, "--oidc-client-id"),
    ({"oidc_issuer": "http://sso.example.org", "oidc_client_id": "x"}, "https://"),
    ({"oidc_issuer": "https://sso.example.org", "oidc_client_id": "x", "oidc_scopes": "email"}, "openid"),
])
def test_settings_that_cannot_work_say_what_to_fix(settings, fix):
    with pytest.raises(IdentityConfigError, match=fix.replace("(", r"\(").replace(".", r"\.").replace("{", r"\{")):
        IdentityConfig(**settings)


def test_plain_http_issuers_only_on_this_machine():
    assert IdentityConfig(oidc_issuer="http://127.0.0.1:8080", oidc_client_id="x").oidc_enabled
    assert IdentityConfig(oidc_issuer="https://sso.example.org/realms/a", oidc_client_id="x").provider_name == \
        "sso.example.org"
    assert not IdentityConfig().ldap_enabled and not IdentityConfig().oidc_enabled


def test_user_names_are_escaped_for_dns_and_filters():
    assert user_filter_for("(uid={username})", "*)(uid=*") == r"(uid=\2a\29\28uid=\2a)"
    assert user_filter_for("(&(objectClass=person)(sAMAccountName={username}))", "a\\b") == \
        r"(&(objectClass=person)(sAMAccountName=a\5cb))"
    assert user_dn_for(TEMPLATE, "x,ou=admins") == r"uid=x\,ou\=admins,ou=people,dc=example,dc=org"
    assert user_dn_for(TEMPLATE, "{username}") == "uid={username},ou=people,dc=example,dc=org"  # no re-expansion


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_empty_password_never_reaches_the_directory():
    directory = LdapDirectory(IdentityConfig(ldap_url=f"ldap://127.0.0.1:{_closed_port()}", ldap_user_dn=TEMPLATE))
    for password in ("", None):
        with pytest.raises(SignInFailed) as refused:  # not DirectoryDown: nothing was sent
            directory.authenticate("alice", password)
        assert refused.value.reason == "empty password"
    with pytest.raises(DirectoryDown, match="cannot be reached"):
        directory.authenticate("alice", "a password")


def test_a_directory_that_never_answers_is_down_after_the_timeout():
    with socket.socket() as silent:  # accepts connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        directory = LdapDirectory(IdentityConfig(ldap_url=f"ldap://127.0.0.1:{port}", ldap_user_dn=TEMPLATE,
                                                 ldap_timeout_s=1))
        started = time.monotonic()
        with pytest.raises(DirectoryDown):
            directory.authenticate("alice", "a password")
        assert time.monotonic() - started < 10


def test_users_from_outside_are_created_refreshed_and_listed(users):
    made = users.sign_in_from_outside("dana", "ldap", ["engineers", "dcu-admins"], "admin")
    assert made.is_admin and users.source_of("dana") == "ldap"
    assert users.groups_of("dana") == ("dcu-admins", "engineers")
    again = users.sign_in_from_outside("dana", "ldap", ["engineers"], "user")  # left the admin group
    assert not again.is_admin and users.get("dana").role == "user" and users.groups_of("dana") == ("engineers",)
    users.sign_in_from_outside("carol", "oidc", [], "user", external_id="sub-1")
    listed = {u.name: (u.source, u.groups) for u in users.list()}
    assert listed == {"alice": ("local", ()), "ann": ("command line", ()), "carol": ("oidc", ()),
                      "dana": ("ldap", ("engineers",))}
    info, secret = users.create_token("dana")  # API tokens work for them as for local users
    assert users.user_for_token(secret).name == "dana"
    assert users.user_for_sign_in(users.start_sign_in("carol")).name == "carol"


def test_a_name_belongs_to_one_kind_of_account(users):
    for name in ("alice", "ann"):  # a users-file user, an --auth user
        with pytest.raises(SignInConflict, match=f"{name} belongs to a local account"):
            users.sign_in_from_outside(name, "ldap", [], "user")
    users.sign_in_from_outside("dana", "ldap", [], "user")
    with pytest.raises(SignInConflict, match="an ldap account"):
        users.sign_in_from_outside("dana", "oidc", [], "user", external_id="sub-9")
    users.sign_in_from_outside("carol", "oidc", [], "user", external_id="sub-1")
    with pytest.raises(SignInConflict, match="another oidc account"):  # same name, another person at the provider
        users.sign_in_from_outside("carol", "oidc", [], "user", external_id="sub-2")
    with pytest.raises(UserError, match="exists already"):
        users.add("dana", "a-long-password")
    with pytest.raises(UserError, match="signs in through ldap"):
        users.set_password("dana", "a-long-password")
    with pytest.raises(UserError):
        users.sign_in_from_outside("local", "ldap", [], "user")  # reserved name


def test_users_from_outside_have_no_password_here(users):
    users.sign_in_from_outside("dana", "ldap", [], "user")
    for password in ("", "x", None):
        assert users.authenticate("dana", password) is None


def test_an_older_users_file_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, "
                     "created_at TEXT NOT NULL)")
        conn.execute("INSERT INTO users VALUES ('old', 'admin', ?, '2026-01-01')", (FAST_HASH.hash("pw-old-1234"),))
    store = UserStore(path, hasher=FAST_HASH)
    assert store.authenticate("old", "pw-old-1234").is_admin and store.source_of("old") == "local"
    assert [(u.name, u.source, u.groups) for u in store.list()] == [("old", "local", ())]


class FakeDirectory:
    """Stands in for LdapDirectory: a dict of name -> (password, groups), or down."""

    admin_group = "dcu-admins"

    def __init__(self, people: dict, down: bool = False) -> None:
        self.people, self.down, self.calls = people, down, []

    def describe(self) -> str:
        return "LDAP fake"

    def authenticate(self, name: str, password: str) -> DirectoryUser:
        self.calls.append(name)
        if self.down:
            raise DirectoryDown("The company directory cannot be reached right now.")
        if name not in self.people:
            raise SignInFailed("unknown user", source="ldap")
        if not password or self.people[name][0] != password:
            raise SignInFailed("bad password", source="ldap")
        return DirectoryUser(name, f"uid={name}", tuple(self.people[name][1]))


def test_local_users_first_then_the_directory(users):
    directory = FakeDirectory({"dana": ("dana-pw", ["dcu-admins"]), "alice": ("alice-dir-pw", [])})
    identity = Identity(users, ldap=directory)
    assert identity.password_sign_in("alice", "pw-alice-123").source == "local" and directory.calls == []
    dana = identity.password_sign_in("dana", "dana-pw")
    assert (dana.source, dana.user.role, dana.groups) == ("ldap", "admin", ("dcu-admins",))
    with pytest.raises(SignInConflict, match="alice is a local account"):  # the directory's alice, not ours
        identity.password_sign_in("alice", "alice-dir-pw")
    with pytest.raises(SignInFailed) as wrong:
        identity.password_sign_in("alice", "neither")
    assert wrong.value.reason == "bad password" and str(wrong.value) == "Wrong user name or password."
    with pytest.raises(SignInFailed) as unknown:
        identity.password_sign_in("zed", "x")
    assert (unknown.value.reason, unknown.value.source) == ("unknown user", "ldap")
    directory.down = True
    assert identity.password_sign_in("ann", "pw-ann-123").source == "local"  # local users still sign in
    with pytest.raises(DirectoryDown):
        identity.password_sign_in("dana", "dana-pw")


def test_without_a_directory_directory_users_cannot_use_a_password(users):
    users.sign_in_from_outside("dana", "ldap", [], "user")
    with pytest.raises(SignInFailed) as refused:
        Identity(users).password_sign_in("dana", "")
    assert refused.value.reason == "ldap user without ldap"


def test_openid_flows_are_single_use_short_lived_and_bound_to_one_browser():
    now = [100.0]
    flows = PendingFlows(seconds=600, clock=lambda: now[0])
    first = flows.start("browser-a", "http://x/cb", "/next")
    assert len({first.state, first.nonce, first.code_verifier}) == 3 and len(first.code_verifier) >= 43
    assert flows.take(first.state, "browser-a").next_path == "/next"
    for state, browser, why in [(first.state, "browser-a", "already used"), ("made-up", "browser-a", "already used"),
                                (flows.start("browser-a", "u", "/").state, "browser-b", "another browser"),
                                (flows.start("browser-a", "u", "/").state, None, "another browser")]:
        with pytest.raises(InvalidToken, match=why):
            flows.take(state, browser)
    late = flows.start("browser-a", "u", "/")
    now[0] += 601
    with pytest.raises(InvalidToken, match="unknown or already used|too long"):
        flows.take(late.state, "browser-a")
    assert len(flows) == 0


def test_the_sign_in_page_offers_the_provider_only_when_configured():
    assert "sign-in-oidc" not in login_page("/")
    page = login_page("/?tab=docs", oidc_name="Acme <SSO>")
    assert 'href="/login/oidc?next=/%3Ftab%3Ddocs"' in page and "Sign in with Acme &lt;SSO&gt;" in page
    assert 'href="/login/oidc?next=/"' in login_page("https://evil.example/", oidc_name="x")


def test_directory_sign_ins_through_post_login_are_audited_with_source_and_reason(tmp_path, users):
    audit = AuditLog(tmp_path / "audit.jsonl")
    directory = FakeDirectory({"dana": ("dana-pw", ["dcu-admins"])})
    services = Services(engine=FakeEngine(), web=WebConfig(data_dir=tmp_path), users=users, audit=audit,
                        identity=Identity(users, IdentityConfig(), ldap=directory))
    client = TestClient(build_api(services))
    assert client.post("/login", data={"username": "dana", "password": "dana-pw"}).status_code == 200
    assert client.post("/login", data={"username": "dana", "password": "nope"}).json()["error"]["type"] == \
        "NotAuthenticated"
    directory.down = True
    down = client.post("/login", data={"username": "dana", "password": "dana-pw"})
    assert down.status_code == 503 and "cannot be reached" in down.json()["error"]["message"]
    assert client.post("/login", data={"username": "alice", "password": "pw-alice-123"}).status_code == 200
    seen = [(e["event"], e.get("source"), e.get("reason")) for e in audit.recent()]
    assert seen == [("login.ok", "ldap", None), ("login.failed", "ldap", "bad password"),
                    ("login.failed", "ldap", "directory down"), ("login.ok", "local", None)]
    assert "dana-pw" not in (tmp_path / "audit.jsonl").read_text()
    assert client.get("/login/oidc").status_code == 404  # no provider configured


def test_every_identity_option_is_a_flag_an_environment_variable_and_a_toml_key(tmp_path, capsys):
    import app
    import app_settings

    toml = tmp_path / "c.toml"
    toml.write_text('[identity]\nldap_url = "ldaps://dc1.example.org"\nldap_bind_dn = "cn=svc,dc=example,dc=org"\n'
                    'ldap_user_base = "ou=people,dc=example,dc=org"\n'
                    'ldap_user_filter = "(sAMAccountName={username})"\n')
    args = app_settings.parser().parse_args(["--config", str(toml), "--oidc-issuer", "https://sso.example.org",
                                             "--oidc-client-id", "dcu", "--ldap-admin-group", "dcu-admins"])
    settings = app_settings.resolve_settings(args, environ={"DCU_CHAT_LDAP_BIND_PASSWORD": "svc-secret",
                                                            "DCU_CHAT_OIDC_CLIENT_SECRET": "oidc-secret"})
    config = app_settings.build_identity_config(settings)
    assert (config.ldap_url, config.ldap_user_filter, config.ldap_bind_password, config.ldap_admin_group) == \
        ("ldaps://dc1.example.org", "(sAMAccountName={username})", "svc-secret", "dcu-admins")
    assert (config.oidc_issuer, config.oidc_client_secret, config.oidc_scopes) == \
        ("https://sso.example.org", "oidc-secret", "openid email profile")
    app.show_config(settings)
    shown = capsys.readouterr().out
    assert "ldap_bind_password = '***'" in shown and "oidc_client_secret = '***'" in shown
    assert "svc-secret" not in shown and "oidc-secret" not in shown
