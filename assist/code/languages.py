"""The languages the Code assistant knows: names, fence tags, file names, highlighting, checker.

One table so that prompts, extraction, checking and the UI agree on what "TypeScript" means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assist.errors import AssistError

__all__ = ["Language", "LANGUAGES", "CodeRequestError", "get_language", "suggested_filename"]


class CodeRequestError(AssistError, ValueError):
    """A Code-tab request is missing something or names an unknown mode or language."""

    http_status = 400


@dataclass(frozen=True)
class Language:
    """How one programming language is named, fenced, saved, highlighted and checked.

    ``gradio`` is the ``gr.Code(language=...)`` name, or None where Gradio 6 has no highlighter
    (Java, Go, Rust). ``checker`` names the syntax checker in ``assist.code.check``.
    ``example_task``/``example`` feed the one-shot example in the prompts; every example contains
    ``" + "`` so the Fix example can break it by turning that into ``" - "``.
    """

    key: str
    name: str
    fence: str
    extension: str
    gradio: str | None
    checker: str
    aliases: tuple[str, ...] = ()
    test_framework: str = ""
    example_task: str = ""
    example: str = ""

    @property
    def tags(self) -> frozenset[str]:
        """Every fence tag that means this language (lower case)."""
        return frozenset({self.key, self.fence, self.name.lower(), *self.aliases})


_TABLE = (
    Language("python", "Python", "python", ".py", "python", "python",
             ("py", "python3", "py3", "pycon", "ipython"), "pytest",
             "a function that returns the sum of two numbers",
             "def add(a, b):\n    return a + b"),
    Language("javascript", "JavaScript", "javascript", ".js", "javascript", "node",
             ("js", "node", "nodejs", "jsx", "mjs", "cjs", "ecmascript"), "the built-in node:test module",
             "a function that returns the sum of two numbers",
             "function add(a, b) {\n  return a + b;\n}"),
    Language("typescript", "TypeScript", "typescript", ".ts", "typescript", "tsc",
             ("ts", "tsx", "mts", "cts"), "Jest",
             "a function that returns the sum of two numbers",
             "function add(a: number, b: number): number {\n  return a + b;\n}"),
    Language("java", "Java", "java", ".java", None, "javac", (), "JUnit 5",
             "a class with a method that returns the sum of two numbers",
             "public class Calc {\n    public static int add(int a, int b) {\n        return a + b;\n    }\n}"),
    Language("c", "C", "c", ".c", "c", "gcc", ("h", "ansi-c", "c99", "c11", "c17"), "assert.h",
             "a function that returns the sum of two numbers",
             "int add(int a, int b) {\n    return a + b;\n}"),
    Language("cpp", "C++", "cpp", ".cpp", "cpp", "g++",
             ("c++", "cc", "cxx", "hpp", "hxx", "hh", "h++"), "GoogleTest",
             "a function that returns the sum of two numbers",
             "int add(int a, int b) {\n    return a + b;\n}"),
    Language("go", "Go", "go", ".go", None, "gofmt", ("golang",), "the testing package",
             "a function that returns the sum of two numbers",
             "func add(a, b int) int {\n\treturn a + b\n}"),
    Language("rust", "Rust", "rust", ".rs", None, "rustc", ("rs",), "#[cfg(test)] unit tests",
             "a function that returns the sum of two numbers",
             "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}"),
    Language("sql", "SQL", "sql", ".sql", "sql", "sqlite",
             ("sqlite", "sqlite3", "postgresql", "postgres", "psql", "pgsql", "mysql", "tsql", "plsql"),
             "queries that return the expected rows",
             "a query that returns the sum of columns a and b of table numbers",
             "SELECT a + b AS total\nFROM numbers;"),
    Language("bash", "Bash", "bash", ".sh", "shell", "bash", ("sh", "shell", "zsh", "shellscript"),
             "plain bash assertions",
             "a script that prints the sum of its two arguments",
             "#!/usr/bin/env bash\necho $(( $1 + $2 ))"),
)

LANGUAGES: dict[str, Language] = {lang.key: lang for lang in _TABLE}

_BY_TAG = {tag: lang for lang in _TABLE for tag in sorted(lang.tags)}


def get_language(name: str | Language) -> Language:
    """Find a language by key, display name or fence tag (case-insensitive)."""
    if isinstance(name, Language):
        return name
    lang = _BY_TAG.get((name or "").strip().lower())
    if lang is None:
        known = ", ".join(lang.name for lang in _TABLE)
        raise CodeRequestError(f"Unknown language {name!r}; choose one of {known}.")
    return lang


_JAVA_CLASS = re.compile(r"^\s*public\s+(?:(?:final|abstract|sealed|strictfp)\s+)*"
                         r"(?:class|interface|enum|record)\s+([A-Za-z_]\w*)", re.M)


def suggested_filename(code: str, language: str | Language, mode: str = "generate") -> str:
    """File name for a download: ``solution.py``, ``test_solution.py``, ``Calc.java`` ..."""
    lang = get_language(language)
    if lang.key == "java":
        # javac insists that a public class lives in a file of the same name.
        match = _JAVA_CLASS.search(code or "")
        return f"{match.group(1) if match else 'Main'}.java"
    if mode != "tests":
        return "solution" + lang.extension
    if lang.key == "python":
        return "test_solution.py"
    if lang.key in ("javascript", "typescript"):
        return "solution.test" + lang.extension
    return "solution_test" + lang.extension
