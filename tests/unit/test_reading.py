"""Reading answers: which ``$`` become formulas, where formulas render, and the dark-mode switch."""

from __future__ import annotations

import pytest
from docs_support import make_services
from fakes import FakeEngine

from webui.adapters import display_history
from webui.docs_tab import to_display
from webui.i18n import text
from webui.reading import HEAD, LATEX_DELIMITERS, inline_math

MONEY = [
    "It costs $5 and $10.",
    "Between $5-$10 a month, or $100/$200 a year.",
    "价格是$5和$10。",
    "US$5 or US$6",
    "Tickets are $5 (or $4 for students).",
    "echo $HOME/$USER",
    "Use \\$5 and \\$6.",
]


@pytest.mark.parametrize("said", MONEY)
def test_dollar_amounts_and_variables_stay_text(said):
    assert inline_math(said) == said


def test_inline_formulas_in_dollars_become_the_inline_delimiter():
    assert inline_math("Let $x^2+y^2=r^2$ be a circle.") == "Let \\(x^2+y^2=r^2\\) be a circle."
    assert inline_math("设$x$为变量，$a<b$。") == "设\\(x\\)为变量，\\(a<b\\)。"
    shown = inline_math("Area $\\pi r^2$ costs $5 and $10.")
    assert shown.startswith("Area \\(\\pi r^2\\)") and shown.endswith("costs $5 and $10.")


def test_display_math_and_code_are_left_as_written():
    said = "$$E=mc^2$$ and `$a$` and\n```bash\necho $x$y $z$\n```\nthen $b$"
    assert inline_math(said) == "$$E=mc^2$$ and `$a$` and\n```bash\necho $x$y $z$\n```\nthen \\(b\\)"


def test_the_browser_renders_dollar_pairs_brackets_and_parens_but_never_one_dollar():
    lefts = {d["left"]: d["display"] for d in LATEX_DELIMITERS}
    assert lefts == {"$$": True, "\\[": True, "\\(": False}


def test_answers_show_formulas_and_questions_are_shown_as_typed():
    shown = display_history([{"role": "user", "content": "What is $x$ if it costs $5?"},
                             {"role": "assistant", "content": "<think>so $y$</think>Here $x=2$ <b>"}])
    assert shown[0]["content"] == "What is $x$ if it costs $5?"  # the edit box gets it back unchanged
    assert shown[1]["content"] == "so \\(y\\)"
    assert shown[2]["content"] == "Here \\(x=2\\) &lt;b>"  # formulas, and HTML still shown as text
    docs = to_display([{"role": "user", "content": "$a$?"}, {"role": "assistant", "content": "It is $a=1$ [1]."}])
    assert docs[0]["content"] == "$a$?" and docs[1]["content"] == "It is \\(a=1\\) [1]."


@pytest.fixture()
def blocks(tmp_path):
    from webui.app import build_app

    services = make_services(tmp_path / "data", FakeEngine("ok"))
    yield build_app(services)
    services.store.close()


def test_chat_docs_and_code_render_formulas_with_the_same_delimiters(blocks):
    config = blocks.get_config_file()["components"]
    by_id = {c["props"].get("elem_id"): c["props"] for c in config}
    for elem in ("chatbot", "docs-chatbot", "code-explanation"):
        assert by_id[elem]["latex_delimiters"] == LATEX_DELIMITERS, elem


def test_the_header_has_a_dark_mode_switch_in_english_and_chinese(blocks):
    config = blocks.get_config_file()
    switch = next(c for c in config["components"] if c["props"].get("elem_id") == "theme-switch")
    assert switch["type"] == "checkbox"
    assert text("dark_mode", "en") == "Dark mode" and text("dark_mode", "zh") == "深色模式"
    # Both events run only in the page: reading and choosing the theme never waits for the server.
    wired = [d for d in config["dependencies"] if any(t[0] == switch["id"] for t in d["targets"])
             or switch["id"] in d["outputs"]]
    assert len(wired) == 2 and all(d["js"] and d["backend_fn"] is False for d in wired)
    assert "localStorage" in HEAD and "__theme" in HEAD and "prefers-color-scheme" in HEAD
