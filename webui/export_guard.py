"""Conversation exports are files that Gradio serves by path (``/gradio_api/file=…``) to the
sidebar's download buttons. Gradio checks only that the path is in an allowed folder, so this
middleware adds the rule every other route follows: a conversation's files go to its owner alone
(anyone else gets the same 404 as for a conversation that does not exist)."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import JSONResponse

from assist.sessions import LOCAL_OWNER, not_found
from webui.adapters import error_body

__all__ = ["ExportGuard"]

_FILE_ROUTE = "/file="


class ExportGuard:
    def __init__(self, app, exports_dir: Path, sessions) -> None:
        self.app, self.exports_dir, self.sessions = app, Path(exports_dir).resolve(), sessions

    def _session_of(self, path: str) -> str | None:
        """The conversation whose export ``path`` (an HTTP path) asks for, or None for other files."""
        _, found, target = path.partition(_FILE_ROUTE)
        if not found:
            return None
        try:
            relative = Path(target).resolve().relative_to(self.exports_dir)
        except (ValueError, OSError):
            return None  # not an export; Gradio's own checks apply
        return relative.parts[0] if relative.parts else ""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            session_id = self._session_of(scope.get("path", ""))
            if session_id is not None:
                user = (scope.get("state") or {}).get("user")
                owner = user.name if user is not None else LOCAL_OWNER
                if not session_id or not self.sessions.exists(session_id, owner):
                    await JSONResponse(error_body(not_found()), status_code=404)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
