"""``POST /api/code/run``: run Python or Bash (or pytest on tests) in the code sandbox.

    POST /api/code/run {"language": "python"|"bash", "code", "stdin"?, "tests"?}
      -> {"stdout", "stderr", "exit_code", "timed_out", "duration_s", "truncated", "message"}

``tests`` (Python only): pytest runs them with ``code`` beside them as ``solution.py``. The
sandbox is the admin's choice: without ``--sandbox`` this answers 403 saying so; with it but no
bubblewrap on the server, 503 saying how to install it; too many programs at once, 429. The
sign-in gate applies as on every /api route. The audit log records who ran what language, how it
ended and how long it took — never the code.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field

from assist.errors import SandboxError
from assist.sandbox import RunResult, run_code, run_tests
from webui.adapters import install_error_handlers
from webui.auth import current_owner
from webui.services import Services

__all__ = ["CodeRunBody", "include_code_run_api"]

_MAX_CHARS = 600_000  # the sandbox refuses long code with a sentence; this only bounds parsing


class CodeRunBody(BaseModel):
    language: str = Field(default="python", max_length=40)
    code: str = Field(max_length=_MAX_CHARS)
    stdin: str | None = Field(default=None, max_length=2 * 1024 * 1024)
    tests: str | None = Field(default=None, max_length=_MAX_CHARS)


def include_code_run_api(app: FastAPI, services: Services) -> None:
    router = APIRouter(tags=["code"])

    @router.post("/api/code/run")
    def code_run(body: CodeRunBody, request: Request) -> dict:
        # A plain def: FastAPI runs it in a worker thread while the program runs.
        if body.tests is not None:
            if body.language.strip().lower() != "python":
                raise SandboxError("Tests run with pytest: send them with language \"python\".")
            result = run_tests(body.code, body.tests, services.sandbox)
        else:
            result = run_code(body.language, body.code, body.stdin, services.sandbox)
        _audit(services, request, body, result)
        return result.to_dict()

    app.include_router(router)
    install_error_handlers(app)


def _audit(services: Services, request: Request, body: CodeRunBody, result: RunResult) -> None:
    if services.audit is not None:
        services.audit.record("code.run", actor=current_owner(request), language=body.language,
                              tests=body.tests is not None, exit_code=result.exit_code,
                              timed_out=result.timed_out, duration_s=result.duration_s)
