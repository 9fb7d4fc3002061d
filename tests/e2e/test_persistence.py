"""Never lose a conversation: it survives a page reload and a server restart on the same data dir.

A dedicated app instance (its own data dir) is stopped and started again on the same port, so
the same browser (same origin, same localStorage) comes back to the conversation it had open;
a second, fresh browser finds it in the sidebar and opens it.
"""

from __future__ import annotations

import time

from e2e_ui import SLOW_MS, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import expect

MESSAGE = "Remember the code word PELICAN-42 and repeat it."


def expect_restored(page, answer_text: str) -> None:
    """The conversation is open again: the message, the answer with its stats line, selected in the sidebar."""
    chat = page.locator("#chatbot")
    expect(chat.locator("[data-testid=user]")).to_have_count(1, timeout=SLOW_MS)
    expect(chat.locator("[data-testid=user]")).to_contain_text(MESSAGE)
    answer = chat.locator("[data-testid=bot]")
    expect(answer).to_have_count(1)
    wait_answer_done(answer)  # the stats line was saved with the answer
    assert answer.inner_text() == answer_text
    expect(page.locator("#session-list label:has(input:checked)")).to_contain_text("Remember the code word")


def test_conversation_survives_reload_and_server_restart(launch_app, tmp_path_factory, new_page):
    clock = time.monotonic()

    def phase(name: str) -> None:  # where the time goes, in the test's output
        nonlocal clock
        print(f"[{name}: {time.monotonic() - clock:.1f} s]")
        clock = time.monotonic()

    app = launch_app(data_dir=tmp_path_factory.mktemp("persist") / "data")
    phase("start")
    page = new_page("en-US")
    open_app(page, app.url)
    set_slider(page, "Max new tokens", 16, accordion="Parameters")
    send_chat(page, MESSAGE)
    answer = page.locator("#chatbot [data-testid=bot]").first
    wait_answer_done(answer)
    answer_text = answer.inner_text()
    expect(page.locator("#session-list label:has(input:checked)")).to_contain_text("Remember the code word")
    phase("first answer")

    page.reload()
    open_app(page, app.url)
    expect_restored(page, answer_text)
    phase("reload")

    page.goto("about:blank")  # the tab leaves first, so the server need not wait for its connections
    app.stop()
    phase("stop")
    app.start()  # same port and data dir: the same browser origin comes back
    phase("restart")
    open_app(page, app.url)
    expect_restored(page, answer_text)
    shoot(page, "chat-restored")

    fresh = new_page("en-US")  # no localStorage: nothing is open, but the sidebar lists it
    open_app(fresh, app.url)
    entry = fresh.locator("#session-list label", has_text="Remember the code word")
    expect(entry).to_have_count(1)
    expect(fresh.locator("#chatbot [data-testid=user]")).to_have_count(0)
    entry.click()
    expect_restored(fresh, answer_text)
    phase("restored after restart")
