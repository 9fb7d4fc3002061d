"""Images in a message: the engine's one form and capability rule, /v1's image_url parts, and the
remote backend passing them through to a loopback OpenAI-style upstream that records what arrived."""

from __future__ import annotations

import base64
import io
import json
import threading

import httpx
import pytest
from fakes import FakeEngine
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from openai_support import serve_in_thread

from engine.backends.openai import OpenAIBackend
from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.errors import ConfigError
from engine.history import estimated_encode, validate_messages
from engine.images import MAX_IMAGE_BYTES, ImagesNotSupported, config_sees_images, data_url, decode_data_url
from engine.model_spec import ModelSpec
from engine.models import ModelRegistry
from engine.remote_markup import wire_messages
from engine.stats import GenerationStats
from webui.api import build_api
from webui.services import Services, WebConfig


def png(width: int = 4, height: int = 3, color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = data_url(png())


class SeeingEngine(FakeEngine):
    sees_images = True


class FakeBackend(FakeEngine):
    """The fake as a backend behind the real ``Engine`` facade."""

    capacity = 1


# --- the engine's form and rule -------------------------------------------------------------------


def test_data_urls_are_checked_and_decoded():
    assert decode_data_url(IMAGE) == ("image/png", png())
    for bad, words in [("http://x/y.png", "data: URL"), ("data:text/plain;base64,aGk=", "data: URL"),
                       ("data:image/svg+xml;base64,PHN2Zz4=", "send PNG"),
                       ("data:image/png;base64,@@@", "not valid base64"), ("data:image/png;base64,", "empty")]:
        with pytest.raises(ConfigError, match=words):
            decode_data_url(bad)
    huge = "data:image/png;base64," + "A" * (MAX_IMAGE_BYTES * 4 // 3 + 8)
    with pytest.raises(ConfigError, match="larger than 5 MB"):
        decode_data_url(huge)


def test_history_keeps_images_on_user_turns_only_and_counts_them():
    clean = validate_messages([{"role": "user", "content": "What is it?", "images": [IMAGE]}])
    assert clean == [{"role": "user", "content": "What is it?", "images": [IMAGE]}]
    with pytest.raises(ConfigError, match="only user messages"):
        validate_messages([{"role": "system", "content": "x", "images": [IMAGE]},
                           {"role": "user", "content": "hi"}])
    with pytest.raises(ConfigError, match="data: URL"):
        validate_messages([{"role": "user", "content": "x", "images": ["https://example.com/a.png"]}])
    plain = len(estimated_encode([{"role": "user", "content": "What is it?"}]))
    assert len(estimated_encode(clean)) > plain + 500  # an image costs a vision model hundreds of tokens


def test_which_configured_models_see(tmp_path):
    remote = dict(backend="openai", base_url="http://remote.test/v1")
    assert config_sees_images(EngineConfig(**remote, vision=True))
    assert not config_sees_images(EngineConfig(**remote))
    assert not config_sees_images(EngineConfig())  # the embedded default GGUF
    assert config_sees_images(EngineConfig(model="m.gguf", mmproj="mmproj.gguf"))
    vlm, text = tmp_path / "vlm", tmp_path / "text"
    vlm.mkdir(), text.mkdir()
    (vlm / "config.json").write_text(json.dumps({"model_type": "llava", "vision_config": {}}))
    (text / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert config_sees_images(EngineConfig(model=str(vlm)))
    assert not config_sees_images(EngineConfig(model=str(text)))
    assert not config_sees_images(EngineConfig(model=str(vlm), backend="vllm"))


def test_the_registry_answers_before_loading_and_the_engine_after():
    specs = [ModelSpec("text", EngineConfig(backend="openai", base_url="http://a.test/v1")),
             ModelSpec("eyes", EngineConfig(backend="openai", base_url="http://b.test/v1", vision=True))]
    registry = ModelRegistry(specs)
    assert registry.vision_models() == ["eyes"] and not registry.sees_images("default")
    assert [c.to_dict()["sees_images"] for c in registry.cards()] == [False, True]
    assert not Engine(FakeBackend()).sees_images


def test_a_text_only_engine_refuses_images_with_a_clear_error():
    backend = FakeBackend()
    engine = Engine(backend)
    with pytest.raises(ImagesNotSupported, match="reads text only"):
        engine.chat([{"role": "user", "content": "What is it?", "images": [IMAGE]}])
    assert backend.calls == []  # the backend never saw them
    assert ImagesNotSupported.http_status == 400
    seeing = FakeBackend()
    seeing.sees_images = True
    text, _ = Engine(seeing).chat([{"role": "user", "content": "What is it?", "images": [IMAGE]}])
    assert text and seeing.calls[-1]["messages"][0]["images"] == [IMAGE]


def test_wire_messages_turn_images_into_openai_parts():
    wired = wire_messages([{"role": "user", "content": "What is it?", "images": [IMAGE]}])
    assert wired == [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE}},
                                                  {"type": "text", "text": "What is it?"}]}]


# --- /v1 ----------------------------------------------------------------------------------------


def client_for(engine) -> TestClient:
    return TestClient(build_api(Services(engine=engine, web=WebConfig())), raise_server_exceptions=False)


def image_message(url: str = IMAGE, text: str = "What is this?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def post(client, messages, model="default") -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": model, "messages": messages})


def test_v1_passes_data_url_images_to_a_model_that_sees():
    engine = SeeingEngine()
    client = client_for(engine)
    response = post(client, image_message())
    assert response.status_code == 200, response.text
    assert engine.calls[-1]["messages"] == [{"role": "user", "content": "What is this?", "images": [IMAGE]}]
    response = post(client, [{"role": "user", "content": [{"type": "image_url", "image_url": IMAGE}]}])
    assert response.status_code == 200 and engine.calls[-1]["messages"][0]["images"] == [IMAGE]
    card = client.get("/v1/models").json()["data"][0]
    assert card["x_sees_images"] is True


def test_v1_refuses_web_addresses_bad_data_and_models_that_cannot_see():
    seeing = client_for(SeeingEngine())
    error = post(seeing, image_message("https://example.com/cat.png")).json()["error"]
    assert "fetches nothing" in error["message"] and "data: URL" in error["message"]
    assert error["param"] == "messages[0].content"
    big = "data:image/png;base64," + base64.b64encode(b"\0" * (MAX_IMAGE_BYTES + 1)).decode()
    response = seeing.post("/v1/chat/completions", json={"model": "default", "messages": image_message(big)})
    assert response.status_code in (400, 413)  # the body limit or the image limit: both say why
    error = post(seeing, image_message("data:image/png;base64,%%%")).json()["error"]
    assert "base64" in error["message"]
    assistant = [{"role": "user", "content": "hi"},
                 {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}]},
                 {"role": "user", "content": "and?"}]
    assert "only user messages" in post(seeing, assistant).json()["error"]["message"]
    blind = client_for(FakeEngine())
    response = post(blind, image_message())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "images_not_supported" and "None of the models served here can" in error["message"]


def test_v1_names_the_served_models_that_can_see():
    specs = [ModelSpec("text", EngineConfig(backend="openai", base_url="http://a.test/v1")),
             ModelSpec("eyes", EngineConfig(backend="openai", base_url="http://b.test/v1", vision=True))]
    services = Services(web=WebConfig(), models=ModelRegistry(specs))
    client = TestClient(build_api(services), raise_server_exceptions=False)
    error = post(client, image_message(), model="text").json()["error"]
    assert "'text' reads text only" in error["message"] and "'eyes'" in error["message"]


# --- the remote backend against a recording upstream ----------------------------------------------


@pytest.fixture(scope="module")
def upstream():
    """A loopback OpenAI-style server that records each chat request's JSON as it arrived."""
    app, seen = FastAPI(), []

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": "eyes", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        seen.append(await request.json())

        def events():
            yield 'data: {"choices": [{"delta": {"content": "A red square."}, "finish_reason": "stop"}]}\n\n'
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    with serve_in_thread(app) as url:
        yield url + "/v1", seen


def test_the_remote_backend_passes_image_parts_through_intact(upstream):
    url, seen = upstream
    backend = OpenAIBackend.load(EngineConfig(backend="openai", base_url=url, vision=True))
    assert backend.sees_images
    messages = [{"role": "system", "content": "Describe."}, {"role": "user", "content": "What is it?",
                                                              "images": [IMAGE, data_url(png(color=(0, 0, 255)))]}]
    parts = list(Engine(backend).stream_chat(messages, SamplingParams(max_new_tokens=8), cancel=threading.Event()))
    assert "".join(p for p in parts if not isinstance(p, GenerationStats)) == "A red square."
    sent = seen[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Describe."}
    content = sent[1]["content"]
    assert [p["type"] for p in content] == ["image_url", "image_url", "text"]
    assert content[0]["image_url"]["url"] == IMAGE  # byte for byte
    assert decode_data_url(content[1]["image_url"]["url"])[1] == png(color=(0, 0, 255))
    assert content[2]["text"] == "What is it?"


def test_a_remote_model_not_declared_to_see_never_sends_images(upstream):
    url, seen = upstream
    before = len(seen)
    engine = Engine(OpenAIBackend.load(EngineConfig(backend="openai", base_url=url)))
    with pytest.raises(ImagesNotSupported):
        engine.chat([{"role": "user", "content": "What is it?", "images": [IMAGE]}])
    assert len(seen) == before


def test_vision_is_a_per_model_option_on_the_command_line_and_in_toml():
    from app_settings import build_model_specs

    specs = build_model_specs({"model": ["eyes=gpt-4o-mini,backend=openai,base_url=http://r.test/v1,vision=true",
                                         "fast=m.gguf,mmproj=mmproj.gguf"]})
    assert specs[0].config.vision and config_sees_images(specs[0].config)
    assert specs[1].config.mmproj == "mmproj.gguf" and config_sees_images(specs[1].config)
    specs = build_model_specs({"models": [{"alias": "eyes", "model": "gpt-4o-mini", "backend": "openai",
                                           "base_url": "http://r.test/v1", "vision": True}]})
    assert specs[0].config.vision
