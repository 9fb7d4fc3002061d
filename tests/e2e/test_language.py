"""The browser's language picks the UI's: a zh-CN browser sees Chinese labels, an en-US one English."""

from __future__ import annotations

import pytest
from e2e_ui import open_app, shoot, tab
from playwright.sync_api import expect

LABELS = {
    "zh-CN": {"tabs": ("对话", "文档问答", "代码"), "send": "发送", "stop": "停止", "new_chat": "新对话",
              "input": "消息", "parameters": "参数", "ask": "提问", "sources": "来源", "run": "运行"},
    "en-US": {"tabs": ("Chat", "Document Q&A", "Code"), "send": "Send", "stop": "Stop", "new_chat": "New chat",
              "input": "Message", "parameters": "Parameters", "ask": "Ask", "sources": "Sources", "run": "Run"},
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_labels_follow_the_browser_language(live_app, new_page, locale):
    labels = LABELS[locale]
    page = new_page(locale)
    open_app(page, live_app.url)
    for tab_id, label in zip(("chat", "docs", "code"), labels["tabs"], strict=True):
        expect(tab(page, tab_id)).to_have_text(label)
    expect(page.locator("#chat-send")).to_have_text(labels["send"])
    expect(page.locator("#chat-stop")).to_have_text(labels["stop"])
    expect(page.locator("#session-new")).to_contain_text(labels["new_chat"])
    expect(page.get_by_label(labels["input"], exact=True)).to_be_visible()
    expect(page.get_by_text(labels["parameters"], exact=True).first).to_be_visible()
    if locale == "zh-CN":
        shoot(page, "chat-zh")  # the README's Chinese screenshot shows an answer: test_answers.py
    tab(page, "docs").click()
    expect(page.locator("#docs-ask")).to_have_text(labels["ask"])
    expect(page.get_by_text(labels["sources"], exact=True).first).to_be_visible()
    shoot(page, f"docs-{locale}")
    tab(page, "code").click()
    expect(page.locator("#code-run")).to_have_text(labels["run"])
