"""Chat in a real browser: the answer streams, Stop ends it quickly and marks it, the input works again."""

from __future__ import annotations

import time

from e2e_ui import SLOW_MS, completion_tokens, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import expect

STOP_WITHIN_MS = 30_000  # one decoding step plus the final save; a few seconds even on a busy CPU
ANSWER_LONGER_THAN = """n => {
    const answer = document.querySelector('#chatbot [data-testid=bot]');
    return answer !== null && answer.innerText.trim().length > n;
}"""


def test_answer_streams_and_stop_ends_it(live_app, new_page):
    page = new_page("en-US")
    open_app(page, live_app.url)
    set_slider(page, "Max new tokens", 4096, accordion="Parameters")
    # Greedy, a request the default base model answers at length (it writes table lines until
    # max tokens): a story now ends after its first paragraph, by the base-model answer rules.
    set_slider(page, "Temperature (0 = greedy)", 0)
    send_chat(page, "Write the multiplication table from 1 x 1 to 12 x 12, one per line.")

    answer = page.locator("#chatbot [data-testid=bot]").nth(0)  # a fresh browser context starts empty
    expect(answer).to_be_visible(timeout=SLOW_MS)
    # Streaming: the bubble shows some text, then more text, while the answer is still running.
    # (The element is looked up on every poll: the chatbot may re-render it as it grows.)
    page.wait_for_function(ANSWER_LONGER_THAN, arg=0, timeout=SLOW_MS)
    first = len(answer.inner_text().strip())
    page.wait_for_function(ANSWER_LONGER_THAN, arg=first, timeout=SLOW_MS)
    assert answer.locator("sub").count() == 0, f"the answer ended on its own before Stop: {answer.inner_text()!r}"

    started = time.monotonic()
    page.locator("#chat-stop").click()
    expect(answer.locator("sub")).to_contain_text("stopped", timeout=STOP_WITHIN_MS)
    print(f"Stop -> 'stopped' marker in {time.monotonic() - started:.1f} s")
    stopped_text = answer.inner_text()
    assert len(stopped_text) >= first

    # The input is usable again: a short follow-up gets its own complete answer.
    box = page.locator("#chat-input textarea")
    expect(box).to_be_editable()
    expect(box).to_have_value("")
    set_slider(page, "Max new tokens", 16, accordion="Parameters")
    send_chat(page, "Thank you! Now say goodbye.")
    follow_up = page.locator("#chatbot [data-testid=bot]").nth(1)
    expect(follow_up).to_be_visible(timeout=SLOW_MS)
    stats = wait_answer_done(follow_up)
    assert "stopped" not in stats
    assert completion_tokens(stats) <= 16  # the slider reached the server
    assert answer.inner_text() == stopped_text  # the stopped answer stays as it was
    # The conversation was saved and is the one open in the sidebar (titles are cut to fit).
    expect(page.locator("#session-list label:has(input:checked)")).to_contain_text("Write the multiplication table")
    shoot(page, "chat", asset="chat.png")
