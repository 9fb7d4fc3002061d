"""Branches in a real browser with the real default model: edit the first question of a three-turn
chat (‹2/2›, and ‹ brings the original answers back), regenerate an answer twice and walk ‹1/3›–‹3/3›;
every version survives a server restart and an export/import of the conversation as JSON."""

from __future__ import annotations

import json

from e2e_ui import SLOW_MS, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import Page, expect

QUESTIONS = ["Name a fruit.", "Name a colour.", "Name an animal."]


def users(page: Page):
    return page.locator("#chatbot [data-testid=user]")


def bots(page: Page):
    return page.locator("#chatbot [data-testid=bot]")


def answer_text(page: Page, index: int) -> str:
    """An answer without its stats line and arrows (what the model wrote)."""
    answer = bots(page).nth(index)
    wait_answer_done(answer)
    return answer.locator("p").first.inner_text()


def versions(locator) -> str:
    return locator.locator(".dcu-branch > span").inner_text()


def click_branch(page: Page, message, verb: str, expect_users: int | None = None) -> None:
    message.locator(f"a[href^='#dcu-branch:{verb}:']").click()
    if expect_users is not None:
        expect(users(page)).to_have_count(expect_users, timeout=SLOW_MS)


def build_branches(page: Page) -> dict:
    """Three turns, the first question edited, the last answer regenerated twice; returns what was seen."""
    for number, question in enumerate(QUESTIONS):
        send_chat(page, question)
        expect(bots(page)).to_have_count(number + 1, timeout=SLOW_MS)
        wait_answer_done(bots(page).nth(number))
    original = [answer_text(page, i) for i in range(3)]
    last = [original[2]]
    for _ in range(2):  # ↻ on the last answer: a new version each time
        click_branch(page, bots(page).nth(2), "regen")
        expect(bots(page).nth(2).locator(".dcu-branch > span")).to_have_text(f"{len(last) + 1}/{len(last) + 1}",
                                                                              timeout=SLOW_MS)
        last.append(answer_text(page, 2))
    # Edit the first question in place (the Chatbot's pencil): the chat continues from it.
    users(page).first.hover()
    page.locator("#chatbot button[aria-label=Edit]").first.click()
    box = page.locator("#chatbot textarea.edit-textarea")
    expect(box).to_have_value(QUESTIONS[0])  # the arrows and escaping are not in the edit box
    box.fill("Name a vegetable.")
    page.locator("#chatbot button[aria-label=Submit]").first.click()
    expect(users(page)).to_have_count(1, timeout=SLOW_MS)
    expect(users(page).first).to_contain_text("Name a vegetable.")
    expect(users(page).first.locator(".dcu-branch > span")).to_have_text("2/2")
    edited = answer_text(page, 0)
    return {"original": original, "last": last, "edited": edited}


def check_every_version(page: Page, seen: dict) -> None:
    """From the edited branch: ‹ back to the original, then walk the three versions of the last answer."""
    expect(users(page).first).to_contain_text("Name a vegetable.", timeout=SLOW_MS)
    assert answer_text(page, 0) == seen["edited"]
    click_branch(page, users(page).first, "prev", expect_users=3)
    expect(users(page).first.locator(".dcu-branch > span")).to_have_text("1/2")
    assert [answer_text(page, i) for i in range(2)] == seen["original"][:2]
    expect(bots(page).nth(2).locator(".dcu-branch > span")).to_have_text("3/3")  # the one shown last
    assert answer_text(page, 2) == seen["last"][2]
    for number in (1, 2, 3):  # › from 3/3 goes round to 1/3
        click_branch(page, bots(page).nth(2), "next")
        expect(bots(page).nth(2).locator(".dcu-branch > span")).to_have_text(f"{number}/3", timeout=SLOW_MS)
        assert answer_text(page, 2) == seen["last"][number - 1]
    click_branch(page, users(page).first, "next", expect_users=1)  # and back to the edited branch
    assert answer_text(page, 0) == seen["edited"]


def test_edit_and_regenerate_keep_every_version_across_restart_and_export(launch_app, tmp_path_factory,
                                                                          new_page, tmp_path):
    app = launch_app(data_dir=tmp_path_factory.mktemp("branches") / "data")
    page = new_page("en-US")
    open_app(page, app.url)
    set_slider(page, "Max new tokens", 16, accordion="Parameters")
    seen = build_branches(page)
    click_branch(page, users(page).first, "prev", expect_users=3)
    expect(bots(page).nth(2).locator(".dcu-branch > span")).to_have_text("3/3")
    shoot(page, "chat-branches")
    click_branch(page, users(page).first, "next", expect_users=1)

    page.goto("about:blank")
    app.stop()
    app.start()  # same data dir and port: the browser reopens the conversation it had
    open_app(page, app.url)
    check_every_version(page, seen)

    page.locator("#session-manage").get_by_text("This conversation").click()
    with page.expect_download() as download:
        page.locator("#session-export-json").click()
    exported = tmp_path / "conversation.json"
    download.value.save_as(exported)
    data = json.loads(exported.read_text(encoding="utf-8"))
    assert len(data["messages"]) == 6 + 2 + 2  # three turns, two more answers, the edited question and its answer
    with page.expect_file_chooser() as chooser:
        page.locator("#session-import").click()
    chooser.value.set_files(str(exported))
    expect(page.locator("#session-list label")).to_have_count(2, timeout=SLOW_MS)
    check_every_version(page, seen)  # the imported copy is open now: every version is there
