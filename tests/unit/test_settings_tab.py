"""Settings tab handlers: the caller's own tokens (made, shown once, revoked), admins see users."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher

from assist.audit import AuditLog
from assist.users import User, UserStore
from webui.services import Services
from webui.settings_tab import SettingsHandlers


def request(user: User | None):
    return SimpleNamespace(state=SimpleNamespace(user=user), headers={"accept-language": "en"},
                           scope={"client": ("10.0.0.7", 1234)})


@pytest.fixture
def handlers(tmp_path):
    users = UserStore(tmp_path / "users.sqlite3", memory_users=[("alice", "pw1")],
                      hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    users.add("root", "root-password", role="admin")
    services = Services(engine=None, users=users, audit=AuditLog(tmp_path / "audit.jsonl"))
    return SettingsHandlers(services)


def test_a_user_makes_sees_and_revokes_their_own_tokens(handlers):
    alice = request(User("alice"))
    view = handlers.create_token("laptop", alice)
    assert view.new_token.startswith("dcu_") and view.can_have_tokens and "alice" in view.account and view.signed_in
    assert [row[1] for row in view.tokens] == ["laptop"] and view.users is None  # not an admin
    assert handlers.services.users.user_for_token(view.new_token).name == "alice"
    assert handlers.view(alice).new_token == ""  # shown once
    token_id = view.token_choices[0][1]
    assert handlers.view(request(User("root", "admin"))).tokens == []  # not someone else's
    after = handlers.revoke_token(token_id, alice)
    assert after.tokens == [] and handlers.services.users.user_for_token(view.new_token) is None
    events = handlers.services.audit.recent()
    assert [(e["event"], e["actor"], e["address"]) for e in events] == [
        ("token.created", "alice", "10.0.0.7"), ("token.revoked", "alice", "10.0.0.7")]


def test_admins_see_users_not_content(handlers):
    view = handlers.view(request(User("root", "admin")))
    assert [row[:2] for row in view.users] == [["root", "admin"], ["alice", "user"]]


def test_without_sign_in_and_for_the_key_holder(handlers):
    assert "Sign-in is off" in handlers.view(request(None)).account and not handlers.view(request(None)).signed_in
    key = handlers.view(request(User("local", "admin")))
    assert not key.can_have_tokens and "API key" in key.account
