"""The Code tab: generate, explain, fix, refactor and write tests, with a syntax check.

``run_code`` is the handler logic as a plain generator over ``CodeView`` values (no Gradio);
``code_event`` adapts it to the tab's output components and turns engine errors into
``gr.Error``; ``build_code_tab`` only lays out components and wires events. The streaming event
is public as ``api_name="code"`` with the task first, so
``Client(url).predict("write a function ...", api_name="/code")`` works.
"""

from __future__ import annotations

import html
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import Context

from assist.code import (
    LANGUAGES,
    MODES,
    CheckResult,
    CodeRequest,
    Language,
    answer_complete,
    build_messages,
    check_code,
    clean_answer,
    extract_code,
    get_language,
    params_for,
    runaway,
    suggested_filename,
)
from assist.quotas import MeteredEngine
from engine.errors import EngineError
from engine.models import ModelRegistry
from engine.stats import GenerationStats
from webui.adapters import CancelRegistry, is_domain_error, session_key, ui_error
from webui.auth import current_owner
from webui.code_run import build_run_controls
from webui.i18n import language_of, register, t
from webui.model_picker import loading_notices, model_picker
from webui.reading import LATEX_DELIMITERS, inline_math

__all__ = ["CodeView", "run_code", "code_event", "stop_event", "check_badge", "build_code_tab"]

FILES_DIR = Path(tempfile.gettempdir()) / "dcu-chat-code"
_FILE_TTL_S = 3600.0
# browser session -> the cancel event of its running request, for the Stop button.
_CANCELS = CancelRegistry()

_LABEL_KEYS = ("task", "placeholder", "code", "error")
_EN_LABELS = {  # mode -> (task label, task placeholder, code label, error label)
    "generate": ("Task", "Describe what the code should do", "Existing code (optional)", "Constraints (optional)"),
    "explain": ("Question (optional)", "What do you want to know about this code?", "Code to explain",
                "Error message (optional)"),
    "fix": ("Instruction (optional)", "What should the fixed code do?", "Code to fix",
            "Error message or wrong behaviour"),
    "refactor": ("Instruction", "e.g. split into smaller functions, add type hints", "Code to refactor",
                 "Notes (optional)"),
    "tests": ("What the code should do (optional)", "Behaviour the tests should pin down", "Code to test",
              "Notes (optional)"),
}
_ZH_LABELS = {
    "generate": ("任务", "描述代码要做什么", "已有代码（可选）", "约束条件（可选）"),
    "explain": ("问题（可选）", "你想了解这段代码的什么？", "要解释的代码", "错误信息（可选）"),
    "fix": ("说明（可选）", "修复后的代码应该做什么？", "要修复的代码", "错误信息或错误行为"),
    "refactor": ("说明", "例如：拆成更小的函数、添加类型注解", "要重构的代码", "备注（可选）"),
    "tests": ("代码应实现的行为（可选）", "测试需要确认的行为", "要测试的代码", "备注（可选）"),
}
_ZH_MODES = {"generate": "生成", "explain": "解释", "fix": "修复", "refactor": "重构", "tests": "编写测试"}
register(
    en={**{f"code_{k}_{mode}": v for mode, labels in _EN_LABELS.items() for k, v in zip(_LABEL_KEYS, labels, strict=True)},
        **{f"code_mode_{mode}": label for mode, label in MODES.items()},
        "code_mode": "Mode", "code_language": "Language", "code_run": "Run", "code_stop": "Stop",
        "code_result": "Result", "code_download": "Download"},
    zh={**{f"code_{k}_{mode}": v for mode, labels in _ZH_LABELS.items() for k, v in zip(_LABEL_KEYS, labels, strict=True)},
        **{f"code_mode_{mode}": label for mode, label in _ZH_MODES.items()},
        "code_mode": "模式", "code_language": "语言", "code_run": "运行", "code_stop": "停止",
        "code_result": "结果", "code_download": "下载"},
)


def _labels(mode: str) -> tuple:
    mode = mode if mode in _EN_LABELS else "generate"
    return tuple(t(f"code_{key}_{mode}") for key in _LABEL_KEYS)


@dataclass(frozen=True)
class CodeView:
    """What the tab shows at one moment of a request."""

    mode: str
    language: Language
    text: str = ""                    # the model's answer so far
    code: str = ""                    # the code extracted from it
    prose: str = ""                   # explanation / summary around the code
    check: CheckResult | None = None  # None until the answer is complete
    checking: bool = False
    file: str | None = None           # downloadable file with the right extension
    stats: GenerationStats | None = None
    done: bool = False


def _write_file(code: str, name: str) -> str:
    """Save code under the temp dir (Gradio serves files from there) and drop old downloads."""
    FILES_DIR.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - _FILE_TTL_S
    for old in FILES_DIR.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:
            pass  # another request pruned it first
    folder = FILES_DIR / uuid.uuid4().hex
    folder.mkdir()
    path = folder / name
    path.write_text(code.rstrip("\n") + "\n", encoding="utf-8")
    return str(path)


def run_code(engine: Any, request: CodeRequest, cancel: threading.Event | None = None,
             check_timeout: float | None = None) -> Iterator[CodeView]:
    """Stream one request: partial views while tokens arrive, then the checked, saved result.

    Generation stops early once the answer holds what the mode asks for (see
    ``answer_complete``). Closing this generator (the Stop button) sets ``cancel``, which stops
    the engine's work on the device.
    """
    cancel = cancel or threading.Event()
    lang, mode = request.lang, request.mode
    stream = engine.stream_chat(build_messages(request), params_for(request), cancel=cancel)
    text, stats, stopped = "", None, None  # stopped: why we ended generation ourselves
    try:
        for item in stream:
            if isinstance(item, GenerationStats):
                stats = item
                continue
            if stopped:
                continue  # tokens decoded before the engine saw the cancel event
            text += item
            if mode == "explain":
                yield CodeView(mode, lang, text, prose=clean_answer(text).strip())
            else:
                got = extract_code(text, lang)
                yield CodeView(mode, lang, text, got.code, got.prose)
            if answer_complete(text, mode, lang):
                stopped = "stop"
            elif runaway(text, mode):
                stopped = "repetition"
            if stopped:
                cancel.set()
    finally:
        cancel.set()  # no-op after a normal end; stops the device work when we are closed early
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    if stopped and stats is not None and stats.finish_reason == "cancelled":
        stats = replace(stats, finish_reason=stopped)  # our own stop, not the user's
    note = f"\n\n_Stopped early: {runaway(text, mode)}._" if stopped == "repetition" else ""
    if mode == "explain":
        yield CodeView(mode, lang, text, prose=clean_answer(text).strip() + note, stats=stats, done=True)
        return
    got = extract_code(text, lang)
    prose = (got.prose + note).strip()
    yield CodeView(mode, lang, text, got.code, prose, checking=bool(got.code), stats=stats)
    if got.code:
        result = check_code(got.code, lang, timeout=check_timeout)
        path = _write_file(got.code, suggested_filename(got.code, lang, mode))
    else:
        result = CheckResult("not_checked", None, "Not checked: the answer contains no code.")
        path = None
    yield CodeView(mode, lang, text, got.code, prose, result, False, path, stats, True)


def check_badge(result: CheckResult | None, checking: bool = False) -> str:
    """A one-line HTML badge: ✓ syntax OK / ✗ error at line N / not checked / timed out."""
    if checking:
        return '<span class="code-check code-check-running">⏳ Checking syntax…</span>'
    if result is None:
        return ""
    icon, label = {"pass": ("✓", "Syntax OK"), "fail": ("✗", "Syntax error"),
                   "timeout": ("⌛", "Check timed out"), "not_checked": ("–", "Not checked")}[result.status]
    where = f" at line {result.line}" if result.status == "fail" and result.line else ""
    tool = f" · {html.escape(result.tool)}" if result.tool else ""
    body = html.escape(result.message)
    return (f'<details class="code-check code-check-{result.status}"><summary>{icon} {label}{where}{tool}'
            f'</summary><pre>{body}</pre></details>')


def _outputs(view: CodeView) -> tuple:
    """(result code, check badge, explanation, download file, stats) for the tab's components."""
    # Plain values, not gr.update(...): API clients then get the code as a string. The result's
    # highlighting follows the Language dropdown through its own change event.
    code = "" if view.mode == "explain" else view.code
    stats = view.stats.summary() if view.stats is not None else ""
    return (code, check_badge(view.check, view.checking), inline_math(view.prose), view.file, stats)


def code_event(engine: Any, task: str, mode: str = "generate", language: str = "python", code: str = "",
               error: str = "", session: str | None = None,
               check_timeout: float | None = None) -> Iterator[tuple]:
    """The tab's streaming handler as a plain generator; domain errors become ``gr.Error``."""
    # One request per browser tab: a new Run replaces (and stops) the old one.
    cancel = _CANCELS.start(session) if session else threading.Event()
    try:
        request = CodeRequest(mode, language, task=task, code=code, error=error)
        for view in run_code(engine, request, cancel, check_timeout):
            yield _outputs(view)
    except Exception as err:
        if is_domain_error(err):
            raise ui_error(err) from err
        raise
    finally:
        if session:
            _CANCELS.finish(session, cancel)


def stop_event(session: str | None) -> None:
    """Set the cancel event of the session's running request (the Stop button)."""
    _CANCELS.cancel(session or "")


def _mode_labels(mode: str) -> tuple:
    task, placeholder, code, error = _labels(mode)
    return (gr.update(label=task, placeholder=placeholder), gr.update(label=code), gr.update(label=error))


def _language_changed(language: str) -> tuple:
    name = get_language(language).gradio
    return gr.update(language=name), gr.update(language=name)


def build_code_tab(models: Any, quotas=None, sandbox=None) -> None:
    """Lay out the Code tab's content and wire its events, inside the current ``gr.Blocks``.

    Called inside a ``gr.Tab`` it fills that tab; called anywhere else it opens ``gr.Tab("Code")``.
    With ``quotas`` (``assist.quotas.Quotas``) each user's requests count against their limits.
    ``models`` is the served models (``engine.models.ModelRegistry``) or one engine. ``sandbox``
    (``assist.sandbox.SandboxConfig``) enables Run code / Run tests (``webui.code_run``).
    """
    models = ModelRegistry.of(models)
    if isinstance(Context.block, gr.Tab):
        _build(models, quotas, sandbox)
    else:
        with gr.Tab("Code", id="code"):
            _build(models, quotas, sandbox)


def _build(models: ModelRegistry, quotas=None, sandbox=None) -> None:
    first = _labels("generate")
    with gr.Column(elem_id="code-tab"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                model = model_picker(models, "code-model")
                mode = gr.Radio([(t(f"code_mode_{key}"), key) for key in MODES], value="generate",
                                label=t("code_mode"))
                language = gr.Dropdown([(lang.name, key) for key, lang in LANGUAGES.items()], value="python",
                                       label=t("code_language"), filterable=True)
                task = gr.Textbox(value="", label=first[0], placeholder=first[1], lines=3, max_lines=12)
                code_in = gr.Code(value="", language="python", label=first[2], interactive=True, lines=10,
                                  elem_id="code-input")
                error = gr.Textbox(value="", label=first[3], lines=2, max_lines=10)
                with gr.Row():
                    run = gr.Button(t("code_run"), variant="primary", elem_id="code-run")
                    stop = gr.Button(t("code_stop"), variant="stop", elem_id="code-stop")
            with gr.Column(scale=1):
                badge = gr.HTML(value="", elem_id="code-check")
                code_out = gr.Code(value="", language="python", label=t("code_result"), interactive=False, lines=16,
                                   elem_id="code-result")
                explanation = gr.Markdown(value="", latex_delimiters=LATEX_DELIMITERS, elem_id="code-explanation")
                download = gr.File(label=t("code_download"), interactive=False, elem_id="code-download")
                stats = gr.Markdown(value="", elem_id="code-stats")
                build_run_controls(sandbox, mode, language, code_in, code_out)

    def code(task: str, mode: str = "generate", language: str = "python", code: str = "", error: str = "",
             model: str | None = None, request: gr.Request = None):  # type: ignore[assignment]
        """Generate, explain, fix, refactor or test code; returns (code, check, explanation, file, stats)."""
        session = session_key(request)
        try:
            for notice in loading_notices(models, model, language_of(request)):
                yield ("", "", "", None, notice)
            with models.use(model) as engine:  # kept in memory until the answer ends
                metered_engine = MeteredEngine(engine, quotas, current_owner(request))
                yield from code_event(metered_engine, task, mode, language, code, error, session=session)
        except EngineError as err:
            raise ui_error(err) from err

    def stop_running(request: gr.Request = None):  # type: ignore[assignment]
        stop_event(session_key(request))

    running = run.click(code, inputs=[task, mode, language, code_in, error, model],
                        outputs=[code_out, badge, explanation, download, stats],
                        api_name="code", show_progress="minimal", concurrency_limit=None)
    stop.click(stop_running, inputs=None, outputs=None, cancels=[running], queue=False, api_visibility="private")
    mode.change(_mode_labels, inputs=mode, outputs=[task, code_in, error], queue=False, api_visibility="private")
    language.change(_language_changed, inputs=language, outputs=[code_in, code_out], queue=False,
                    api_visibility="private")
