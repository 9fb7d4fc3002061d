"""REST routes for background upload jobs (contract in ARCHITECTURE.md).

    GET /api/jobs/{id}   {"id", "status": "queued|running|done|failed", "progress": 0..1, "message",
                          "collection", "files", "documents": [...], "errors": [{"name", "error"}]}
    GET /api/jobs        {"jobs": [...]} the caller's jobs, oldest first; ``?active=true`` only
                         queued/running ones, ``?collection=c`` one collection's
    DELETE /api/jobs/{id}  cancel a queued or running job; the job after (``failed`` with a
                         "Cancelled" message, nothing added; a finished job is left as it was)

Jobs are started by ``POST /api/collections/{c}/documents?background=true`` (webui/rag_api.py).
A job belongs to the caller who started it (``webui.auth.current_owner``); anyone else's id
answers 404, like an unknown one.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request

from webui.adapters import install_error_handlers
from webui.auth import current_owner

__all__ = ["build_jobs_router", "include_jobs_api"]


def build_jobs_router(services) -> APIRouter:
    jobs = services.jobs
    router = APIRouter(prefix="/api/jobs", tags=["documents"])

    @router.get("")
    def list_jobs(request: Request, active: bool = False, collection: str | None = None) -> dict:
        owner = current_owner(request)
        if collection is not None and services.collections is not None:  # the user's name -> the store's
            collection = services.collections.resolve(owner, collection).storage
        return {"jobs": [shown(j, owner) for j in jobs.list(owner, active, collection)]}

    @router.get("/{job_id}")
    def get_job(job_id: str, request: Request) -> dict:
        owner = current_owner(request)
        return shown(jobs.get(job_id, owner), owner)

    @router.delete("/{job_id}")
    def cancel_job(job_id: str, request: Request) -> dict:
        owner = current_owner(request)
        return shown(jobs.cancel(job_id, owner), owner)

    def shown(job, owner: str) -> dict:
        """The job as its owner sees it: the collection by the name they use, not the store's."""
        body = job.to_dict()
        if services.collections is not None:
            body["collection"] = services.collections.label_of(owner, body["collection"])
        return body

    return router


def include_jobs_api(app: FastAPI, services) -> None:
    app.include_router(build_jobs_router(services))
    install_error_handlers(app)
