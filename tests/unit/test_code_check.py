"""Syntax checks: pass, fail, timeout and "not checked" for every language, nothing executed."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from assist.code.check import available_checkers, check_code

# Absolute paths: the fake tools run with PATH holding only the fake bin dir.
SLEEP = shutil.which("sleep") or "/bin/sleep"
GREP = shutil.which("grep") or "/bin/grep"
ENV = shutil.which("env") or "/usr/bin/env"

# language -> (tool name it looks for, good code, broken code, line of the error)
REAL = {
    "javascript": ("node", "function add(a, b) {\n  return a + b;\n}\n", "function add(a, b) {\n  return a +;\n}\n", 2),
    "c": ("gcc", "#include <stdio.h>\nint main(void) { printf(\"%d\", 1); return 0; }\n",
          "int main(void) {\n  return 0\n}\n", 2),
    "cpp": ("g++", "#include <vector>\nint main() { std::vector<int> v{1}; return v[0]; }\n",
            "int main() {\n  int x = ;\n}\n", 2),
    "bash": ("bash", "for i in 1 2; do\n  echo \"$i\"\ndone\n", "if true; then\n  echo x\n", 3),
    "rust": ("rustc", "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n", "fn add(a: i32, b: i32) -> i32 {\n    let x = ;\n    a + b\n}\n", 2),
    "java": ("javac", "public class Calc {\n  static int add(int a, int b) { return a + b; }\n}\n",
             "public class Calc {\n  static int add(int a, int b) { return a + }\n}\n", 2),
}


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed here")


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """Make fake tools and put only them on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))

    def make(name: str, body: str) -> Path:
        path = bindir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    return make


# --- Python and SQL: in-process, never executed ---------------------------------------------------


def test_python_pass():
    result = check_code("def add(a, b):\n    return a + b\n", "python")
    assert result.status == "pass" and result.ok and result.tool == "python ast"


def test_python_fail_reports_line_and_column():
    result = check_code("x = 1\ndef add(a, b)\n    return a + b\n", "python")
    assert result.status == "fail" and result.line == 2 and result.column == 14
    assert "expected ':'" in result.message and "line 2" in result.message


def test_python_compile_errors_count_too():
    assert check_code("return 1\n", "python").status == "fail"


def test_python_is_not_executed(tmp_path):
    marker = tmp_path / "ran"
    assert check_code(f"open({str(marker)!r}, 'w').write('x')\n", "python").status == "pass"
    assert not marker.exists()


def test_python_null_byte_and_top_level_await():
    assert check_code("x = 1\x00\n", "python").status == "fail"
    assert check_code("import asyncio\nawait asyncio.sleep(0)\n", "python").status == "pass"


def test_sql_pass_ignores_unknown_tables():
    code = "CREATE TABLE t (a INTEGER, b TEXT);\n-- comment\nSELECT a, b FROM users WHERE a > 1;\nSELECT 1"
    assert check_code(code, "sql").status == "pass"


def test_sql_fail_names_the_statement_line():
    result = check_code("SELECT 1;\n\nSELECT *\nFORM users;\n", "sql")
    assert result.status == "fail" and result.line == 3 and "syntax error" in result.message


def test_sql_trigger_with_inner_semicolons():
    code = ("CREATE TRIGGER trg AFTER INSERT ON t BEGIN\n  UPDATE t SET a = 1;\n  DELETE FROM u;\nEND;\n"
            "SELECT 2;")
    assert check_code(code, "sql").status == "pass"


def test_sql_is_not_executed(tmp_path):
    db = tmp_path / "x.db"
    code = f"ATTACH DATABASE '{db}' AS x;\nCREATE TABLE x.t (a);\nPRAGMA user_version = 3;"
    assert check_code(code, "sql").status == "pass"
    assert not db.exists()


def test_sql_incomplete_input_fails():
    assert check_code("SELECT (1 + 2", "sql").status == "fail"


# --- tools on PATH: real ones where installed --------------------------------------------------------


@pytest.mark.parametrize("language", sorted(REAL))
def test_real_tool_pass(language):
    tool, good, _, _ = REAL[language]
    _needs(tool)
    result = check_code(good, language)
    assert result.status == "pass", result.message


@pytest.mark.parametrize("language", sorted(REAL))
def test_real_tool_fail(language):
    tool, _, bad, line = REAL[language]
    _needs(tool)
    result = check_code(bad, language)
    assert result.status == "fail", result.message
    assert result.line == line, result.message
    assert "dcu-chat-check-" not in result.message  # temp paths are tidied away


def test_javascript_module_syntax():
    _needs("node")
    assert check_code("import fs from 'fs';\nexport const x = fs;\n", "javascript").status == "pass"


def test_java_method_snippet_is_wrapped_and_lines_kept():
    _needs("javac")
    assert check_code("import java.util.List;\nstatic int add(int a, int b) {\n  return a + b;\n}\n",
                      "java").status == "pass"
    result = check_code("int add(int a, int b) {\n  return a + b\n}\n", "java")
    assert result.status == "fail" and result.line == 2


def test_c_include_of_server_file_is_refused():
    for code in ('#include "/etc/passwd"\n', "#include <../../etc/passwd>\n", "#define F <x>\n#include F\n"):
        result = check_code(code, "c")
        assert result.status == "not_checked" and "outside the snippet" in result.message


def test_rust_include_is_refused():
    result = check_code('const X: &str = include_str!("/etc/passwd");\n', "rust")
    assert result.status == "not_checked"


def test_c_is_not_executed(tmp_path):
    _needs("gcc")
    marker = tmp_path / "ran"
    code = f'#include <stdio.h>\nint main(void) {{ fopen("{marker}", "w"); return 0; }}\n'
    assert check_code(code, "c").status == "pass"
    assert not marker.exists()


# --- fake tools: TypeScript and Go (usually absent), output parsing, timeouts, missing tools -----------


def test_tsc_syntax_error_fails(fake_bin):
    fake_bin("tsc", "echo \"snippet.ts(2,9): error TS1005: ';' expected.\"\nexit 2")
    result = check_code("let x: number = 1\nlet y = (;\n", "typescript")
    assert result.status == "fail" and result.tool == "tsc" and result.line == 2 and result.column == 9


def test_tsc_type_errors_do_not_fail(fake_bin):
    fake_bin("tsc", "echo \"snippet.ts(1,20): error TS2307: Cannot find module 'express'.\"\nexit 2")
    result = check_code("import express from 'express';\n", "typescript")
    assert result.status == "pass" and "type error" in result.message


def test_tsc_clean_pass(fake_bin):
    fake_bin("tsc", "exit 0")
    assert check_code("const x: number = 1;\n", "typescript").status == "pass"


def test_gofmt_error_lines_exclude_the_added_package_clause(fake_bin):
    fake_bin("gofmt", f"{GREP} -q BROKEN snippet.go || exit 0\necho 'snippet.go:3:1: expected declaration' >&2\nexit 2")
    assert check_code("func add(a, b int) int {\n\treturn a + b\n}\n", "go").status == "pass"
    result = check_code("func add() {\n}\nBROKEN\n", "go")
    assert result.status == "fail" and result.line == 2 and "snippet.go:2:1" in result.message


def test_go_vet_when_gofmt_is_missing(fake_bin):
    fake_bin("go", "test \"$1\" = vet || exit 9\nexit 0")
    result = check_code("package main\nfunc main() {}\n", "go")
    assert result.status == "pass" and result.tool == "go vet"


TIMEOUT_TOOLS = {"javascript": "node", "typescript": "tsc", "c": "gcc", "cpp": "g++", "bash": "bash",
                 "go": "gofmt", "rust": "rustc", "java": "javac"}


@pytest.mark.parametrize("language", sorted(TIMEOUT_TOOLS))
def test_timeout(language, fake_bin):
    fake_bin(TIMEOUT_TOOLS[language], f"exec {SLEEP} 30")
    start = time.monotonic()
    result = check_code("x", language, timeout=0.5)
    assert result.status == "timeout" and "did not finish" in result.message
    assert time.monotonic() - start < 10


def test_timeout_kills_the_whole_process_group(fake_bin, tmp_path):
    pidfile = tmp_path / "child.pid"
    fake_bin("bash", f"{SLEEP} 30 &\necho $! > {pidfile}\nwait")
    assert check_code("echo hi", "bash", timeout=0.5).status == "timeout"
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # a killed child may linger as a zombie of init for a moment
        if Path(f"/proc/{pid}/stat").exists() and ") Z" in Path(f"/proc/{pid}/stat").read_text():
            break
        time.sleep(0.05)
    else:
        pytest.fail("the checker's child process survived the timeout")


@pytest.mark.parametrize("language", sorted(TIMEOUT_TOOLS))
def test_not_checked_without_a_tool(language, fake_bin):
    # PATH holds only the (empty) fake bin dir.
    result = check_code("x = 1", language)
    assert result.status == "not_checked" and result.tool is None
    assert result.message.startswith("Not checked:")


def test_tools_get_no_secrets_from_the_environment(fake_bin, monkeypatch):
    monkeypatch.setenv("DCU_CHAT_API_KEY", "s3cret-value")
    fake_bin("bash", f"{ENV}\nexit 1")
    result = check_code("echo hi", "bash")
    assert result.status == "fail" and "s3cret-value" not in result.message and "PATH=" in result.message


def test_nonzero_exit_without_output(fake_bin):
    fake_bin("bash", "exit 3")
    result = check_code("echo hi", "bash")
    assert result.status == "fail" and "status 3" in result.message


def test_empty_and_huge_code_are_not_checked():
    assert check_code("  \n", "python").status == "not_checked"
    assert check_code("x = 1\n" * 50_000, "python").status == "not_checked"


def test_available_checkers_lists_every_language():
    found = available_checkers()
    assert found["python"] == "built-in" and found["sql"] == "built-in"
    assert set(found) == {"python", "javascript", "typescript", "java", "c", "cpp", "go", "rust", "sql", "bash"}
