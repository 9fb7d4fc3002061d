"""Signing in with the company's OpenID provider as a person does, in the browser: the sign-in page's
"Sign in with Test SSO", the provider's own page (oidc-provider-mock on loopback), back in Chat signed
in; Settings says who, through which provider and with which groups (admin by the groups claim);
signing out passes through the provider's end-session page and comes back to the sign-in page."""

from __future__ import annotations

from e2e_ui import SLOW_MS, open_app, shoot, tab
from oidc_support import ADMIN_GROUP, running_provider
from playwright.sync_api import expect


def test_sign_in_with_the_provider_lands_in_chat_with_groups(launch_app, tmp_path_factory, new_page):
    with running_provider() as issuer:
        app = launch_app("--oidc-issuer", issuer, "--oidc-client-id", "dcu-chat", "--oidc-name", "Test SSO",
                         "--oidc-admin-group", ADMIN_GROUP, data_dir=tmp_path_factory.mktemp("oidc") / "data",
                         env={"DCU_CHAT_OIDC_CLIENT_SECRET": "e2e-secret"})
        try:
            page = new_page("en-US")
            assert page.goto(app.url + "/").status == 401  # the sign-in page, not the app
            button = page.locator("#sign-in-oidc")
            expect(button).to_have_text("Sign in with Test SSO")
            shoot(page, "sign-in-oidc-button")
            button.click()
            page.wait_for_url(issuer + "/oauth2/authorize?*")  # the provider's own page
            page.fill("input[name=sub]", "sub-carol")
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_url(app.url + "/", timeout=SLOW_MS)  # back home, signed in
            expect(page.locator("#chat-input textarea")).to_be_visible(timeout=SLOW_MS)
            open_app(page, app.url + "/")  # a reload keeps the sign-in (the one dcu_session cookie)
            (cookie,) = [c for c in page.context.cookies() if c["name"] == "dcu_session"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

            tab(page, "settings").click()
            account = page.locator("#settings-account")
            expect(account).to_contain_text("Signed in as carol (admin) through oidc")
            expect(account).to_contain_text("groups: dcu-admins, staff")
            expect(page.locator("#settings-users")).to_contain_text("oidc")  # admins see the users list
            shoot(page, "settings-oidc-user")

            page.locator("#settings-sign-out").click()
            page.wait_for_url(issuer + "/oauth2/end_session?*")  # the provider's session ends too
            page.get_by_role("button", name="End session").click()
            expect(page.locator("form[action='/login']")).to_be_visible()
            assert page.url.startswith(app.url + "/login")
            assert page.goto(app.url + "/").status == 401
        finally:
            app.stop()  # before the provider it talks to
