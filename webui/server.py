"""Join the HTTP API and the Gradio UI into one ASGI app, and serve it."""

from __future__ import annotations

import logging

import gradio as gr
import uvicorn

from webui.api import build_api
from webui.app import CSS, HEAD, build_app
from webui.auth import current_owner
from webui.i18n import build_i18n
from webui.services import Services

__all__ = ["create_asgi_app", "serve"]

log = logging.getLogger(__name__)


def create_asgi_app(services: Services):
    """FastAPI routes first, then the UI mounted at ``/`` (routes declared earlier win)."""
    api = build_api(services)
    blocks = build_app(services)
    blocks.queue(default_concurrency_limit=services.web.concurrency, max_size=256)
    _calm_queue_polling(blocks)
    gate = api.state.gate
    # Our AuthMiddleware has refused anonymous callers already; Gradio only learns the name.
    signed_in = (lambda request: current_owner(request)) if gate.enabled else None
    return gr.mount_gradio_app(
        api, blocks, path="/", auth_dependency=signed_in, css=CSS, head=HEAD, i18n=build_i18n(), footer_links=["api", "settings"],
        max_file_size=services.web.max_upload_bytes, ssr_mode=False,
        run_history=False,  # it would offer to save runs to Hugging Face buckets: not for an offline server
        allowed_paths=[str(services.web.data_dir / "exports")],
    )


# Gradio's queue polls for new events every 1 ms (progress every 10 ms) while it is idle: ~7 % of a
# core on an idle server, waking a core a thousand times a second. On 2 CPU cores that is time taken
# from llama.cpp's threads, which wait for each other at every layer (measured: docs/performance.md).
# 50 ms is still below what a person notices when a click starts an answer.
_QUEUE_POLL_S = 0.05  # what Gradio itself uses on Windows
_PROGRESS_POLL_S = 0.1


def _calm_queue_polling(blocks: gr.Blocks) -> None:
    queue = getattr(blocks, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):  # a Gradio that no longer polls: nothing to do
        return
    queue.sleep_when_free = max(queue.sleep_when_free, _QUEUE_POLL_S)
    queue.progress_update_sleep_when_free = max(getattr(queue, "progress_update_sleep_when_free", 0), _PROGRESS_POLL_S)


def serve(services: Services) -> None:
    app = create_asgi_app(services)
    web = services.web
    print(app.state.gate.describe() if hasattr(app.state, "gate") else "", flush=True)
    print(f"dcu-chat is serving on http://{web.host}:{web.port}  (API: /v1, /api; docs: /api/docs)", flush=True)
    uvicorn.run(app, host=web.host, port=web.port, log_level="warning", timeout_graceful_shutdown=10)
