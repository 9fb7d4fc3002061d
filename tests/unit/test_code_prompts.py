"""Prompts, sampling defaults and the language table of the Code assistant."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assist.code import (
    LANGUAGES,
    MODES,
    CodeRequest,
    CodeRequestError,
    build_messages,
    check_code,
    default_params,
    extract_code,
    get_language,
    params_for,
    suggested_filename,
)
from assist.errors import AssistError


def _request(mode: str, language: str) -> CodeRequest:
    return CodeRequest(mode, language, task="sort a list of numbers", code="x = [3, 1, 2]", error="TypeError")


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_messages_for_every_mode_and_language(mode, language):
    lang = get_language(language)
    messages = build_messages(_request(mode, language))
    assert messages[0]["role"] == "system"
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]  # one-shot example first
    assert all(isinstance(m["content"], str) and m["content"] for m in messages)
    last = messages[-1]["content"]
    assert lang.name in last
    if mode != "explain":
        assert f"```{lang.fence}" in last  # asks for one block tagged with the language
    assert "x = [3, 1, 2]" in last


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_examples_are_valid_code_in_their_language(language):
    lang = get_language(language)
    answer = build_messages(CodeRequest("generate", language, task="t"))[2]["content"]
    got = extract_code(answer, lang)
    assert got.code == lang.example and got.language_tag == lang.fence
    assert lang.example.replace(" + ", " - ", 1) != lang.example  # the Fix example can break it
    if language in ("python", "sql"):  # in-process checkers, always available
        assert check_code(lang.example, lang).status == "pass"


def test_fix_prompt_carries_the_error_and_instruction():
    msg = build_messages(CodeRequest("fix", "python", task="keep it short", code="def f(:", error="SyntaxError"))
    last = msg[-1]["content"]
    assert "Error:\nSyntaxError" in last and "Instruction: keep it short" in last and "def f(:" in last
    assert "what you changed" in last


def test_code_containing_fences_gets_a_longer_fence():
    last = build_messages(CodeRequest("explain", "python", code='s = """```x```"""'))[-1]["content"]
    assert "````python\n" in last


def test_few_shot_can_be_turned_off():
    messages = build_messages(_request("generate", "go"), few_shot=False)
    assert [m["role"] for m in messages] == ["system", "user"]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_default_params(mode):
    params = default_params(mode)
    assert params.temperature <= 0.3
    assert "<end_of_turn>" in params.stop and "\nUser:" in params.stop
    if mode in ("fix", "refactor"):
        assert params.prompt_lookup_num_tokens == 10
        assert params.repetition_penalty == 1.0  # copying the input is the point
    else:
        assert params.prompt_lookup_num_tokens is None


def test_params_grow_with_the_code_to_echo():
    small = params_for(CodeRequest("fix", "python", code="x = 1"))
    big = params_for(CodeRequest("fix", "python", code="x = 1\n" * 300))
    huge = params_for(CodeRequest("refactor", "python", code="x = 1\n" * 100_000))
    assert small.max_new_tokens == default_params("fix").max_new_tokens
    assert small.max_new_tokens < big.max_new_tokens < huge.max_new_tokens == 2048
    assert params_for(CodeRequest("generate", "python", task="x")) == default_params("generate")


@pytest.mark.parametrize("kwargs,message", [
    ({"mode": "translate", "language": "python", "task": "x"}, "Unknown mode"),
    ({"mode": "generate", "language": "cobol", "task": "x"}, "Unknown language"),
    ({"mode": "generate", "language": "python", "task": "  "}, "Describe what the code should do"),
    ({"mode": "fix", "language": "python", "error": "boom"}, "Paste the code to fix"),
    ({"mode": "explain", "language": "python"}, "Paste the code to explain"),
    ({"mode": "tests", "language": "python"}, "Paste the code to test"),
])
def test_request_validation(kwargs, message):
    with pytest.raises(CodeRequestError, match=message) as info:
        CodeRequest(**kwargs)
    assert isinstance(info.value, AssistError) and info.value.http_status == 400


def test_request_accepts_labels_and_aliases():
    req = CodeRequest("Write tests", "C++", code="int f();")
    assert (req.mode, req.language) == ("tests", "cpp")
    assert CodeRequest("generate", "js", task="x").language == "javascript"
    assert CodeRequest("generate", "TypeScript", task="x").lang.extension == ".ts"


def test_language_table():
    assert {lang.name for lang in LANGUAGES.values()} >= {
        "Python", "JavaScript", "TypeScript", "Java", "C", "C++", "Go", "Rust", "SQL", "Bash"}
    import gradio as gr

    for lang in LANGUAGES.values():
        assert lang.extension.startswith(".")
        assert lang.gradio in gr.Code.languages  # None (no highlighter) is in the list too
    assert get_language("bash").gradio == "shell" and get_language("java").gradio is None


@pytest.mark.parametrize("code,language,mode,name", [
    ("x = 1", "python", "generate", "solution.py"),
    ("def test_x(): pass", "python", "tests", "test_solution.py"),
    ("test('x', () => {})", "javascript", "tests", "solution.test.js"),
    ("func TestX(t *testing.T) {}", "go", "tests", "solution_test.go"),
    ("fn main() {}", "rust", "fix", "solution.rs"),
    ("public final class Greeter {\n}", "java", "generate", "Greeter.java"),
    ("class Hidden {}", "java", "generate", "Main.java"),
    ("echo hi", "bash", "generate", "solution.sh"),
])
def test_suggested_filename(code, language, mode, name):
    assert suggested_filename(code, language, mode) == name


def test_engine_code_does_not_import_gradio():
    code = "import sys, assist.code; assert 'gradio' not in sys.modules and 'fastapi' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
