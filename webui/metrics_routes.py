"""``GET /metrics``: the served models' Prometheus metrics in the text exposition format."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from engine.metrics import CONTENT_TYPE_LATEST, metrics_for
from webui.services import Services

__all__ = ["include_metrics_routes"]


def include_metrics_routes(app: FastAPI, services: Services) -> None:
    metrics = metrics_for(services.models)  # hooked now, so it counts from the first request

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
