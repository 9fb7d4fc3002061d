"""The cited page on screen, in a real browser: upload a PDF and a Markdown file, ask, click the
citation under the answer and see the page drawn with the passage marked; click a text file's
source and see its text with the passage in a <mark>."""

from __future__ import annotations

import re

from docs_support import make_pdf
from e2e_ui import SLOW_MS, last_answer, open_app, set_slider, shoot, tab
from playwright.sync_api import expect

PDF = "e2e-observatory.pdf"
NOTES = "e2e-greenhouse-notes.md"
PAGES = [
    "Kelvin Hill observatory guide. The observatory opened in 1902 and sits on the top of Kelvin Hill.",
    "Telescope. The main telescope of the Kelvin Hill observatory is a refractor with a lens of 61 centimetres.",
]
NOTES_TEXT = ("# Greenhouse notes\n\nWater the seedlings every morning.\n\n## Heating\n\n"
              "The greenhouse heater switches on when the air falls below 7 degrees Celsius.\n\n"
              "## Visitors\n\nThe greenhouse is closed to visitors on Mondays.\n")


def ask(page, question: str) -> None:
    page.locator("#docs-question textarea").fill(question)
    page.locator("#docs-ask").click()


def test_click_a_citation_and_see_the_page_with_the_passage_marked(live_app, new_page, tmp_path):
    (tmp_path / PDF).write_bytes(make_pdf(PAGES))
    (tmp_path / NOTES).write_text(NOTES_TEXT, encoding="utf-8")
    page = new_page("en-US")
    open_app(page, live_app.url)
    tab(page, "docs").click()
    page.locator("#docs-upload input[type=file]").set_input_files([str(tmp_path / PDF), str(tmp_path / NOTES)])
    report = page.locator("#docs-upload-report")
    for name in (PDF, NOTES):
        expect(report).to_contain_text(re.compile(rf"{re.escape(name)} — (added|already in this collection)"),
                                       timeout=SLOW_MS)
    set_slider(page, "Max answer tokens", 32)  # the slider's minimum: the CPU decodes a few tokens/s
    set_slider(page, "Passages to retrieve", 2)

    ask(page, "How large is the lens of the main telescope of the Kelvin Hill observatory?")
    sources = page.locator("#docs-sources")
    expect(sources.locator("strong").first).to_have_text(f"[1] {PDF} p.2", timeout=SLOW_MS)
    page.locator("#docs-stop").click()  # the citation is what this test is about, not the answer
    answer = last_answer(page, "#docs-chatbot")
    expect(answer.locator("sub")).to_contain_text(re.compile(r"stopped|tokens"), timeout=SLOW_MS)
    citation = answer.locator("sub a", has_text=f"[1] {PDF} p.2")
    expect(citation).to_be_visible()

    citation.click()
    panel = page.locator("#dcu-preview")
    expect(panel).to_be_visible()
    expect(panel.locator(".dcu-preview-title")).to_have_text(f"[1] {PDF} p.2")
    image = panel.locator("img.dcu-preview-page")
    expect(image).to_be_visible()
    page.wait_for_function("() => { const img = document.querySelector('#dcu-preview img.dcu-preview-page');"
                           " return img && img.complete && img.naturalWidth > 0; }", timeout=SLOW_MS)
    assert image.evaluate("img => img.naturalWidth") == 1000
    # The image is the page the server drew with the passage marked: yellow pixels near its top.
    yellow = image.evaluate("""img => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let count = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i] > 200 && data[i + 1] > 160 && data[i + 2] < 200 && data[i] - data[i + 2] > 60) count++;
        }
        return count;
    }""")
    assert yellow > 2000, yellow
    shoot(page, "docs-preview", asset="docs-preview.png")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    # A text file: its source opens its text, the passage marked, the text around it shown too.
    ask(page, "Below which temperature does the greenhouse heater switch on?")
    expect(page.locator("#docs-chatbot [data-testid=bot]")).to_have_count(2, timeout=SLOW_MS)
    first = sources.locator("a").first
    expect(first).to_have_text(f"[1] {NOTES}", timeout=SLOW_MS)
    page.locator("#docs-stop").click()
    expect(last_answer(page, "#docs-chatbot").locator("sub")).to_contain_text(
        re.compile(r"stopped|tokens"), timeout=SLOW_MS)
    first.click()
    expect(panel).to_be_visible()
    expect(panel.locator("mark")).to_contain_text("below 7 degrees Celsius")
    expect(panel.locator(".dcu-preview-text")).to_contain_text("closed to visitors on Mondays")
    shoot(page, "docs-preview-text")
    panel.locator(".dcu-preview-close").click()
    expect(panel).to_be_hidden()


def test_click_a_file_citation_in_chat_and_see_that_page(live_app, new_page, tmp_path):
    from e2e_ui import send_chat, wait_answer_done

    name = "e2e-ferry-timetable.pdf"
    (tmp_path / name).write_bytes(make_pdf([
        "Ferry timetable. The first ferry to Brightwater Island leaves the harbour at 6:40 every morning.",
        "Fares. A return ticket to Brightwater Island costs 14 euros; children under six travel free.",
    ]))
    page = new_page("en-US")
    open_app(page, live_app.url)
    set_slider(page, "Temperature (0 = greedy)", 0, accordion="Parameters")
    set_slider(page, "Max new tokens", 48)
    with page.expect_file_chooser() as chooser:
        page.locator("#chat-attach").click()
    chooser.value.set_files(str(tmp_path / name))
    expect(page.locator("#chat-files-waiting")).to_contain_text(name, timeout=SLOW_MS)
    send_chat(page, "How much does a return ticket to Brightwater Island cost?")
    answer = last_answer(page)
    stats = wait_answer_done(answer)
    assert f"{name} p.2" in stats, stats
    citation = answer.locator("a", has_text=f"{name} p.2")
    citation.click()
    panel = page.locator("#dcu-preview")
    expect(panel).to_be_visible()
    expect(panel.locator(".dcu-preview-title")).to_contain_text(f"{name} p.2")
    expect(panel.locator(".dcu-preview-text")).to_contain_text("A return ticket to Brightwater Island costs 14 euros")
    expect(panel.locator(".dcu-preview-text")).not_to_contain_text("6:40")  # that page only
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
