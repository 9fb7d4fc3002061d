"""Run in the Code tab, in a real browser, on a server started with --sandbox: Python with stdin and
Bash show their output, stderr and exit code as plain text (markup stays text)."""

from __future__ import annotations

import re
import shutil

import pytest
from e2e_ui import open_app, shoot, tab
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="needs bubblewrap (apt-get install bubblewrap; make setup installs it)")

RUN_TIMEOUT_MS = 60_000  # a program of a few lines; the sandbox starts in well under a second


@pytest.fixture(scope="module")
def sandbox_app(launch_app):
    return launch_app("--sandbox", "--sandbox-timeout-s", "20")


def _type_code(page: Page, code: str) -> None:
    editor = page.locator("#code-input .cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)  # as pasted: no auto-indent between the lines


def test_run_in_the_code_tab_shows_output(sandbox_app, new_page):
    page = new_page("en-US")
    open_app(page, sandbox_app.url)
    tab(page, "code").click()
    run = page.locator("#code-exec")
    expect(run).to_be_enabled()
    expect(page.locator("#code-exec-hint")).to_contain_text("sandbox")

    _type_code(page, "import sys\nprint('hello', input())\nprint('<b>not bold</b>')\n"
                     "print('careful', file=sys.stderr)\nsys.exit(3)\n")
    page.locator("#code-exec-stdin textarea").fill("Ada")
    run.click()
    output = page.locator("#code-exec-output textarea")
    expect(output).to_have_value(re.compile("exit code 3"), timeout=RUN_TIMEOUT_MS)
    value = output.input_value()
    assert value.startswith("hello Ada\n<b>not bold</b>\n--- stderr ---\ncareful\n--- exit code 3 · ")
    assert page.locator("#code-exec-panel b").count() == 0  # the program's markup is text, never HTML
    shoot(page, "code-run")

    # Bash: choose it in Language, run again; the output box shows the new run only.
    language = page.get_by_label("Language", exact=True)
    language.click()
    language.fill("Bash")
    page.get_by_role("option", name="Bash", exact=True).click()
    _type_code(page, "echo \"from bash on $(uname -s)\"\nexit 0\n")
    page.locator("#code-exec-stdin textarea").fill("")
    run.click()
    expect(output).to_have_value(re.compile("from bash on Linux"), timeout=RUN_TIMEOUT_MS)
    assert output.input_value().startswith("from bash on Linux\n--- exit code 0 · ")
