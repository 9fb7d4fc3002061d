"""Document Q&A in a real browser: upload a PDF made here, ask, and see the right file and page cited."""

from __future__ import annotations

import re

from docs_support import make_pdf
from e2e_ui import SLOW_MS, last_answer, open_app, set_slider, shoot, tab, wait_answer_done
from playwright.sync_api import expect

NAME = "e2e-lighthouse.pdf"
PAGES = [  # one distinct fact per page
    "Bellrock lighthouse keeper manual. The Bellrock lighthouse was built in 1811 by the engineer Robert Stevenson.",
    "Fuel storage. The lamp of the Bellrock lighthouse burns colza oil, stored in twelve copper tanks.",
    "Visitors. Guided tours of the Bellrock lighthouse run every Saturday from May to September.",
]


def ask(page, question: str) -> None:
    page.locator("#docs-question textarea").fill(question)
    page.locator("#docs-ask").click()


def test_upload_pdf_ask_and_cite_file_and_page(live_app, new_page, tmp_path):
    pdf = tmp_path / NAME
    pdf.write_bytes(make_pdf(PAGES))
    page = new_page("en-US")
    open_app(page, live_app.url)
    tab(page, "docs").click()
    expect(page.locator("#docs-collection input")).to_have_value("default")

    page.locator("#docs-upload input[type=file]").set_input_files(str(pdf))
    report = page.locator("#docs-upload-report")
    expect(report).to_contain_text(re.compile(rf"{re.escape(NAME)} — (added · 3 page|already in this collection)"),
                                   timeout=SLOW_MS)
    expect(page.locator("#docs-table")).to_contain_text(NAME)

    set_slider(page, "Max answer tokens", 32)  # the slider's minimum: the CPU decodes a few tokens/s
    set_slider(page, "Passages to retrieve", 3)
    ask(page, "What oil does the lamp of the Bellrock lighthouse burn?")
    sources = page.locator("#docs-sources")
    expect(sources.locator("strong").first).to_have_text(f"[1] {NAME} p.2", timeout=SLOW_MS)
    expect(sources).to_contain_text("colza oil")
    answer = last_answer(page, "#docs-chatbot")
    stats = wait_answer_done(answer)
    assert f"[1] {NAME} p.2" in stats  # the citation line under the answer names file and page too
    said = answer.inner_text().replace(stats, "")  # the answer itself, without the lines under it
    assert "colza" in said.lower() and "[1]" in said, said  # it quotes the source and cites it by number
    shoot(page, "docs", asset="docs.png")

    # A question about another page cites that page; Stop once the sources are in (no need to wait).
    ask(page, "On which days do guided tours of the Bellrock lighthouse run?")
    expect(sources.locator("strong").first).to_have_text(f"[1] {NAME} p.3", timeout=SLOW_MS)
    expect(page.locator("#docs-chatbot [data-testid=bot]")).to_have_count(2)
    page.locator("#docs-stop").click()
    expect(last_answer(page, "#docs-chatbot").locator("sub")).to_contain_text(
        re.compile(r"stopped|tokens"), timeout=SLOW_MS)
