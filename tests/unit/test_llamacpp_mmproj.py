"""llama.cpp with a multimodal projector (``mmproj=FILE``): the option reaches xllamacpp's CommonParams, the
model is marked as able to see, a missing file is a clear error, and a turn with images goes through
llama.cpp's chat path as OpenAI image_url parts. No projector GGUF is available offline, so the server
is a fake that records what it was given (tests/integration exercises the real server on text)."""

from __future__ import annotations

import io
import threading

import pytest

from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.errors import ModelLoadError
from engine.images import config_sees_images, data_url
from engine.stats import GenerationStats

xllamacpp = pytest.importorskip("xllamacpp")
gguf = pytest.importorskip("gguf")


def write_gguf(path, architecture="llama"):
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_context_length(2048)
    writer.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeServer:
    """Stands in for xllamacpp.Server: keeps the params, answers every request with two chunks."""

    created: list = []

    def __init__(self, params) -> None:
        self.params = params
        self.requests: list[tuple[str, dict]] = []
        self.listening_address = "http://127.0.0.1:9"
        FakeServer.created.append(self)

    def handle_chat_completions(self, request, callback):
        self.requests.append(("chat", request))
        callback({"choices": [{"delta": {"content": "A red"}, "finish_reason": None}]})
        callback({"choices": [{"delta": {"content": " square."}, "finish_reason": "stop"}],
                  "timings": {"predicted_n": 2, "cache_n": 0}})

    def handle_completions(self, request, callback):
        self.requests.append(("completion", request))
        callback({"choices": [{"text": "Hello.", "finish_reason": "stop"}], "timings": {"predicted_n": 1}})


@pytest.fixture()
def files(tmp_path, monkeypatch):
    monkeypatch.setattr(xllamacpp, "Server", FakeServer)
    return write_gguf(tmp_path / "vlm.gguf"), write_gguf(tmp_path / "mmproj-vlm.gguf", "clip")


def load(model, mmproj=None) -> Engine:
    config = EngineConfig(model=str(model), backend="llamacpp", device="cpu", mmproj=mmproj and str(mmproj))
    engine = Engine.load(config)
    engine.backend.tokenize = lambda text, special=False: list(range(len(text.split())))  # no HTTP tokenizer here
    return engine


def test_the_projector_reaches_llamacpp_and_the_model_sees(files):
    model, projector = files
    engine = load(model, projector)
    params = engine.backend.server.params
    assert params.mmproj.path == str(projector) and not params.no_mmproj and not params.mmproj_use_gpu
    assert engine.sees_images and config_sees_images(engine.config)
    assert any("multimodal projector" in note for note in engine.info.notes)
    plain = load(model)
    assert not plain.sees_images and plain.backend.server.params.mmproj.path == ""


def test_a_missing_or_wrong_projector_is_a_clear_error(files, tmp_path):
    model, _ = files
    FakeServer.created.clear()
    with pytest.raises(ModelLoadError, match="does not exist"):
        load(model, tmp_path / "nope.gguf")
    with pytest.raises(ModelLoadError, match="not a .gguf"):
        load(model, tmp_path / "mmproj.bin")
    assert FakeServer.created == []  # nothing was started


def test_a_turn_with_an_image_goes_through_the_chat_path_as_image_url_parts(files):
    model, projector = files
    engine = load(model, projector)
    image = data_url(png())
    messages = [{"role": "user", "content": "What is it?", "images": [image]}]
    items = list(engine.stream_chat(messages, SamplingParams(max_new_tokens=8, stop=("END",)),
                                    cancel=threading.Event()))
    assert "".join(i for i in items if isinstance(i, str)) == "A red square."
    assert isinstance(items[-1], GenerationStats) and items[-1].completion_tokens == 2
    kind, request = engine.backend.server.requests[-1]
    assert kind == "chat" and request["stream"] and request["max_tokens"] == 8 and request["stop"] == ["END"]
    assert request["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": "What is it?"}]}]
    text, _ = engine.chat([{"role": "user", "content": "Say hello"}])
    assert text == "Hello." and engine.backend.server.requests[-1][0] == "completion"  # text stays on token ids


def test_the_mmproj_option_is_per_model():
    from app_settings import build_model_specs

    specs = build_model_specs({"model": ["eyes=vlm.gguf,mmproj=mmproj-vlm.gguf", "text=other.gguf"]})
    assert specs[0].config.mmproj == "mmproj-vlm.gguf" and specs[1].config.mmproj is None


def test_transformers_reading_a_gguf_with_a_projector_reads_text_only():
    # --backend auto falls back to transformers when llama.cpp cannot load the file: no projector there.
    assert not config_sees_images(EngineConfig(model="m.gguf", mmproj="mmproj.gguf", backend="transformers"))
    assert config_sees_images(EngineConfig(model="m.gguf", mmproj="mmproj.gguf", backend="llamacpp"))
