"""``/api/presets``: the caller's Chat presets (system prompt + parameters) over HTTP.

    GET    /api/presets          -> {"presets": [{"id", "name", "system_prompt", "params", "builtin"}]}
    POST   /api/presets          {"name", "system_prompt"?, "params"?: {"temperature", "top_p", "top_k",
                                  "max_new_tokens", "repetition_penalty"}, "id"?} -> 201 new, 200 updated
    DELETE /api/presets/{id}     -> {"deleted": id} (built-in presets: 400)

Built-in presets are listed for everyone; a user's own are theirs alone (another user's id is 404).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from assist.presets import PresetError, PresetStore
from webui.adapters import install_error_handlers
from webui.auth import current_owner
from webui.services import Services

__all__ = ["include_presets_api", "PresetBody"]


class PresetBody(BaseModel):
    name: str = Field(max_length=200)
    system_prompt: str = Field(default="", max_length=20_000)
    params: dict = Field(default_factory=dict)
    id: str | None = Field(default=None, max_length=100)


def include_presets_api(app: FastAPI, services: Services) -> None:
    router = APIRouter(tags=["presets"])

    def store() -> PresetStore:
        if services.presets is None:
            raise PresetError("Presets are not enabled on this server (it keeps no data directory).")
        return services.presets

    @router.get("/api/presets")
    def list_presets(request: Request) -> dict:
        return {"presets": [p.to_dict() for p in store().list(current_owner(request))]}

    @router.post("/api/presets")
    def save_preset(body: PresetBody, request: Request) -> JSONResponse:
        owner = current_owner(request)
        known = {p.id for p in store().list(owner) if not p.builtin}
        preset = store().save(owner, body.name, body.system_prompt, body.params, body.id)
        return JSONResponse(preset.to_dict(), status_code=200 if preset.id in known else 201)

    @router.delete("/api/presets/{preset_id}")
    def delete_preset(preset_id: str, request: Request) -> dict:
        store().delete(current_owner(request), preset_id)
        return {"deleted": preset_id}

    app.include_router(router)
    install_error_handlers(app)
