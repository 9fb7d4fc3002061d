"""REST routes for folder sync (contract in ARCHITECTURE.md; the work is ``assist.sync``).

    GET    /api/collections/{c}/source   {"collection", "owner", "folder", "interval_s", "origin", "since",
                                          "watching", "pass": {"state": "idle|queued|running", "job"}, "files",
                                          "last_pass": {"status", "message", "started_at", "finished_at", "files",
                                          "added", "updated", "removed", "renamed", "failed": [{"path", "error"}],
                                          "deferred", "job"} | null}
    PUT    /api/collections/{c}/source   {"folder", "interval_s"?} -> the same, a first pass queued
                                          (its progress: GET /api/jobs/{pass.job})
    DELETE /api/collections/{c}/source   {"collection", "following": false}; the documents stay

PUT and DELETE are for admins only (403 otherwise; with no sign-in configured the local user is
the admin); the folder must lie under ``--sync-root`` (400 otherwise; 403 "folder sync is off"
without one). GET answers whoever may read the collection; 404 when it follows no folder.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field

from assist.errors import NotAllowed
from webui.adapters import install_error_handlers
from webui.auth import current_owner, current_user

__all__ = ["include_sync_api"]


class SourceBody(BaseModel):
    folder: str = Field(max_length=4096)
    interval_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)


def _admin(request: Request) -> str:
    user = current_user(request)
    if user is not None and not user.is_admin:
        raise NotAllowed("Only an admin can make a collection follow a folder on the server, or stop it.")
    return current_owner(request)


def include_sync_api(app: FastAPI, services) -> None:
    sync = services.sync
    router = APIRouter(prefix="/api/collections", tags=["documents"])

    @router.get("/{collection}/source")
    def get_source(collection: str, request: Request) -> dict:
        return sync.status(current_owner(request), collection)

    @router.put("/{collection}/source")
    def put_source(collection: str, body: SourceBody, request: Request) -> dict:
        return sync.follow(_admin(request), collection, body.folder, body.interval_s)

    @router.delete("/{collection}/source")
    def delete_source(collection: str, request: Request) -> dict:
        return sync.unfollow(_admin(request), collection)

    app.include_router(router)
    install_error_handlers(app)
