"""A transformers vision-language model end to end: a tiny random-weight LLaVA built in a fixture, loaded
through the real loader and backend, asked about an image in-process and over /v1. The output is random
text; what is checked is the flow: the picture reaches the vision tower as pixel values, the image
placeholder is expanded into the model's image tokens, and text-only requests still work."""

from __future__ import annotations

import io
import threading

import pytest
from fastapi.testclient import TestClient
from tiny_model import build_tiny_vlm

from engine.backends.transformers_vision import TransformersVisionBackend
from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.images import config_sees_images, data_url
from engine.stats import GenerationStats
from webui.api import build_api
from webui.services import Services, WebConfig


def png(color=(10, 200, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 20), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    directory = build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))
    config = EngineConfig(model=str(directory), device="cpu", max_batch=1, kv_cache_bytes=0)
    engine = Engine.load(config)
    seen: list[tuple] = []  # the vision tower's input shapes, one per forward
    engine.backend.model.model.vision_tower.register_forward_hook(
        lambda module, args, kwargs_or_out: seen.append(tuple(args[0].shape)) if args else None)
    return engine, seen, directory


def run(engine, messages, max_new_tokens=4) -> tuple[str, GenerationStats]:
    parts, stats = [], None
    params = SamplingParams(temperature=0, max_new_tokens=max_new_tokens)
    for item in engine.stream_chat(messages, params, cancel=threading.Event()):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            parts.append(item)
    return "".join(parts), stats


def test_a_model_directory_with_a_vision_config_loads_as_a_vision_model(vlm):
    engine, _, directory = vlm
    assert config_sees_images(EngineConfig(model=str(directory)))
    assert isinstance(engine.backend, TransformersVisionBackend)
    assert engine.sees_images and engine.info.backend == "transformers"
    assert any("reads images" in note for note in engine.info.notes)


def test_an_image_goes_through_the_vision_tower(vlm):
    engine, seen, _ = vlm
    seen.clear()
    text, stats = run(engine, [{"role": "user", "content": "what is this", "images": [data_url(png())]}])
    assert seen == [(1, 3, 16, 16)]  # one picture, resized by the processor to the tower's 16x16
    assert stats.extra["images"] == 1 and stats.completion_tokens == 4 and text
    plain_text, plain = run(engine, [{"role": "user", "content": "what is this"}])
    assert seen == [(1, 3, 16, 16)]  # a text-only request never touches the tower
    assert stats.prompt_tokens == plain.prompt_tokens + 4  # the placeholder became the 4 patch tokens


def test_two_images_in_two_turns_are_both_seen(vlm):
    engine, seen, _ = vlm
    seen.clear()
    messages = [{"role": "user", "content": "one", "images": [data_url(png())]},
                {"role": "assistant", "content": "red"},
                {"role": "user", "content": "two", "images": [data_url(png((0, 0, 255)), "image/png")]}]
    _, stats = run(engine, messages)
    assert seen == [(2, 3, 16, 16)] and stats.extra["images"] == 2


def test_v1_answers_about_an_image_with_the_vision_model(vlm):
    engine, seen, _ = vlm
    seen.clear()
    client = TestClient(build_api(Services(engine=engine, web=WebConfig())), raise_server_exceptions=False)
    assert client.get("/v1/models").json()["data"][0]["x_sees_images"] is True
    response = client.post("/v1/chat/completions", json={"model": "default", "max_tokens": 3, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this"},
                                     {"type": "image_url", "image_url": {"url": data_url(png())}}]}]})
    assert response.status_code == 200, response.text
    assert seen == [(1, 3, 16, 16)] and response.json()["usage"]["completion_tokens"] == 3
