"""HTTP routes served beside the UI: ``/api/*`` and (see openai_api) ``/v1/*``.

The contract is fixed in ARCHITECTURE.md; clients and tests rely on it.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from webui.adapters import install_error_handlers
from webui.auth import gate_for, install_guards
from webui.chat_api import include_chat_api
from webui.code_run_api import include_code_run_api
from webui.login import include_login_routes
from webui.login_oidc import include_oidc_routes
from webui.metrics_routes import include_metrics_routes
from webui.openai_api import include_openai_api
from webui.presets_api import include_presets_api
from webui.request_guard import BodyGuardMiddleware
from webui.services import Services
from webui.sessions_api import include_sessions_api
from webui.usage_api import include_usage_api

__all__ = ["build_api"]


def build_api(services: Services) -> FastAPI:
    app = FastAPI(title="dcu-chat", version=services.version, docs_url="/api/docs", openapi_url="/api/openapi.json")
    router = APIRouter()

    @router.get("/api/health")
    def health() -> dict:
        # The top-level fields describe the default model (loaded at start; reloaded on use if
        # the registry unloaded it); "models" lists every served one.
        models = services.models
        body = {"status": "ok", "version": services.version, "default_model": models.default,
                "models": [card.to_dict() for card in models.cards()]}
        engine = models.loaded().get(models.default)
        if engine is not None:
            status = engine.status()
            info = status.info
            body.update(model=info.model, device=info.device, backend=info.backend,
                        backend_detail=info.backend_detail, device_name=info.device_name, dtype=info.dtype,
                        running=status.running, waiting=status.waiting, capacity=status.capacity)
        return body

    app.include_router(router)
    gate = gate_for(services)
    app.state.gate = gate  # the UI mount asks it who is signed in
    include_login_routes(app, gate, services.audit)
    include_oidc_routes(app, gate, services.audit)  # "Sign in with ..." (404 without --oidc-issuer)
    include_openai_api(app, services)
    include_sessions_api(app, services)
    include_presets_api(app, services)  # GET/POST/DELETE /api/presets
    include_metrics_routes(app, services)
    include_usage_api(app, services)
    include_code_run_api(app, services)  # answers 403 unless the server runs with --sandbox
    include_chat_api(app, services)  # POST /api/chat (the tool loop), GET /api/tools
    if services.store is not None:  # document Q&A routes; absent when the rag package is off
        from webui.rag_api import include_rag_api

        include_rag_api(app, services)
        from webui.preview_api import include_preview_api

        include_preview_api(app, services)  # GET …/documents/{id}/pages/{n}.png and …/text (cited pages)
    if services.sync is not None:  # GET|PUT|DELETE /api/collections/{c}/source (folder sync)
        from webui.sync_api import include_sync_api

        include_sync_api(app, services)
    if services.jobs is not None:  # background uploads (POST …/documents?background=true)
        from webui.jobs_api import include_jobs_api

        include_jobs_api(app, services)

    install_error_handlers(app)

    if services.sessions is not None:  # conversation downloads (Gradio file routes) for their owner only
        from webui.export_guard import ExportGuard

        app.add_middleware(ExportGuard, exports_dir=services.web.session_exports_dir, sessions=services.sessions)
    # Innermost: bodies are checked (UTF-8, no lone surrogates, /api size) after the auth guards.
    app.add_middleware(BodyGuardMiddleware, max_bytes=services.web.max_request_bytes)
    install_guards(app, services.web, gate)  # sign-in for every route but /api/health, /login; /v1 body size
    return app
