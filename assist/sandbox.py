"""Run untrusted code — Python, Bash, pytest on generated tests — under bubblewrap, with limits.

Used by the Code tab's Run / Run tests and ``POST /api/code/run``; a tool can call ``run_code``
the same way (plain arguments in, a ``RunResult`` out). Off unless the admin starts the server
with ``--sandbox``. What the program can see is set in ``assist.sandbox_argv`` (no network, a
read-only system, private tmpfs work dir, no data dir or home). Limits: CPU seconds, address
space, processes, file size (rlimits set inside by ``prlimit``), output bytes (read with a cap,
then the program is stopped) and wall clock. A stop kills bwrap's process group; the program's
PID namespace dies with it, so nothing it started (even in a new session) outlives the run.
"""

from __future__ import annotations

import ast
import itertools
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assist.errors import SandboxBusy, SandboxError, SandboxOff, SandboxUnavailable
from assist.sandbox_argv import WORK_DIR, installed_module, python_command, run_as_uid_needed, sandbox_argv

__all__ = ["SandboxConfig", "RunResult", "LANGUAGES", "run_code", "run_tests", "sandbox_status"]

LANGUAGES = ("python", "bash")
MAX_CODE_CHARS = 200_000
MAX_STDIN_BYTES = 1024 * 1024
_TOOLS = ("bwrap", "setpriv", "prlimit")  # bubblewrap; the other two are util-linux (always on Debian)
_UID_BASE = 1_900_000_000  # root's runs each get a uid no account uses: their own process count
_uids = itertools.count()
_SLOTS = threading.BoundedSemaphore(2)  # programs at once; a small server has few cores
_BUSY_WAIT_S = 5.0
_DRAIN_S = 2.0  # reading what is left in the pipes after the program ended


@dataclass(frozen=True)
class SandboxConfig:
    enabled: bool = field(default=False, metadata={
        "option": "sandbox", "help": "let users run code (Code tab Run / Run tests, POST /api/code/run) under "
        "bubblewrap: no network, read-only system, no data dir or home, limits below"})
    cpu_s: int = field(default=10, metadata={
        "option": "sandbox_cpu_s", "help": "CPU seconds a sandboxed program may use"})
    memory_mb: int = field(default=512, metadata={
        "option": "sandbox_memory_mb", "help": "address space (MB) of each sandboxed process"})
    max_processes: int = field(default=32, metadata={
        "option": "sandbox_max_processes", "help": "processes and threads a sandboxed program may have at once"})
    max_output_bytes: int = field(default=1024 * 1024, metadata={
        "option": "sandbox_output_kb", "scale": 1024,
        "help": "stdout + stderr kept (KB); past it the program is stopped and the output truncated"})
    timeout_s: float = field(default=30.0, metadata={
        "option": "sandbox_timeout_s", "help": "wall-clock seconds before a sandboxed program is stopped"})
    disk_mb: int = 64  # size of each scratch tmpfs (/tmp, /dev/shm, the work dir): their files are memory

    def __post_init__(self) -> None:
        from engine.errors import ConfigError

        for name in ("cpu_s", "memory_mb", "max_processes", "max_output_bytes", "timeout_s", "disk_mb"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"The sandbox's {name} must be positive (got {getattr(self, name)}).")

    def describe(self) -> str:
        return (f"no network, CPU {self.cpu_s} s, memory {self.memory_mb} MB, {self.max_processes} processes, "
                f"output {self.max_output_bytes // 1024} KB, wall clock {self.timeout_s:g} s")


@dataclass(frozen=True)
class RunResult:
    """What a sandboxed program did. ``exit_code``: its status, 128+N when signal N ended it (as a
    shell says), None when the sandbox stopped it (``timed_out`` or ``truncated``)."""

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    duration_s: float
    truncated: bool = False  # output passed the cap
    message: str = ""  # one sentence on how it ended, when a limit was involved

    def to_dict(self) -> dict:
        return asdict(self)


def sandbox_status(config: SandboxConfig) -> str:
    """One line for the start-up log and the doctor."""
    if not config.enabled:
        return "off (start with --sandbox to let users run code)"
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"ON, but it cannot run code: {_missing_message(missing)}"
    return f"ON: users can run Python and Bash under bubblewrap ({config.describe()})"


def _missing_message(missing: list[str]) -> str:
    if "bwrap" in missing:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    return f"{', '.join(missing)} not found: apt-get install util-linux"


def run_code(language: str, code: str, stdin: str | None = None, config: SandboxConfig | None = None,
             cancel: threading.Event | None = None) -> RunResult:
    """Run ``code`` (``language``: python or bash) in a fresh sandbox and wait for it, within the limits.
    ``cancel`` (a Stop in Chat's ``run_python`` tool) set: the program is stopped as at its time limit."""
    language = (language or "").strip().lower()
    if language not in LANGUAGES:
        raise SandboxError(f"The sandbox runs {' and '.join(LANGUAGES)}, not {language or 'an unnamed language'!r}.")
    python, _ = python_command()
    name, command = ("main.py", [python, "main.py"]) if language == "python" else ("main.sh", ["bash", "main.sh"])
    return _run({name: code}, command, stdin, config, cancel)


def run_tests(code: str, tests: str, config: SandboxConfig | None = None) -> RunResult:
    """pytest on ``tests`` with ``code`` beside them as ``solution.py``, in a fresh sandbox.

    Generated tests import the code under a name the model chose (``from my_module import add``);
    each such module that is not installed is given the code too, and tests that import nothing of
    it get ``from solution import *`` first.
    """
    python, _ = python_command()
    files = {"solution.py": code}
    names = [n for n in _imported(tests) if n != "solution" and not installed_module(n)]
    files.update({f"{n}.py": code for n in names})
    if "solution" not in _imported(tests) and not names:
        tests = "from solution import *  # the code under test (added)\n" + tests
    files["test_solution.py"] = tests
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no", "test_solution.py"]
    return _run(files, command, None, config)


def _imported(source: str) -> list[str]:
    """Top-level module names a test file imports (none when it does not parse: pytest will say why)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        found = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        names += [n.split(".")[0] for n in found if n.split(".")[0].isidentifier()]
    return list(dict.fromkeys(names))


def _check(files: dict[str, str], stdin: str | None, config: SandboxConfig | None) -> SandboxConfig:
    if config is None or not config.enabled:
        raise SandboxOff("The code sandbox is off: start the server with --sandbox to run code.")
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable(f"The code sandbox cannot run code here: {_missing_message(missing)}.")
    longest = max(len(text) for text in files.values())
    if longest > MAX_CODE_CHARS:
        raise SandboxError(f"The code is too long to run ({longest:,} characters; at most {MAX_CODE_CHARS:,}).")
    if stdin is not None and len(stdin.encode("utf-8", "replace")) > MAX_STDIN_BYTES:
        raise SandboxError(f"The input (stdin) is larger than {MAX_STDIN_BYTES // 1024} KB.")
    return config


def _memfd(name: str, content: str) -> int:
    fd = os.memfd_create(name)
    os.write(fd, content.encode("utf-8", "replace"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _run(files: dict[str, str], command: list[str], stdin: str | None, config: SandboxConfig | None,
         cancel: threading.Event | None = None) -> RunResult:
    config = _check(files, stdin, config)
    if not _SLOTS.acquire(timeout=_BUSY_WAIT_S):
        raise SandboxBusy("The code sandbox is busy with other programs; try again in a moment.", _BUSY_WAIT_S)
    fds: dict[str, int] = {}
    try:
        uid = _UID_BASE + next(_uids) % 1_000_000 if run_as_uid_needed() else None
        user = os.getuid() if uid is None else uid
        for name, text in files.items():
            fds[name] = _memfd(name, text)
        data = {"/etc/passwd": f"root:x:0:0::/root:/usr/sbin/nologin\nsandbox:x:{user}:{user}::{WORK_DIR}:/bin/sh\n",
                "/etc/group": f"root:x:0:\nsandbox:x:{user}:\n"}  # names for ids; nothing of the host's
        data_fds = {path: _memfd(Path(path).name, text) for path, text in data.items()}
        fds.update(data_fds)
        disk = config.disk_mb * 1024 * 1024
        limits = [f"--cpu={config.cpu_s}:{config.cpu_s + 1}", f"--as={config.memory_mb * 1024 * 1024}",
                  f"--nproc={config.max_processes}", f"--fsize={disk}", "--core=0"]
        _, roots = python_command()
        argv = sandbox_argv(shutil.which("bwrap") or "bwrap", files={n: fds[n] for n in files}, data=data_fds,
                            command=command, limits=limits, disk_bytes=disk, uid=uid, python_roots=roots)
        return _execute(argv, list(fds.values()), stdin, config, cancel)
    finally:
        for fd in fds.values():
            os.close(fd)
        _SLOTS.release()


def _kill(proc: subprocess.Popen) -> None:
    """The whole group: bwrap, and with it (--die-with-parent) the PID namespace and all in it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _feed(proc: subprocess.Popen, stdin: str | None) -> None:
    try:
        if stdin:
            proc.stdin.write(stdin.encode("utf-8", "replace"))
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass  # the program ended (or closed its stdin) before reading it all


def _execute(argv: list[str], pass_fds: list[int], stdin: str | None, config: SandboxConfig,
             cancel: threading.Event | None = None) -> RunResult:
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            pass_fds=pass_fds, start_new_session=True, env={"PATH": "/usr/bin:/bin"})
    threading.Thread(target=_feed, args=(proc, stdin), daemon=True).start()
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray()}
    timed_out = truncated = False
    stop_at, drain_until, room = start + config.timeout_s, None, config.max_output_bytes
    with selectors.DefaultSelector() as selector:
        for stream in (proc.stdout, proc.stderr):
            selector.register(stream, selectors.EVENT_READ)
        try:
            while selector.get_map():
                now = time.monotonic()
                if cancel is not None and cancel.is_set() and drain_until is None:
                    stop_at = now  # stopped by the user: end it as at the time limit
                if drain_until is None and (proc.poll() is not None or now >= stop_at):
                    timed_out = proc.returncode is None
                    _kill(proc)  # over, or out of time: nothing it started may run on
                    drain_until = now + _DRAIN_S  # then read what is left in the pipes
                elif drain_until is not None and now >= drain_until:
                    break
                for key, _ in selector.select(timeout=min(max((drain_until or stop_at) - now, 0.0), 0.25)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    kept = chunk[:room]
                    buffers[key.fd] += kept
                    room -= len(kept)
                    if len(kept) < len(chunk) and not truncated:
                        truncated = True
                        _kill(proc)
                        drain_until = drain_until or time.monotonic() + _DRAIN_S
        finally:
            _kill(proc)
            proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()
    duration = round(time.monotonic() - start, 3)
    out, err = (bytes(buffers[fd]).decode("utf-8", "replace") for fd in (out_fd, err_fd))
    code = None if (timed_out or truncated) else proc.returncode
    if code is not None and code < 0:  # bwrap itself killed: report it as a shell would
        code = 128 - code
    if code == 1 and not out and err.startswith(("bwrap: ", "setpriv: ", "prlimit: ")):
        raise SandboxUnavailable(f"The code sandbox could not start the program: {err.strip().splitlines()[0]}")
    return RunResult(out, err, code, timed_out, duration, truncated, _message(code, timed_out, truncated, config))


def _message(code: int | None, timed_out: bool, truncated: bool, config: SandboxConfig) -> str:
    if timed_out:
        return f"Stopped: the wall-clock limit of {config.timeout_s:g} s was reached."
    if truncated:
        return f"Stopped: output truncated at the limit of {config.max_output_bytes // 1024} KB."
    if code is None or code <= 128:
        return ""
    try:
        name = signal.Signals(code - 128).name
    except ValueError:
        return f"Ended by signal {code - 128}."
    if name == "SIGXCPU" or name == "SIGKILL":
        return f"Ended by {name}: the CPU-time limit of {config.cpu_s} s (or memory) was reached."
    if name == "SIGXFSZ":
        return f"Ended by {name}: a file passed the size limit of {config.disk_mb} MB."
    return f"Ended by {name}."
