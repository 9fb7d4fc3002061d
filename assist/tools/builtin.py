"""Built-in tools, served by the app itself under the server name ``sandbox``.

``run_python``: the model runs a Python program in the code sandbox (``assist.sandbox``: no
network, no files of the server, CPU/memory/time limits) and reads what it printed. Offered only
when the admin started the server with ``--sandbox``; the sandbox is the protection, so its calls
need no per-call approval (the admin's ``--sandbox`` is that approval).
"""

from __future__ import annotations

import threading

from assist.errors import SandboxError
from assist.tools.errors import ToolCallFailed, ToolCancelled

__all__ = ["BUILTIN_SERVER", "RUN_PYTHON", "builtin_tools", "call_builtin"]

BUILTIN_SERVER = "sandbox"
RUN_PYTHON = "run_python"

_RUN_PYTHON_SPEC = {
    "description": "Run a Python 3 program in a sandbox (no network, no files, time and memory limits) and "
                   "get what it printed: stdout, stderr and the exit code. Use it to compute or check "
                   "something; print the values you need.",
    "input_schema": {"type": "object", "properties": {
        "code": {"type": "string", "description": "The complete Python program to run."}},
        "required": ["code"]},
}


def builtin_tools(sandbox) -> dict[str, dict]:
    """Name -> {description, input_schema} of the built-in tools this server offers."""
    return {RUN_PYTHON: _RUN_PYTHON_SPEC} if sandbox is not None and sandbox.enabled else {}


def _output(result) -> str:
    parts = [result.stdout.rstrip("\n")] if result.stdout else []
    if result.stderr:
        parts.append("--- stderr ---\n" + result.stderr.rstrip("\n"))
    ending = "stopped" if result.exit_code is None else f"exit code {result.exit_code}"
    parts.append(f"--- {ending}" + (f" · {result.message}" if result.message else "") + " ---")
    return "\n".join(parts)


def call_builtin(name: str, arguments: dict, sandbox, cancel: threading.Event | None = None) -> tuple[str, bool]:
    """(result text, is_error) of a built-in tool's call."""
    from assist.sandbox import run_code

    if name != RUN_PYTHON or sandbox is None or not sandbox.enabled:
        raise ToolCallFailed(f"There is no built-in tool {name!r} on this server.")
    code = arguments.get("code")
    if not isinstance(code, str) or not code.strip():
        return "Error: run_python needs the program as a non-empty string in \"code\".", True
    try:
        result = run_code("python", code, None, sandbox, cancel=cancel)
    except SandboxError as exc:
        raise ToolCallFailed(str(exc)) from exc
    if cancel is not None and cancel.is_set():
        raise ToolCancelled("The program was stopped.")
    return _output(result), result.exit_code != 0
