"""Files in a Chat message in a real browser: attach a PDF made here, ask about one page, and the answer
states the fact and cites that page; the file's chip and the citation are still there after a reload."""

from __future__ import annotations

import re

from docs_support import make_pdf
from e2e_ui import SLOW_MS, last_answer, open_app, send_chat, set_slider, shoot, wait_answer_done
from playwright.sync_api import expect

NAME = "e2e-harbour.pdf"
PAGES = [  # one distinct fact per page; the question is about page 2
    "Harbour museum visitor guide. The harbour museum was founded in 1902 by the town council.",
    "Exhibits. The largest exhibit of the harbour museum is a brass diving helmet that weighs 18 kilograms.",
    "Visitors. Guided tours of the harbour museum run every Sunday from April to October.",
]
QUESTION = "How much does the brass diving helmet of the harbour museum weigh?"


def test_attach_a_pdf_and_get_an_answer_citing_its_page(live_app, new_page, tmp_path):
    pdf = tmp_path / NAME
    pdf.write_bytes(make_pdf(PAGES))
    page = new_page("en-US")
    open_app(page, live_app.url)
    set_slider(page, "Temperature (0 = greedy)", 0, accordion="Parameters")
    set_slider(page, "Max new tokens", 64)

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this file was cut short")
    with page.expect_file_chooser() as chooser:
        page.locator("#chat-attach").click()
    chooser.value.set_files([str(broken), str(pdf)])
    waiting = page.locator("#chat-files-waiting")
    expect(waiting).to_contain_text(NAME, timeout=SLOW_MS)
    expect(waiting).to_contain_text("3 p.")
    expect(page.get_by_text(re.compile(r"broken\.pdf could not be read as a PDF"))).to_be_visible()  # says why
    expect(waiting).not_to_contain_text("broken.pdf")  # and the good file stays

    send_chat(page, QUESTION)
    question = page.locator("#chatbot [data-testid=user]").last
    expect(question.locator(".dcu-file")).to_contain_text(NAME)  # the chip on the message
    expect(waiting).not_to_contain_text(NAME)  # sent: nothing waits any more
    answer = last_answer(page)
    stats = wait_answer_done(answer)
    assert f"{NAME} p.2" in stats, stats  # the line under the answer names the file and the page
    said = answer.inner_text().replace(stats, "")
    assert "18" in said, said  # the fact stated on that page
    shoot(page, "chat-files", asset="chat-files.png")

    page.reload()  # saved with the conversation: the chip and the citation come back
    open_app(page, live_app.url)
    expect(page.locator("#chatbot [data-testid=user] .dcu-file")).to_contain_text(NAME, timeout=SLOW_MS)
    assert f"{NAME} p.2" in wait_answer_done(last_answer(page))
