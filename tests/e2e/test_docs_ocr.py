"""Scanned documents in a real browser: a 3-page scanned PDF (English and Chinese pages, no text
layer) and a PNG go through OCR in background jobs with a progress bar each, and answers cite
them by page. Needs Debian's tesseract-ocr with chi_sim data (``make setup``)."""

from __future__ import annotations

import re
import shutil

import pytest
from e2e_ui import SLOW_MS, last_answer, open_app, set_slider, shoot, tab
from playwright.sync_api import expect

from bench.scans import cjk_font, image_bytes, scan_image, scanned_pdf

SCAN = "e2e-scanned-ferry.pdf"
PNG = "e2e-boiler-note.png"
PAGES = [
    "Harbour ferry handbook. The ferry Saint Brendan was launched in 1987 and carries 240 passengers.",
    "渡轮时刻表。圣布伦丹号渡轮每天早上七点从北码头出发，末班船晚上十点返回。",
    "Safety. Life jackets for every passenger are stored in the orange lockers on the upper deck.",
]
NOTE = "Boiler room note. The boiler pressure must stay below 2.5 bar; call the duty engineer above it."

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None or cjk_font() is None,
                                reason="needs tesseract-ocr (+ chi_sim) and fonts-wqy-microhei: make setup test-deps")


def ask(page, question: str) -> None:
    page.locator("#docs-question textarea").fill(question)
    page.locator("#docs-ask").click()


def test_scanned_pdf_and_png_are_ocrd_and_cited_by_page(live_app, new_page, tmp_path):
    (tmp_path / SCAN).write_bytes(scanned_pdf(PAGES, cjk_font()))
    (tmp_path / PNG).write_bytes(image_bytes(scan_image(NOTE)))
    page = new_page("en-US")
    open_app(page, live_app.url)
    tab(page, "docs").click()
    page.locator("#docs-upload input[type=file]").set_input_files([str(tmp_path / SCAN), str(tmp_path / PNG)])
    report = page.locator("#docs-upload-report")
    expect(report.locator("progress").first).to_be_visible()  # a bar per file while OCR runs
    shoot(page, "docs-ocr-progress")

    # Leave and come back (a reload): the jobs are shown again (running, or just finished).
    page.reload()
    tab(page, "docs").click()
    expect(report).to_contain_text(re.compile(rf"{re.escape(SCAN)} — (added · 3 page|already in this collection)"),
                                   timeout=SLOW_MS * 2)
    expect(report).to_contain_text(re.compile(rf"{re.escape(PNG)} — (added · 1 page|already in this collection)"),
                                   timeout=SLOW_MS)
    expect(page.locator("#docs-table")).to_contain_text(SCAN)

    set_slider(page, "Max answer tokens", 32)  # the slider's minimum: the CPU decodes a few tokens/s
    set_slider(page, "Passages to retrieve", 3)
    sources = page.locator("#docs-sources")
    for n, (question, cited, snippet) in enumerate([
        ("Where are the life jackets stored on the ferry?", f"[1] {SCAN} p.3", "orange lockers"),
        ("渡轮每天几点从北码头出发？", f"[1] {SCAN} p.2", "北码头"),
        ("What is the maximum boiler pressure?", f"[1] {PNG} p.1", "2.5 bar"),
    ], start=1):
        ask(page, question)
        expect(sources.locator("strong").first).to_have_text(cited, timeout=SLOW_MS)
        expect(sources).to_contain_text(snippet)
        page.locator("#docs-stop").click()  # the sources are what this test is about
        expect(page.locator("#docs-chatbot [data-testid=bot]")).to_have_count(n)
        expect(last_answer(page, "#docs-chatbot").locator("sub")).to_contain_text(
            re.compile(r"stopped|tokens"), timeout=SLOW_MS)
    shoot(page, "docs-ocr")
