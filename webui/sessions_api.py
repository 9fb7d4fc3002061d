"""``/api/sessions``: saved chat conversations over HTTP (see ARCHITECTURE.md's contract).

    GET    /api/sessions?q=TITLE_WORDS       -> {"sessions": [{"id","title","created_at","updated_at","messages"}]}
    GET    /api/sessions/search?q=WORDS      -> {"hits": [{"session_id","message_id","title","snippet"}]}
    GET    /api/sessions/{id}                -> {... , "system_prompt", "messages": [{"id","parent_id","role",
                                                 "content","stats"?}] (the branch shown), "active_leaf",
                                                 "tree": [every message of every branch]}
    DELETE /api/sessions/{id}                -> {"deleted": id}
    GET    /api/sessions/{id}/export?format=md|json   (a file: Content-Disposition attachment)
    POST   /api/sessions/import              body: a JSON export (or {"messages": [...]}) -> 201, the new session

Owner: the caller, as ``webui.auth.current_owner`` says: the signed-in user (cookie or API
token), ``local`` without sign-in or with the shared API key, or, with the API key, the user
named in ``X-DCU-User`` (a trusted gateway that knows who is signed in). Without ``--api-key``
the header is ignored, since anyone could claim any name.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from assist.errors import SessionNotFound
from assist.sessions import EXPORT_FORMATS, SessionStore
from webui.adapters import install_error_handlers
from webui.auth import USER_HEADER, audit_event, current_owner
from webui.services import Services

__all__ = ["include_sessions_api", "build_sessions_router", "USER_HEADER", "rest_owner"]

def rest_owner(request: Request, services: Services) -> str:
    """The owner a REST call acts for (see the module docstring); ``services`` is kept for callers."""
    return current_owner(request)


def _attachment(filename: str) -> str:
    # An ASCII fallback plus the UTF-8 name (RFC 6266/5987), so Chinese titles survive.
    ascii_name = filename.encode("ascii", "ignore").decode() or "conversation"
    ascii_name = ascii_name.replace('"', "").replace("\\", "")
    if ascii_name.startswith("."):
        ascii_name = "conversation" + ascii_name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def build_sessions_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["sessions"])

    def store() -> SessionStore:
        if services.sessions is None:
            raise SessionNotFound("Saved conversations are not enabled on this server.")
        return services.sessions

    @router.get("/api/sessions")
    def list_sessions(request: Request, q: str | None = None) -> dict:
        return {"sessions": [s.summary() for s in store().list(rest_owner(request, services), query=q)]}

    @router.get("/api/sessions/search")  # before /api/sessions/{session_id}, which would take "search"
    def search_sessions(request: Request, q: str = Query("", max_length=500),
                        limit: int = Query(50, ge=1, le=200)) -> dict:
        """Messages (every branch) and titles of the caller's conversations containing every word of ``q``."""
        return {"hits": [h.to_dict() for h in store().search(rest_owner(request, services), q, limit)]}

    @router.post("/api/sessions/import", status_code=201)
    async def import_session(request: Request) -> dict:
        body = await request.body()
        return store().import_json(rest_owner(request, services), body).to_dict()

    @router.get("/api/sessions/{session_id}")
    def get_session(session_id: str, request: Request) -> dict:
        return store().get(session_id, rest_owner(request, services)).to_dict()

    @router.delete("/api/sessions/{session_id}")
    def delete_session(session_id: str, request: Request) -> dict:
        store().delete(session_id, rest_owner(request, services))
        audit_event(services, request, "session.deleted", session=session_id)
        return {"deleted": session_id}

    @router.get("/api/sessions/{session_id}/export")
    def export_session(session_id: str, request: Request, format: str = "md") -> Response:
        name, content = store().export(session_id, rest_owner(request, services), format)
        media_type = EXPORT_FORMATS[name.rsplit(".", 1)[-1]]
        return Response(content.encode("utf-8"), media_type=media_type,
                        headers={"Content-Disposition": _attachment(name)})

    return router


def include_sessions_api(app: FastAPI, services: Services) -> None:
    """Add the session routes to ``app``, with session errors answered as JSON."""
    app.include_router(build_sessions_router(services))

    install_error_handlers(app)
