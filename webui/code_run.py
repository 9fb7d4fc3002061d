"""The Code tab's Run and Run tests: the code (or the tests) in the code sandbox, output as text.

**Run** runs the Result box's code (or, while it is empty, the code box's) as Python or Bash;
**Run tests** runs pytest on the tests that "Write tests" put in the Result box with the code box's
code beside them. The handlers are plain functions (``run_event``, ``run_tests_event``); domain
errors (sandbox off, bubblewrap missing, busy) become ``gr.Error``. Output is plain text in a
text box, never HTML. Without ``--sandbox`` the buttons are disabled and a hint says why.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from assist.sandbox import LANGUAGES, RunResult, SandboxConfig, run_code, run_tests, sandbox_status
from webui.adapters import is_domain_error, ui_error
from webui.i18n import language_of, register, t, text

__all__ = ["format_result", "run_event", "run_tests_event", "build_run_controls"]

register(
    en={"code_exec": "Run code", "code_exec_tests": "Run tests", "code_exec_output": "Program output",
        "code_exec_stdin": "Input (stdin, optional)",
        "code_exec_off": "Running code is off on this server; an admin can turn it on with `--sandbox`.",
        "code_exec_broken": "Running code is on, but the sandbox cannot work here: {why}",
        "code_exec_on": "Run code and Run tests use a sandbox: no network, no files of the server, "
                        "time and memory limits.",
        "code_exec_language": "Run works for Python and Bash: choose one of them in Language.",
        "code_exec_nothing": "There is no code to run: write or generate some first.",
        "code_exec_need_tests": "Run tests needs tests: choose \"Write tests\", put the code to test in the code "
                                "box and click Run; then Run tests runs the tests with that code beside them.",
        "code_exec_summary": "exit code {code} · {seconds} s", "code_exec_stopped": "stopped · {seconds} s"},
    zh={"code_exec": "运行代码", "code_exec_tests": "运行测试", "code_exec_output": "程序输出",
        "code_exec_stdin": "输入（stdin，可选）",
        "code_exec_off": "此服务器未开启代码运行；管理员可用 `--sandbox` 开启。",
        "code_exec_broken": "代码运行已开启，但沙箱无法在此工作：{why}",
        "code_exec_on": "运行代码和运行测试在沙箱中进行：无网络、无法访问服务器文件，有时间和内存限制。",
        "code_exec_language": "运行仅支持 Python 和 Bash：请在“语言”中选择其一。",
        "code_exec_nothing": "没有可运行的代码：请先编写或生成代码。",
        "code_exec_need_tests": "运行测试需要测试代码：选择“编写测试”，把要测试的代码放入代码框并点击运行；"
                                "之后“运行测试”会在该代码旁运行这些测试。",
        "code_exec_summary": "退出码 {code} · {seconds} 秒", "code_exec_stopped": "已停止 · {seconds} 秒"},
)


def format_result(result: RunResult, lang: str = "en") -> str:
    """stdout, then stderr under a marker, then one line on how it ended (plain text)."""
    parts = [result.stdout.rstrip("\n")] if result.stdout else []
    if result.stderr:
        parts.append("--- stderr ---\n" + result.stderr.rstrip("\n"))
    seconds = f"{result.duration_s:.2f}"
    ending = (text("code_exec_stopped", lang, seconds=seconds) if result.exit_code is None
              else text("code_exec_summary", lang, code=result.exit_code, seconds=seconds))
    parts.append(f"--- {ending}" + (f" · {result.message}" if result.message else "") + " ---")
    return "\n".join(parts)


def _guarded(call, lang: str) -> str:
    try:
        return format_result(call(), lang)
    except Exception as err:
        if is_domain_error(err):
            raise ui_error(err) from err
        raise


def run_event(language: str, code: str, result_code: str, stdin: str, sandbox: SandboxConfig | None,
              lang: str = "en") -> str:
    """Run the Result box's code, or the code box's while the Result is empty."""
    if language not in LANGUAGES:
        return text("code_exec_language", lang)
    source = result_code if (result_code or "").strip() else code
    if not (source or "").strip():
        return text("code_exec_nothing", lang)
    return _guarded(lambda: run_code(language, source, stdin or None, sandbox), lang)


def run_tests_event(mode: str, language: str, code: str, tests: str, sandbox: SandboxConfig | None,
                    lang: str = "en") -> str:
    """pytest on the generated tests (the Result box) with the code box's code beside them."""
    if language != "python" or mode != "tests" or not (tests or "").strip() or not (code or "").strip():
        return text("code_exec_need_tests", lang)
    return _guarded(lambda: run_tests(code, tests, sandbox), lang)


def _hint(sandbox: SandboxConfig | None) -> tuple[bool, Any]:
    """(buttons usable, the note under them)."""
    if sandbox is None or not sandbox.enabled:
        return False, t("code_exec_off")
    status = sandbox_status(sandbox)
    if not status.startswith("ON:"):  # bubblewrap missing: the admin reads English at the console too
        return False, text("code_exec_broken", why=status.split(": ", 1)[-1])
    return True, t("code_exec_on")


def build_run_controls(sandbox: SandboxConfig | None, mode: Any, language: Any, code_in: Any, code_out: Any) -> None:
    """The Run code / Run tests buttons, stdin and the output box, wired to the tab's components."""
    usable, hint = _hint(sandbox)
    with gr.Column(elem_id="code-exec-panel"):
        with gr.Row():
            run = gr.Button(t("code_exec"), variant="secondary", elem_id="code-exec", interactive=usable)
            tests = gr.Button(t("code_exec_tests"), variant="secondary", elem_id="code-exec-tests",
                              interactive=usable)
        gr.Markdown(hint, elem_id="code-exec-hint")
        stdin = gr.Textbox(value="", label=t("code_exec_stdin"), lines=1, max_lines=6, visible=usable,
                           elem_id="code-exec-stdin")
        output = gr.Textbox(value="", label=t("code_exec_output"), lines=8, max_lines=30, interactive=False,
                            buttons=["copy"], visible=usable, elem_id="code-exec-output")

    def run_clicked(language: str, code: str, result_code: str, stdin: str, request: gr.Request = None):  # type: ignore[assignment]
        return run_event(language, code, result_code, stdin, sandbox, language_of(request))

    def tests_clicked(mode: str, language: str, code: str, tests: str, request: gr.Request = None):  # type: ignore[assignment]
        return run_tests_event(mode, language, code, tests, sandbox, language_of(request))

    run.click(run_clicked, inputs=[language, code_in, code_out, stdin], outputs=output, api_visibility="private",
              show_progress="minimal")
    tests.click(tests_clicked, inputs=[mode, language, code_in, code_out], outputs=output,
                api_visibility="private", show_progress="minimal")
