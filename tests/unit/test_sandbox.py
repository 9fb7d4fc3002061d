"""The code sandbox: its settings, its errors, real runs under bubblewrap, POST /api/code/run and the
Code tab's Run / Run tests handlers. (The escape attempts: tests/integration/test_sandbox_escapes.py.)"""

from __future__ import annotations

import shutil

import gradio as gr
import pytest
from fakes import FakeEngine
from fastapi.testclient import TestClient

import app_settings
from assist import sandbox as sandbox_module
from assist.errors import SandboxError, SandboxOff, SandboxUnavailable
from assist.sandbox import RunResult, SandboxConfig, run_code, run_tests, sandbox_status
from webui.api import build_api
from webui.code_run import format_result, run_event, run_tests_event
from webui.code_tab import build_code_tab
from webui.services import Services

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="needs bubblewrap (apt-get install bubblewrap; make setup installs it)")
ON = SandboxConfig(enabled=True, cpu_s=5, memory_mb=512, max_processes=16, max_output_bytes=64 * 1024,
                   timeout_s=20)
ADD = "def add(a, b):\n    return a + b\n"


def test_flags_and_toml_keys_fill_the_sandbox_config(tmp_path):
    help_text = app_settings.parser().format_help()
    for flag in ("--sandbox", "--sandbox-cpu-s", "--sandbox-memory-mb", "--sandbox-max-processes",
                 "--sandbox-output-kb", "--sandbox-timeout-s"):
        assert flag in help_text
    default = app_settings.build_sandbox_config(app_settings.resolve_settings(app_settings.parser().parse_args([]),
                                                                              environ={}))
    assert default == SandboxConfig() and not default.enabled  # off unless the admin says so
    config_file = tmp_path / "app.toml"
    config_file.write_text("[sandbox]\nsandbox = true\nsandbox_output_kb = 8\nsandbox_timeout_s = 5.5\n")
    args = app_settings.parser().parse_args(["--config", str(config_file), "--sandbox-cpu-s", "3"])
    config = app_settings.build_sandbox_config(app_settings.resolve_settings(args, environ={
        "DCU_CHAT_SANDBOX_MAX_PROCESSES": "7"}))
    assert config.enabled and config.cpu_s == 3 and config.max_processes == 7
    assert config.max_output_bytes == 8 * 1024 and config.timeout_s == 5.5


def test_limits_must_be_positive():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="cpu_s must be positive"):
        SandboxConfig(enabled=True, cpu_s=0)


def test_off_unless_enabled_with_a_sentence_that_says_how():
    for config in (None, SandboxConfig()):
        with pytest.raises(SandboxOff, match="start the server with --sandbox") as err:
            run_code("python", "print(1)", None, config)
        assert err.value.http_status == 403
    assert sandbox_status(SandboxConfig()).startswith("off")


def test_missing_bubblewrap_is_said_plainly(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap") as err:
        run_code("python", "print(1)", None, ON)
    assert err.value.http_status == 503
    assert "bubblewrap (bwrap) is not installed" in sandbox_status(ON)


def test_unknown_language_and_oversized_input_are_refused():
    with pytest.raises(SandboxError, match="python and bash, not 'ruby'"):
        run_code("ruby", "puts 1", None, ON)
    with pytest.raises(SandboxError, match="stdin"):
        run_code("python", "pass", "x" * (2 * 1024 * 1024), ON)


@needs_bwrap
def test_python_reads_stdin_and_reports_exit_code():
    result = run_code("python", "import sys\nname = input()\nprint('hello', name)\nsys.exit(3)", "Ada\n", ON)
    assert result.stdout == "hello Ada\n" and result.exit_code == 3
    assert not result.timed_out and not result.truncated and result.duration_s > 0
    assert result.message == ""  # no limit was involved


@needs_bwrap
def test_bash_runs_with_stderr_kept_apart():
    result = run_code("bash", "echo out; echo err >&2; exit 0", None, ON)
    assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 0)


@needs_bwrap
def test_python_traceback_lands_in_stderr():
    result = run_code("python", "1 / 0", None, ON)
    assert result.exit_code == 1 and "ZeroDivisionError" in result.stderr


@needs_bwrap
def test_output_past_the_cap_is_truncated_and_the_program_stopped():
    small = SandboxConfig(enabled=True, max_output_bytes=1024, timeout_s=20)
    result = run_code("bash", "while true; do echo 0123456789; done", None, small)
    assert result.truncated and result.exit_code is None and not result.timed_out
    assert len(result.stdout.encode()) == 1024 and "output truncated" in result.message


@needs_bwrap
def test_wall_clock_limit_stops_a_sleeping_program():
    quick = SandboxConfig(enabled=True, timeout_s=1.5)
    result = run_code("bash", "echo started; sleep 30", None, quick)
    assert result.timed_out and result.exit_code is None and result.stdout == "started\n"
    assert 1.5 <= result.duration_s < 8 and "wall-clock limit of 1.5 s" in result.message


@needs_bwrap
def test_pytest_runs_generated_tests_with_the_code_beside_them():
    passing = run_tests(ADD, "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n", ON)
    assert passing.exit_code == 0 and "1 passed" in passing.stdout
    # Models name the module as they like; tests that import nothing of it see the code anyway.
    renamed = run_tests(ADD, "from my_module import add\n\ndef test_add():\n    assert add(1, 1) == 3\n", ON)
    assert renamed.exit_code == 1 and "1 failed" in renamed.stdout and "assert 2 == 3" in renamed.stdout
    bare = run_tests(ADD, "def test_add():\n    assert add(1, 2) == 3\n", ON)
    assert bare.exit_code == 0 and "1 passed" in bare.stdout
    # "app" is this server's own module, but not in the sandbox: the code is given that name too.
    named_like_ours = run_tests(ADD, "import app\n\ndef test_add():\n    assert app.add(2, 2) == 4\n", ON)
    assert named_like_ours.exit_code == 0 and "1 passed" in named_like_ours.stdout


# --- POST /api/code/run ------------------------------------------------------------------------


def client(sandbox: SandboxConfig | None) -> TestClient:
    return TestClient(build_api(Services(engine=FakeEngine(), sandbox=sandbox)))


def test_api_answers_403_with_the_reason_when_the_sandbox_is_off():
    response = client(None).post("/api/code/run", json={"language": "python", "code": "print(1)"})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == ("The code sandbox is off: start the server with --sandbox "
                                                   "to run code.")


def test_api_answers_503_when_bubblewrap_is_missing(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))
    response = client(ON).post("/api/code/run", json={"language": "bash", "code": "echo 1"})
    assert response.status_code == 503 and "apt-get install bubblewrap" in response.json()["error"]["message"]


def test_api_refuses_unknown_languages_and_tests_outside_python():
    api = client(ON)
    assert api.post("/api/code/run", json={"language": "cobol", "code": "x"}).status_code == 400
    response = api.post("/api/code/run", json={"language": "bash", "code": "x", "tests": "y"})
    assert response.status_code == 400 and "pytest" in response.json()["error"]["message"]
    assert api.post("/api/code/run", json={"language": "python"}).status_code == 422  # no code


@needs_bwrap
def test_api_runs_code_and_tests():
    api = client(ON)
    body = api.post("/api/code/run", json={"language": "python", "code": "print(input()[::-1])",
                                           "stdin": "abc"}).json()
    assert body["stdout"] == "cba\n" and body["exit_code"] == 0 and body["timed_out"] is False
    assert set(body) >= {"stdout", "stderr", "exit_code", "timed_out", "duration_s"}
    tests = api.post("/api/code/run", json={"language": "python", "code": ADD,
                                            "tests": "from solution import add\ndef test_add():\n"
                                                     "    assert add(1, 2) == 3\n"}).json()
    assert tests["exit_code"] == 0 and "1 passed" in tests["stdout"]


# --- the Code tab: Run code / Run tests --------------------------------------------------------


def test_format_result_is_plain_text_with_the_ending():
    shown = format_result(RunResult("<b>hi</b>\n", "warn\n", 0, False, 0.25))
    assert shown == "<b>hi</b>\n--- stderr ---\nwarn\n--- exit code 0 · 0.25 s ---"
    stopped = format_result(RunResult("", "", None, True, 1.0, message="Stopped: the wall-clock limit."), "zh")
    assert stopped == "--- 已停止 · 1.00 秒 · Stopped: the wall-clock limit. ---"


def test_run_handlers_explain_what_they_need():
    assert "Python and Bash" in run_event("rust", "fn main() {}", "", "", ON)
    assert "no code to run" in run_event("python", "", "  ", "", ON)
    assert "Write tests" in run_tests_event("generate", "python", ADD, "def test(): pass", ON)
    assert "Write tests" in run_tests_event("tests", "python", ADD, "", ON)
    with pytest.raises(gr.Error, match="--sandbox"):
        run_event("python", "print(1)", "", "", None)


@needs_bwrap
def test_run_prefers_the_result_code_and_run_tests_uses_both_boxes():
    assert run_event("python", "print('input box')", "print('result box')", "", ON).startswith("result box\n")
    assert run_event("bash", "echo input box", "", "", ON).startswith("input box\n")
    shown = run_tests_event("tests", "python", ADD, "from solution import add\ndef test_add():\n"
                                                    "    assert add(2, 2) == 4\n", ON)
    assert "1 passed" in shown and "exit code 0" in shown


def _buttons(sandbox) -> dict:
    with gr.Blocks() as blocks:
        build_code_tab(FakeEngine(), sandbox=sandbox)
    found = {}
    for block in blocks.blocks.values():
        elem_id = getattr(block, "elem_id", None)
        if elem_id in ("code-exec", "code-exec-tests", "code-exec-hint"):
            found[elem_id] = block
    return found


def test_buttons_are_disabled_with_a_hint_when_the_sandbox_is_off():
    off = _buttons(None)
    assert off["code-exec"].interactive is False and off["code-exec-tests"].interactive is False
    assert "code_exec_off" in str(off["code-exec-hint"].value)
    if shutil.which("bwrap"):
        on = _buttons(ON)
        assert on["code-exec"].interactive is True and on["code-exec-tests"].interactive is True
