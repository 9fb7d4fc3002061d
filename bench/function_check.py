"""Run a function the model wrote on a few inputs: is it right, not only valid Python?

The quality bench asks Chat to "write a function"; passing the syntax check says nothing about
whether it computes the right thing. Here the answer's code runs, so it runs the way our code
checkers run tools (``assist.code.tool_run``): a fresh temp dir, ``python -I`` (no user site, no
environment paths), a scrubbed environment, CPU and memory limits, its own process group and a
wall-clock timeout; stdin is empty. Only the definitions run (imports, ``def``, ``class``, and
assignments without calls), never the answer's demo lines: ``n = int(input())`` or a ``print`` of
an example is not what was asked for and must not fail (or hang) a right function. A request
that rules out a built-in ("不用内置的 max") names it in ``forbidden_calls``: a function that calls
it anyway is not right, whatever it returns.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass

from bench.quality_grading import functions_defined

__all__ = ["FunctionResult", "check_function", "definitions", "pick_function", "calls", "TIMEOUT_S"]

TIMEOUT_S = 10.0

# Loads the definitions and calls the function on each case; one JSON line of verdicts on stdout.
_HARNESS = """\
import json, math, runpy
name, cases = json.loads(open("cases.json", encoding="utf-8").read())
def same(got, want):
    if isinstance(want, float) or isinstance(got, float):
        try:
            return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        except TypeError:
            return False
    return got == want
try:
    func = runpy.run_path("answer.py", run_name="answer")[name]
except BaseException as exc:
    print(json.dumps([[False, "load: %s: %s" % (type(exc).__name__, exc)]]))
    raise SystemExit(0)
out = []
for args, want in cases:
    try:
        got = func(*args)
        out.append([same(got, want), repr(got)[:60]])
    except BaseException as exc:
        out.append([False, "%s: %s" % (type(exc).__name__, str(exc)[:60])])
print(json.dumps(out))
"""


@dataclass(frozen=True)
class FunctionResult:
    """``passed``: every case right; ``detail``: what went wrong, for the report (empty when passed)."""

    passed: bool
    function: str | None
    detail: str = ""


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    return isinstance(node, ast.Assign | ast.AnnAssign) and not any(isinstance(n, ast.Call) for n in ast.walk(node))


def definitions(code: str) -> str:
    """The top-level definitions of ``code`` (valid Python), without its demo statements."""
    tree = ast.parse(code)
    return ast.unparse(ast.Module(body=[node for node in tree.body if _is_definition(node)], type_ignores=[]))


def pick_function(code: str, name: str | None, arity: int) -> str | None:
    """``name`` if the code defines it; without a name, the last top-level def taking ``arity`` arguments."""
    defined = functions_defined(code)
    if name is not None:
        return name if any(found == name for found, _ in defined) else None
    fitting = [found for found, count in defined if count == arity] or [found for found, _ in defined]
    return fitting[-1] if fitting else None


def _judge(rc: int, text: str) -> tuple[str, str]:
    lines = text.strip().splitlines()
    if rc != 0 or not lines:
        return "fail", f"exit status {rc}: {text[-200:]}"
    try:
        verdicts = json.loads(lines[-1])
    except ValueError:
        return "fail", f"no verdicts: {lines[-1][:200]}"
    wrong = [f"case {i + 1}: {got}" for i, (ok, got) in enumerate(verdicts) if not ok]
    return ("pass", "") if not wrong else ("fail", "; ".join(wrong))


def calls(code: str) -> set[str]:
    """Names called anywhere in ``code`` (valid Python): ``max(x)`` and ``builtins.max(x)`` both give max."""
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            func = node.func
            found.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return found - {""}


def check_function(code: str, name: str | None, tests: list, forbidden_calls: tuple[str, ...] = (),
                   timeout: float = TIMEOUT_S) -> FunctionResult:
    """Run the function on every ``[args, expected]`` case of ``tests``, isolated; right only if all match."""
    from assist.code.tool_run import run_tool

    try:
        source = definitions(code)
    except (SyntaxError, ValueError) as exc:
        return FunctionResult(False, None, f"not valid Python: {exc}")
    function = pick_function(source, name, len(tests[0][0]) if tests else 0)
    if function is None:
        return FunctionResult(False, None, f"no function {name or 'at all'} defined")
    used = sorted(calls(source) & set(forbidden_calls))
    if used:
        return FunctionResult(False, function, f"calls {', '.join(used)}(), which the request rules out")
    files = {"answer.py": source, "harness.py": _HARNESS, "cases.json": json.dumps([function, tests])}
    result = run_tool("python", [sys.executable, "-I", "harness.py"], files, timeout, stream="stdout",
                      memory_mb=1024, judge=_judge)
    return FunctionResult(result.ok, function, "" if result.ok else result.message)
