"""Sharing a collection with a group (``group:NAME``): members by their last sign-in from a directory or
provider, read or write, membership that follows the directory, names checked (REST and Docs tab)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from docs_support import REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient

from assist.access import CollectionAccess
from assist.errors import InvalidSharing
from assist.users import UserStore
from webui.api import build_api

TOKENS: dict[str, str] = {}


@pytest.fixture()
def world(tmp_path):
    services = make_services(tmp_path / "data", FakeEngine("It is 36 months [1]."))
    users = services.users = UserStore(":memory:", hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    users.add("olive", "long-enough-password")  # a local user: no groups
    users.sign_in_from_outside("dana", "ldap", ["Engineers", "dcu-admins"], "admin")
    users.sign_in_from_outside("erik", "ldap", ["engineers"], "user")
    users.sign_in_from_outside("carol", "oidc", ["staff"], "user", external_id="sub-carol")
    for name in ("olive", "dana", "erik", "carol"):
        TOKENS[name] = users.create_token(name)[1]
    with TestClient(build_api(services)) as client:
        client.services = services
        yield client, users
    services.store.close()


def as_(user: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def search(client, user, ref):
    return client.post(f"/api/collections/{ref}/search", headers=as_(user), json={"query": "warranty"})


def test_a_group_share_reaches_its_members_only(world):
    client, users = world
    upload = client.post("/api/collections/default/documents", headers=as_("olive"),
                         files=[("files", ("report.pdf", make_pdf(REPORT_PAGES), "application/pdf"))])
    assert upload.status_code == 200
    shared = client.put("/api/collections/default/sharing", headers=as_("olive"),
                        json={"users": ["group:ENGINEERS"], "mode": "read"})
    assert shared.status_code == 200 and shared.json()["users"] == [{"user": "group:engineers", "mode": "read"}]
    for member in ("dana", "erik"):  # any case: directories compare group names without it
        assert search(client, member, "olive:default").status_code == 200
        listed = client.get("/api/collections", headers=as_(member)).json()["collections"]
        assert {"name": "olive:default", "access": "read"}.items() <= next(
            c for c in listed if c["name"] == "olive:default").items()
        refused = client.post("/api/collections/olive:default/documents", headers=as_(member),
                              files=[("files", ("x.txt", b"x", "text/plain"))])
        assert refused.status_code == 403  # read-only
    assert search(client, "carol", "olive:default").status_code == 404  # not a member: reads as missing
    client.put("/api/collections/default/sharing", headers=as_("olive"),
               json={"users": ["group:engineers", "carol"], "mode": "write"})
    assert client.post("/api/collections/olive:default/documents", headers=as_("erik"),
                       files=[("files", ("notes.txt", b"Pumps need oil.", "text/plain"))]).status_code == 200
    # erik leaves the group in the directory: his next sign-in says so, and the share no longer reaches him
    users.sign_in_from_outside("erik", "ldap", [], "user")
    assert search(client, "erik", "olive:default").status_code == 404
    assert search(client, "carol", "olive:default").status_code == 200  # named users still work


@pytest.mark.parametrize("bad", ["group:", "group:*", "group: ", "*", "a:b", "x" * 129])
def test_grantees_are_user_names_or_groups(tmp_path, bad):
    access = CollectionAccess(tmp_path / "access.sqlite3")
    access.register("olive", "docs", "s1")
    with pytest.raises(InvalidSharing):
        access.set_sharing("s1", None, {bad: "read"})
    assert access.set_sharing("s1", None, {"group:Team A": "write"}).users == {"group:team a": "write"}
    assert access.shared("x", "olive", "docs", ["TEAM A"]).mode == "write"
    assert access.shared("x", "olive", "docs", ["team"]) is None


def test_the_docs_tab_shares_with_a_group(world):
    from types import SimpleNamespace

    from webui.docs_sharing import SharingHandlers

    client, users = world
    request = SimpleNamespace(state=SimpleNamespace(user=users.get("olive")), headers={})
    status = SharingHandlers(client.services.collections).share("default", "group:engineers, carol", False, "read",
                                                                request)
    assert "group:engineers" in status and "carol" in status
    assert search(client, "erik", "olive:default").status_code == 200
