"""Search in messages, in a real browser with the real default model: a word that is only in an
answer (English, then Chinese) finds the conversation, and clicking the hit opens it at that answer."""

from __future__ import annotations

import re

from e2e_ui import SLOW_MS, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import Page, expect


def answer_of(page: Page, question: str) -> str:
    """Start a new chat, ask, and return the answer's text (its first paragraph)."""
    page.locator("#session-new").click()
    expect(page.locator("#chatbot [data-testid=user]")).to_have_count(0)
    send_chat(page, question)
    answer = page.locator("#chatbot [data-testid=bot]").first
    wait_answer_done(answer)
    # the list is refreshed after the answer: wait for it, so that refresh cannot land after a search
    expect(page.locator("#session-list label", has_text=question[:20])).to_have_count(1, timeout=SLOW_MS)
    return answer.locator("p").first.inner_text()


def english_word(answer: str, question: str) -> str:
    words = [w for w in re.findall(r"[A-Za-z]{4,}", answer) if w.lower() not in question.lower()]
    assert words, f"no English word of the answer to search for: {answer!r}"
    return max(words, key=len)


def chinese_word(answer: str, question: str) -> str:
    for size in (3, 2):
        for run in re.findall(r"[\u4e00-\u9fff]+", answer):
            for start in range(len(run) - size + 1):
                if run[start:start + size] not in question:
                    return run[start:start + size]
    raise AssertionError(f"no Chinese word of the answer to search for: {answer!r}")


def find_and_open(page: Page, word: str, title: str) -> None:
    page.locator("#session-new").click()  # the conversation is not the open one any more
    # the new chat's list lands before the search's, or it would replace the hits with every title
    expect(page.locator("#chatbot [data-testid=user]")).to_have_count(0, timeout=SLOW_MS)
    box = page.locator("#session-search input, #session-search textarea").first
    box.fill(word)
    hit = page.locator("#session-list label", has_text=title[:20])
    expect(hit).to_have_count(1, timeout=SLOW_MS)
    expect(hit).to_contain_text(word)  # the snippet shows where
    hit.click()
    marked = page.locator("#chatbot [data-testid=bot]", has=page.locator(".dcu-hit"))
    expect(marked).to_have_count(1, timeout=SLOW_MS)
    expect(marked).to_contain_text(word)
    expect(marked.locator(".dcu-hit")).to_be_in_viewport()
    box.fill("")


def test_a_word_only_in_an_answer_finds_the_conversation_in_english_and_chinese(live_app, new_page):
    page = new_page("en-US")
    open_app(page, live_app.url)
    set_slider(page, "Max new tokens", 32, accordion="Parameters")
    english_q = "Which planet is known as the Red Planet? Answer in one short sentence."
    english = answer_of(page, english_q)
    chinese_q = "中国的首都是哪座城市？请用一句话回答。"
    chinese = answer_of(page, chinese_q)
    find_and_open(page, english_word(english, english_q), english_q)
    find_and_open(page, chinese_word(chinese, chinese_q), chinese_q)
    shoot(page, "chat-search")
