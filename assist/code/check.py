"""Check generated code for syntax errors without running it.

Python is parsed and compiled in-process (never executed). SQL is prepared by SQLite's parser
under ``EXPLAIN`` in an empty in-memory database, which compiles a statement without running
it; errors about unknown tables, columns or functions are ignored because the schema is
unknown, and SQLite's dialect is the yardstick. Other languages use a local tool when one is on
PATH: ``node --check``, ``tsc --noEmit`` (syntax errors TS1xxx only), ``gcc``/``g++``
``-fsyntax-only``, ``bash -n``, ``gofmt -e`` (else ``go vet``), ``rustc --emit=metadata``,
``javac -proc:none``, each run by ``assist.code.tool_run`` (a fresh temp dir, its own process
group, a scrubbed environment, CPU/memory limits, a timeout). Without a tool the answer is
"not_checked", said plainly.
"""

from __future__ import annotations

import ast
import re
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path

from assist.code.languages import Language, get_language, suggested_filename
from assist.code.tool_run import CheckResult, find_tool, run_tool

__all__ = ["CheckResult", "check_code", "available_checkers", "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 15.0
MAX_CODE_CHARS = 200_000


def _missing(lang: Language, tools: str, hint: str = "") -> CheckResult:
    return CheckResult("not_checked", None,
                       f"Not checked: no {lang.name} checker ({tools}) is installed on the server.{hint}")


# --- the checkers -------------------------------------------------------------------------------


def _check_python(code: str, timeout: float) -> CheckResult:
    tool = "python ast"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for "\d" and such is not an error
            tree = ast.parse(code, "<code>")
            # compile() also catches what the parser lets through ("return" outside a function);
            # it builds a code object and never runs it.
            compile(tree, "<code>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as err:
        where = f"line {err.lineno}" + (f", column {err.offset}" if err.offset else "")
        snippet = (err.text or "").rstrip("\n")
        caret = f"\n    {snippet}\n    {' ' * max((err.offset or 1) - 1, 0)}^" if snippet.strip() else ""
        return CheckResult("fail", tool, f"{type(err).__name__} at {where}: {err.msg}{caret}",
                           err.lineno, err.offset)
    except ValueError as err:  # e.g. null bytes in the source
        return CheckResult("fail", tool, f"Not valid Python source: {err}")
    except (RecursionError, MemoryError):
        return CheckResult("not_checked", tool, "Not checked: the code is nested too deeply to parse safely.")
    return CheckResult("pass", tool, "Python syntax OK (parsed and compiled, not run).")


def _split_sql(code: str) -> list[tuple[int, str]]:
    """(first line, statement) pairs; ``complete_statement`` knows strings, comments, triggers."""
    out, start = [], 0
    for match in re.finditer(";", code):
        if sqlite3.complete_statement(code[start : match.end()]):
            out.append((start, code[start : match.end()]))
            start = match.end()
    if code[start:].strip():
        out.append((start, code[start:] + "\n;"))
    result = []
    for offset, stmt in out:
        body = re.sub(r"--[^\n]*|/\*.*?\*/", "", stmt, flags=re.S).strip().strip(";").strip()
        if body:
            lead = len(stmt) - len(stmt.lstrip())
            result.append((code[: offset + lead].count("\n") + 1, stmt.strip()))
    return result


def _deny(action: int, *_args) -> int:
    # EXPLAIN never runs a statement; refusing ATTACH/DETACH/PRAGMA keeps even preparing harmless.
    return sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH,
                                             sqlite3.SQLITE_PRAGMA) else sqlite3.SQLITE_OK


def _check_sql(code: str, timeout: float) -> CheckResult:
    tool = "sqlite3 parser"
    conn = sqlite3.connect(":memory:")
    try:
        conn.set_authorizer(_deny)
        for line, stmt in _split_sql(code):
            explained = stmt if re.match(r"(?i)explain\b", stmt) else "EXPLAIN " + stmt
            try:
                conn.execute(explained)
            except sqlite3.Error as err:
                text = str(err)
                if re.search(r"syntax error|incomplete input|unrecognized token|parser stack", text):
                    return CheckResult("fail", tool, f"Statement at line {line}: {text}", line)
                # "no such table/column/function", "not authorized": schema we do not have.
    finally:
        conn.close()
    return CheckResult("pass", tool, "SQL syntax OK by SQLite's parser (not run; table and column names "
                                     "not checked; other dialects' extensions may be flagged).")


def _check_node(code: str, timeout: float) -> CheckResult:
    node = find_tool("node", "nodejs")
    if node is None:
        return _missing(get_language("javascript"), "node")
    # ES module syntax only parses as a module: .mjs makes node treat it as one.
    name = "snippet.mjs" if re.search(r"^\s*(?:import\s+[\w{*'\"]|export\s)", code, re.M) else "snippet.js"
    return run_tool("node --check", [node, "--check", name], {name: code}, timeout,
                     ok_message="JavaScript syntax OK (node --check, not run).")


def _judge_tsc(rc: int, text: str) -> tuple[str, str]:
    syntax = [ln for ln in text.splitlines() if re.search(r"error TS1\d{3}:", ln)]
    if syntax:
        return "fail", "\n".join(syntax)
    others = [ln for ln in text.splitlines() if re.search(r"error TS\d+:", ln)]
    if rc == 0 or others:
        note = f" ({len(others)} type error(s) ignored: imports and types outside the snippet are unknown)"
        return "pass", "TypeScript syntax OK (tsc --noEmit)" + (note if others else "") + "."
    return "not_checked", f"Not checked: tsc failed without diagnostics: {text[:300]}"


def _check_tsc(code: str, timeout: float) -> CheckResult:
    tsc = find_tool("tsc")
    if tsc is None:
        return _missing(get_language("typescript"), "tsc", " Install it with: npm install -g typescript")
    argv = [tsc, "--noEmit", "--pretty", "false", "--skipLibCheck", "--target", "es2022",
            "--module", "esnext", "snippet.ts"]
    return run_tool("tsc", argv, {"snippet.ts": code}, timeout, stream="stdout", judge=_judge_tsc)


_INCLUDE = re.compile(r"^\s*#\s*(?:include|include_next|import|embed)\b\s*(.*)$", re.M)


def _unsafe_include(code: str) -> str | None:
    """A reason to refuse: an include could pull a server file into the compiler's messages."""
    for match in _INCLUDE.finditer(code):
        target = match.group(1).strip()
        if target[:1] not in ('"', "<") or target[1:2] in ("/", "\\") or ".." in target or "~" in target:
            return f"#include {target}"
    if re.search(r"^\s*#\s*pragma\s+GCC\s+dependency", code, re.M):
        return "#pragma GCC dependency"
    return None


def _check_c_family(code: str, timeout: float, cpp: bool) -> CheckResult:
    lang = get_language("cpp" if cpp else "c")
    compiler = find_tool(*(("g++", "clang++", "c++") if cpp else ("gcc", "clang", "cc")))
    if compiler is None:
        return _missing(lang, "g++ or clang++" if cpp else "gcc or clang")
    reason = _unsafe_include(code)
    if reason:
        return CheckResult("not_checked", None, f"Not checked: `{reason}` reads a file outside the snippet.")
    name = "snippet" + lang.extension
    tool = f"{Path(compiler).name} -fsyntax-only"
    argv = [compiler, "-fsyntax-only", "-x", "c++" if cpp else "c", "-fdiagnostics-color=never", name]
    return run_tool(tool, argv, {name: code}, timeout, ok_message=f"{lang.name} syntax OK ({tool}, not run).")


def _check_bash(code: str, timeout: float) -> CheckResult:
    bash = find_tool("bash")
    if bash is None:
        return _missing(get_language("bash"), "bash")
    return run_tool("bash -n", [bash, "-n", "snippet.sh"], {"snippet.sh": code}, timeout,
                     ok_message="Bash syntax OK (bash -n, not run).")


def _check_go(code: str, timeout: float) -> CheckResult:
    shift = (0, 0)
    if not re.search(r"^\s*package\s+\w+", code, re.M):
        code, shift = "package main\n" + code, (0, 1)  # a snippet: check it as package main
    files = {"snippet.go": code}
    gofmt = find_tool("gofmt")
    if gofmt is not None:
        return run_tool("gofmt -e", [gofmt, "-e", "-l", "snippet.go"], files, timeout, shift=shift,
                         stream="stderr", ok_message="Go syntax OK (gofmt -e, not run).")
    go = find_tool("go")
    if go is not None:
        return run_tool("go vet", [go, "vet", "snippet.go"], files, timeout, shift=shift,
                         ok_message="Go code OK (go vet, not run).")
    return _missing(get_language("go"), "gofmt or go")


_RUST_FILE_ACCESS = re.compile(r"\binclude(?:_str|_bytes)?!\s*[(\[{]|#\s*!?\[\s*path\s*=")


def _check_rust(code: str, timeout: float) -> CheckResult:
    rustc = find_tool("rustc")
    if rustc is None:
        return _missing(get_language("rust"), "rustc")
    if _RUST_FILE_ACCESS.search(code):
        return CheckResult("not_checked", None, "Not checked: include!/#[path] could read files outside the snippet.")
    # A library crate, so snippets without main() are fine; metadata only, nothing is linked or run.
    argv = [rustc, "--edition", "2021", "--crate-type", "lib", "--crate-name", "snippet", "--emit=metadata",
            "-o", "snippet.rmeta", "-A", "warnings", "--color", "never", "snippet.rs"]
    return run_tool("rustc", argv, {"snippet.rs": code}, timeout,
                     ok_message="Rust code OK (rustc --emit=metadata, not run).")


_JAVA_TYPE = re.compile(r"\b(?:class|interface|enum|record)\s+[A-Za-z_]\w*")


def _check_java(code: str, timeout: float) -> CheckResult:
    javac = find_tool("javac")
    if javac is None:
        return _missing(get_language("java"), "javac")
    shift = (0, 0)
    if not _JAVA_TYPE.search(code):
        # Methods without a class: wrap them after any leading import/package lines.
        lines = code.split("\n")
        head = 0
        while head < len(lines) and re.match(r"\s*(?:import\s|package\s|//|$)", lines[head]):
            head += 1
        code = "\n".join(lines[:head] + ["class Snippet {"] + lines[head:] + ["}"])
        shift = (head, 1)
    name = suggested_filename(code, "java")
    argv = [javac, "-J-Xmx256m", "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-encoding", "UTF-8",
            "-proc:none", "-implicit:none", "-Xlint:none", "-nowarn", "-d", "classes", name]
    return run_tool("javac", argv, {name: code}, timeout, shift=shift, memory_mb=None,
                     ok_message="Java code OK (javac, not run).")


_CHECKERS: dict[str, Callable[[str, float], CheckResult]] = {
    "python": _check_python,
    "sqlite": _check_sql,
    "node": _check_node,
    "tsc": _check_tsc,
    "gcc": lambda code, timeout: _check_c_family(code, timeout, cpp=False),
    "g++": lambda code, timeout: _check_c_family(code, timeout, cpp=True),
    "bash": _check_bash,
    "gofmt": _check_go,
    "rustc": _check_rust,
    "javac": _check_java,
}

_TOOLS = {"python": (), "sqlite": (), "node": ("node", "nodejs"), "tsc": ("tsc",),
          "gcc": ("gcc", "clang", "cc"), "g++": ("g++", "clang++", "c++"), "bash": ("bash",),
          "gofmt": ("gofmt", "go"), "rustc": ("rustc",), "javac": ("javac",)}


def available_checkers() -> dict[str, str | None]:
    """Language key -> the tool that would check it now ("built-in" or a path), or None."""
    from assist.code.languages import LANGUAGES

    return {key: ("built-in" if not _TOOLS[lang.checker] else find_tool(*_TOOLS[lang.checker]))
            for key, lang in LANGUAGES.items()}


def check_code(code: str, language: str | Language, timeout: float | None = None) -> CheckResult:
    """Check ``code`` for syntax errors without running it. Never raises for bad code."""
    lang = get_language(language)
    if not (code or "").strip():
        return CheckResult("not_checked", None, "Not checked: there is no code.")
    if len(code) > MAX_CODE_CHARS:
        return CheckResult("not_checked", None, f"Not checked: more than {MAX_CODE_CHARS:,} characters.")
    if lang.key == "java":
        timeout = timeout or 2 * DEFAULT_TIMEOUT_S  # a cold JVM is slow
    elif lang.key == "rust":
        timeout = timeout or 2 * DEFAULT_TIMEOUT_S
    try:
        return _CHECKERS[lang.checker](code, timeout or DEFAULT_TIMEOUT_S)
    except OSError as err:  # the tool vanished or cannot start: say so rather than fail the request
        return CheckResult("not_checked", None, f"Not checked: the {lang.name} checker could not start ({err}).")
