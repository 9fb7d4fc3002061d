"""Signing in as a person does: the sign-in page, a wrong then a right password, the cookie's flags,
an API token made and revoked in Settings (checked over HTTP), signing out; bob, in another
browser, does not see alice's conversation."""

from __future__ import annotations

import httpx
from e2e_ui import SLOW_MS, last_answer, open_app, send_chat, shoot, tab, wait_answer_done
from playwright.sync_api import expect

SECRET = "Alice's private note about PELICAN-7"


def sign_in(page, url: str, name: str, password: str) -> None:
    page.goto(url + "/")
    expect(page.locator("form[action='/login']")).to_be_visible()
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_sign_in_tokens_and_sign_out(launch_app, tmp_path_factory, new_page):
    app = launch_app("--auth", "alice:pw1,bob:pw2", data_dir=tmp_path_factory.mktemp("signin") / "data")
    page = new_page("en-US")
    assert page.goto(app.url + "/").status == 401  # the sign-in form, not the app
    sign_in(page, app.url, "alice", "wrong")
    expect(page.locator(".error")).to_have_text("Wrong user name or password.")
    shoot(page, "sign-in-wrong-password")
    sign_in(page, app.url, "alice", "pw1")
    open_app(page, app.url + "/")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "dcu_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    send_chat(page, SECRET)
    wait_answer_done(last_answer(page))

    tab(page, "settings").click()
    expect(page.locator("#settings-account")).to_contain_text("Signed in as alice")
    page.locator("#settings-token-label textarea, #settings-token-label input").first.fill("e2e script")
    page.locator("#settings-create").click()
    box = page.locator("#settings-new-token textarea, #settings-new-token input").first
    expect(page.locator("#settings-token-table")).to_contain_text("e2e script", timeout=SLOW_MS)
    token = box.input_value()
    assert token.startswith("dcu_")
    bearer = {"Authorization": f"Bearer {token}"}
    sessions = httpx.get(app.url + "/api/sessions", headers=bearer, timeout=30)
    assert sessions.status_code == 200 and SECRET in sessions.text  # the token acts as alice
    shoot(page, "settings-token")
    page.locator("#settings-pick input").click()
    page.locator("#settings-pick").get_by_role("option").or_(page.locator("ul.options li")).filter(
        has_text="e2e script").first.click()
    page.locator("#settings-revoke").click()
    expect(page.locator("#settings-token-table")).not_to_contain_text("e2e script", timeout=SLOW_MS)
    assert httpx.get(app.url + "/api/sessions", headers=bearer, timeout=30).status_code == 401

    page.locator("#settings-sign-out").click()
    expect(page.locator("form[action='/login']")).to_be_visible()
    assert page.goto(app.url + "/").status == 401

    bob = new_page("en-US")
    sign_in(bob, app.url, "bob", "pw2")
    open_app(bob, app.url + "/")
    expect(bob.locator("#session-empty")).to_be_visible()  # alice's conversation is not his
    assert SECRET not in bob.content()
