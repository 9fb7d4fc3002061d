"""Code tab handlers with a fake engine: streaming, early stop, check badge, download, errors."""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import pytest
from fakes import FakeEngine

from assist.code import CodeRequest
from webui.code_tab import build_code_tab, check_badge, code_event, run_code, stop_event

ANSWER = ["Here you go:\n", "```python\n", "def add(a, b):\n", "    return a + b\n", "```\n",
          "This is extra text after the block that should never be generated.\n"]


def _final(gen):
    items = list(gen)
    return items, items[-1]


def test_run_code_streams_then_checks_and_saves():
    engine = FakeEngine(deltas=ANSWER)
    views, last = _final(run_code(engine, CodeRequest("generate", "python", task="add two numbers")))
    codes = [v.code for v in views]
    assert codes[1] == "" and "def add(a, b):" in codes[2]  # partial code while streaming
    assert all(v.check is None for v in views[:-1]) and views[-2].checking
    assert last.done and last.code == "def add(a, b):\n    return a + b"
    assert last.check.status == "pass" and last.prose == "Here you go:"
    assert Path(last.file).name == "solution.py"
    assert Path(last.file).read_text() == last.code + "\n"
    call = engine.calls[0]
    assert call["messages"][-1]["content"].startswith("Write Python code for this task:\nadd two numbers")
    assert call["params"].temperature <= 0.3


def test_generation_stops_once_the_block_is_closed():
    engine = FakeEngine(deltas=ANSWER)
    _, last = _final(run_code(engine, CodeRequest("generate", "python", task="add")))
    assert engine.calls[0]["cancel"].is_set()
    assert ANSWER[-1] not in engine.sent  # the engine saw the cancel before the extra text
    assert last.stats.finish_reason == "stop"  # our early stop is not reported as a cancellation


def test_code_event_outputs_for_the_components():
    items, (code, badge, explanation, file, stats) = _final(
        code_event(FakeEngine(deltas=ANSWER), "add two numbers", "generate", "python"))
    assert code == "def add(a, b):\n    return a + b"
    assert "Syntax OK" in badge and "code-check-pass" in badge
    assert explanation == "Here you go:"
    assert file.endswith("solution.py") and Path(file).read_text().startswith("def add")
    assert "tok/s" in stats
    assert "Checking" in items[-2][1]


def test_syntax_error_badge_names_the_line():
    broken = ["```python\n", "def add(a, b)\n", "    return a + b\n", "```\n"]
    *_, (code, badge, _, file, _) = code_event(FakeEngine(deltas=broken), "add", "generate", "python")
    assert "Syntax error at line 1" in badge and "code-check-fail" in badge
    assert file.endswith(".py")  # still downloadable: the user may want to fix it by hand


@pytest.mark.parametrize("language,mode,deltas,name", [
    ("rust", "generate", ["```rust\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n```\n"], "solution.rs"),
    ("java", "generate", ["```java\npublic class Calc {\n}\n```\n"], "Calc.java"),
    ("sql", "generate", ["```sql\nSELECT 1;\n```\n"], "solution.sql"),
    ("python", "tests", ["```python\ndef test_add():\n    assert add(1, 2) == 3\n```\n"], "test_solution.py"),
    ("bash", "fix", ["```bash\necho $(( $1 + $2 ))\n```\nChanged - to +.\n\n"], "solution.sh"),
])
def test_download_has_the_language_extension(language, mode, deltas, name):
    *_, (code, _, _, file, _) = code_event(FakeEngine(deltas=deltas), "task", mode, language, code="x", error="")
    assert Path(file).name == name and Path(file).read_text() == code + "\n"


def test_fix_keeps_the_summary_as_explanation():
    deltas = ["```python\n", "def add(a, b):\n    return a + b\n", "```\n", "Changed `-` to `+`.\n", "\n"]
    *_, (code, _, explanation, _, _) = code_event(
        FakeEngine(deltas=deltas), "", "fix", "python", code="def add(a, b):\n    return a - b", error="wrong sum")
    assert code.endswith("a + b") and explanation == "Changed `-` to `+`."


def test_explain_mode_shows_the_text_and_checks_nothing():
    deltas = ["The function ", "adds `a` and `b`.\n", "```python\nadd(1, 2)\n```\n", "<end_of_turn>junk"]
    items, (code, badge, explanation, file, _) = _final(
        code_event(FakeEngine(deltas=deltas), "", "explain", "python", code="def add(a, b): return a + b"))
    assert code == "" and badge == "" and file is None
    assert explanation.startswith("The function adds") and "add(1, 2)" in explanation
    assert "junk" not in explanation
    assert items[0][2] == "The function"


def test_answer_without_code_is_not_checked():
    *_, (code, badge, explanation, file, _) = code_event(
        FakeEngine(deltas=["I cannot help with that request right now, sorry about it."]), "x", "generate", "go")
    assert code == "" and file is None and "Not checked" in badge
    assert explanation.startswith("I cannot help")


def test_engine_error_becomes_gr_error():
    with pytest.raises(gr.Error) as info:
        list(code_event(FakeEngine(deltas=ANSWER, fail_after=2), "add", "generate", "python"))
    assert info.value.message == "The device ran out of memory; try a shorter input."


def test_bad_request_becomes_gr_error():
    with pytest.raises(gr.Error) as info:
        list(code_event(FakeEngine(deltas=ANSWER), "   ", "generate", "python"))
    assert info.value.message == "Describe what the code should do."


def test_closing_the_handler_cancels_the_engine():
    engine = FakeEngine(deltas=ANSWER)
    gen = code_event(engine, "add", "generate", "python", session="s-close")
    next(gen)
    gen.close()  # what Gradio does when Stop cancels the event
    assert engine.calls[0]["cancel"].is_set()


def test_stop_button_sets_the_sessions_cancel_event():
    gate = threading.Event()
    engine = FakeEngine(deltas=ANSWER, gate=gate)
    gen = code_event(engine, "add", "generate", "python", session="s-stop")
    next(gen)  # first delta; the engine now waits at the gate
    stop_event("s-stop")
    stop_event("another-session")  # harmless
    gate.set()
    *_, (_, _, _, _, stats) = list(gen)
    assert engine.calls[0]["cancel"].is_set() and "cancelled" in stats


def test_check_badge_escapes_messages():
    from assist.code import CheckResult

    badge = check_badge(CheckResult("fail", "gcc -fsyntax-only", "error: expected '<' before <script>", 3, 1))
    assert "<script>" not in badge and "&lt;script&gt;" in badge and "line 3" in badge
    assert "timed out" in check_badge(CheckResult("timeout", "javac", "slow"))
    assert check_badge(None) == ""


def test_tab_wiring_and_public_api():
    with gr.Blocks() as demo:
        build_code_tab(FakeEngine(deltas=ANSWER))
    info = demo.get_api_info()
    assert list(info["named_endpoints"]) == ["/code"]  # Stop / mode / language events stay private
    params = info["named_endpoints"]["/code"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["task", "mode", "language", "code", "error", "model"]
    assert all(p["parameter_has_default"] for p in params[1:])
    assert [p["parameter_default"] for p in params[1:]] == ["generate", "python", "", "", "fake-model"]  # model: the default


def test_a_looping_model_is_stopped():
    looping = ["```python\n", "def prime(a):\n", "    if a == 2"] + [" or a == 3"] * 80
    engine = FakeEngine(deltas=looping)
    *_, (code, _, explanation, file, stats) = code_event(engine, "primes", "generate", "python")
    assert len(engine.sent) < 60 and engine.calls[0]["cancel"].is_set()
    assert "repetition" in stats and "Stopped early" in explanation
    assert code.startswith("def prime(a):") and file.endswith(".py")


def _tabs(blocks):
    return [b for b in blocks.blocks.values() if isinstance(b, gr.Tab)]


def test_fills_the_callers_tab_or_opens_its_own():
    with gr.Blocks() as inside:
        with gr.Tabs():
            with gr.Tab("Code", id="code"):
                build_code_tab(FakeEngine(deltas=ANSWER))
    assert len(_tabs(inside)) == 1
    with gr.Blocks() as alone:
        build_code_tab(FakeEngine(deltas=ANSWER))
    assert [t.label for t in _tabs(alone)] == ["Code"]
