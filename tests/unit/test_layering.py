"""Dependencies point one way: app -> webui -> assist -> {engine, rag}; rag never imports engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("engine", {"gradio", "fastapi", "webui", "rag", "assist", "uvicorn", "starlette"}),
    ("rag", {"gradio", "fastapi", "webui", "engine", "assist", "uvicorn", "starlette"}),
    ("assist", {"gradio", "fastapi", "webui", "uvicorn", "starlette"}),
])
def test_core_packages_do_not_import_the_web_layer(package, forbidden):
    offending = {(path, mod) for path, mod in imported_modules(package) if mod in forbidden}
    assert not offending


def test_engine_and_rag_import_without_gradio_loaded():
    code = (
        "import sys, importlib, pkgutil\n"
        "for pkg in ('engine', 'rag', 'assist'):\n"
        "    m = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "bad = [n for n in ('gradio', 'fastapi') if n in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout
