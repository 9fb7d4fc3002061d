"""``GET /api/usage``: what each user uses — counts and tokens, never content.

An admin gets one row per known user; anyone else gets their own row only. A row holds the
number of saved conversations, collections and documents the user owns, and today's tokens,
answers and answers running (UTC day, ``assist.quotas``), beside the configured limits.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request

from webui.adapters import install_error_handlers
from webui.auth import current_user
from webui.services import Services

__all__ = ["include_usage_api", "usage_rows"]


def usage_rows(services: Services) -> list[dict]:
    """One row per user anything is known of, sorted by name."""
    sessions = services.sessions.counts_by_owner() if services.sessions is not None else {}
    collections = services.collections.usage() if services.collections is not None else {}
    tokens = services.quotas.usage() if services.quotas is not None else {}
    rows = []
    for user in sorted(set(sessions) | set(collections) | set(tokens)):
        owned = collections.get(user, {})
        today = tokens.get(user, {})
        rows.append({"user": user, "sessions": sessions.get(user, 0), "collections": owned.get("collections", 0),
                     "documents": owned.get("documents", 0), "tokens_today": today.get("tokens", 0),
                     "requests_today": today.get("requests", 0),
                     "running": services.quotas.running(user) if services.quotas is not None else 0})
    return rows


def _empty_row(user: str) -> dict:
    return {"user": user, "sessions": 0, "collections": 0, "documents": 0, "tokens_today": 0, "requests_today": 0,
            "running": 0}


def include_usage_api(app: FastAPI, services: Services) -> None:
    router = APIRouter(tags=["usage"])

    @router.get("/api/usage")
    def usage(request: Request) -> dict:
        caller = current_user(request)  # None: no sign-in configured, the local user owns the machine
        rows = usage_rows(services)
        if caller is not None and not caller.is_admin:
            rows = [r for r in rows if r["user"] == caller.name] or [_empty_row(caller.name)]
        config = services.quotas.config if services.quotas is not None else None
        return {"users": rows, "limits": {"tokens_per_day": getattr(config, "tokens_per_day", None),
                                          "max_concurrent": getattr(config, "max_concurrent", None)}}

    app.include_router(router)
    install_error_handlers(app)
