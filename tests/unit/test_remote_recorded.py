"""Reasoning passed through from a vLLM/DeepSeek-R1-style stream (``--reasoning-parser deepseek_r1``):
the wire format of vLLM's server (``reasoning_content`` deltas, then ``content``, usage in a last
chunk with no choices), replayed by a real HTTP server to the remote backend, and out of our /v1."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from openai_support import serve_in_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from engine.config import EngineConfig
from engine.engine import Engine
from webui.api import build_api
from webui.services import Services

STREAM = Path(__file__).resolve().parent.parent / "data" / "vllm_reasoning_stream.sse"
MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"


def replay_server() -> Starlette:
    async def models(request):
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "max_model_len": 32768}]})

    async def chat(request):
        body = STREAM.read_text(encoding="utf-8")
        return StreamingResponse(iter([part + "\n\n" for part in body.split("\n\n") if part]),
                                 media_type="text/event-stream")

    async def health(request):
        return JSONResponse({})

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/health", health)])


def test_reasoning_from_a_vllm_stream_comes_out_of_our_v1():
    with serve_in_thread(replay_server()) as url:
        engine = Engine.load(EngineConfig(backend="openai", base_url=url + "/v1"))
        try:
            client = TestClient(build_api(Services(engine=engine)))
            body = {"model": "default", "messages": [{"role": "user", "content": "17 times 3?"}]}
            message = client.post("/v1/chat/completions", json=body).json()
            choice = message["choices"][0]
            assert choice["message"]["reasoning_content"].strip() == "Okay, the user asks for 17 times 3. 17 times 3 is 51."
            assert choice["message"]["content"] == "17 × 3 = **51**."
            assert message["usage"]["completion_tokens"] == 26  # vLLM's own count
            with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
                lines = [line for line in response.iter_lines() if line.startswith("data: {")]
            assert any('"reasoning_content"' in line for line in lines)
            assert any('"content":"17"' in line.replace(" ", "") for line in lines)
        finally:
            engine.close()
