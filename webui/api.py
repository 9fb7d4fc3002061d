"""HTTP routes served beside the UI: ``/api/*`` and (see openai_api) ``/v1/*``.

The contract is fixed in ARCHITECTURE.md; clients and tests rely on it.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from webui.adapters import domain_error_types, http_status_of
from webui.auth import install_guards
from webui.metrics_routes import include_metrics_routes
from webui.openai_api import include_openai_api
from webui.services import Services
from webui.sessions_api import include_sessions_api

__all__ = ["build_api"]


def build_api(services: Services) -> FastAPI:
    app = FastAPI(title="dcu-chat", version=services.version, docs_url="/api/docs", openapi_url="/api/openapi.json")
    router = APIRouter()

    @router.get("/api/health")
    def health() -> dict:
        info = services.engine.info
        return {"status": "ok", "model": info.model, "device": info.device, "backend": info.backend,
                "device_name": info.device_name, "dtype": info.dtype, "version": services.version}

    app.include_router(router)
    include_openai_api(app, services)
    include_sessions_api(app, services)
    include_metrics_routes(app, services)
    if services.store is not None:  # document Q&A routes; absent when the rag package is off
        from webui.rag_api import include_rag_api

        include_rag_api(app, services)

    async def domain_errors(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": {"message": str(exc), "type": type(exc).__name__}},
                            status_code=http_status_of(exc))

    # Only our own errors, whose messages are written for people; anything else is a real 500
    # (a handler for plain Exception would be Starlette's server-error hook, which re-raises).
    for error_type in domain_error_types():
        app.add_exception_handler(error_type, domain_errors)

    install_guards(app, services.web)  # API key (except /api/health) and /v1 body size
    return app
