"""Run one checker tool on code written to a fresh temp dir, safely, and read its verdict.

Each run: its own process group (a timeout kills the whole group: gcc's cc1, javac's JVM), a
scrubbed environment (no secrets a compiler could echo), CPU and memory limits set by ``sh``
before exec, a wall-clock timeout, and at most two tools at once. Messages lose the temp dir's
path, and line numbers lose the lines a checker added (a package clause, a wrapper class).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CheckResult", "find_tool", "run_tool"]

_MAX_MESSAGE_LINES = 25
# Compilers are heavy; on a small server two at a time is plenty.
_SLOTS = threading.BoundedSemaphore(2)
_ENV_KEEP = ("PATH", "HOME", "RUSTUP_HOME", "CARGO_HOME", "RUSTUP_TOOLCHAIN", "JAVA_HOME", "GOROOT",
             "GOPATH", "SYSTEMROOT")


@dataclass(frozen=True)
class CheckResult:
    """``status`` is "pass", "fail", "not_checked" or "timeout"; ``line`` is 1-based."""

    status: str
    tool: str | None
    message: str
    line: int | None = None
    column: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "pass"


def _env(workdir: str) -> dict[str, str]:
    # No secrets for the tools: rustc's env!() and friends could print them in an error message.
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update(LC_ALL="C", LANG="C", TMPDIR=workdir, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="",
               GOCACHE=str(Path(workdir) / ".gocache"), GO111MODULE="off")
    return env


def _run(argv: list[str], cwd: str, timeout: float, memory_mb: int | None = 4096) -> tuple[int | None, str, str]:
    """(returncode or None on timeout, stdout, stderr). Limits are set by sh before exec."""
    limits = f"ulimit -t {int(timeout) + 2} 2>/dev/null; "
    if memory_mb:
        limits += f"ulimit -v {memory_mb * 1024} 2>/dev/null; "
    proc = subprocess.Popen(["/bin/sh", "-c", limits + 'exec "$@"', "sh", *argv], cwd=cwd, env=_env(cwd),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: gcc's cc1, javac's JVM threads
        except ProcessLookupError:
            pass
        proc.communicate(timeout=5)
        return None, "", ""
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _tidy(text: str, workdir: str) -> str:
    text = text.replace(workdir + os.sep, "").replace(workdir, ".")
    lines = [ln for ln in text.strip().splitlines()
             if not ln.startswith("    at ") and not ln.startswith("Node.js v")]
    if len(lines) > _MAX_MESSAGE_LINES:
        lines = lines[:_MAX_MESSAGE_LINES] + [f"... ({len(lines) - _MAX_MESSAGE_LINES} more lines)"]
    return "\n".join(lines)


def _relocate(text: str, name: str, after_line: int, shift: int) -> str:
    """Undo lines we inserted (a package clause, a wrapper class) in the tool's line numbers."""
    if not shift:
        return text

    def fix(match: re.Match) -> str:
        line = int(match.group(2))
        return f"{match.group(1)}{line - shift if line > after_line else line}"

    return re.sub(rf"({re.escape(name)}(?::? line |:|\())(\d+)", fix, text)


def _position(text: str, name: str) -> tuple[int | None, int | None]:
    match = re.search(rf"{re.escape(name)}(?::? line |:|\()(\d+)(?:[:,](\d+))?", text)
    if not match:
        return None, None
    return int(match.group(1)), (int(match.group(2)) if match.group(2) else None)


def find_tool(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_tool(tool: str, argv: list[str], files: dict[str, str], timeout: float, *,
              shift: tuple[int, int] = (0, 0), ok_message: str = "", stream: str = "both",
              memory_mb: int | None = 4096,
              judge: Callable[[int, str], tuple[str, str]] | None = None) -> CheckResult:
    """Write ``files`` into a fresh temp dir, run ``argv`` there and turn the outcome into a result."""
    name = next(iter(files))
    if not _SLOTS.acquire(timeout=timeout):
        return CheckResult("timeout", tool, f"The {tool} checker is busy; try again in a moment.")
    try:
        with tempfile.TemporaryDirectory(prefix="dcu-chat-check-") as workdir:
            workdir = os.path.realpath(workdir)
            for fname, content in files.items():
                Path(workdir, fname).write_text(content, encoding="utf-8")
            rc, out, err = _run(argv, workdir, timeout, memory_mb)
            text = _relocate(_tidy({"stdout": out, "stderr": err}.get(stream, err + "\n" + out), workdir),
                             name, *shift)
    finally:
        _SLOTS.release()
    if rc is None:
        return CheckResult("timeout", tool, f"{tool} did not finish within {timeout:g} s; not checked.")
    status, message = judge(rc, text) if judge else (("pass", ok_message) if rc == 0 else ("fail", text))
    line, column = _position(message, name) if status == "fail" else (None, None)
    return CheckResult(status, tool, message or f"{tool} exited with status {rc}.", line, column)
