"""``--backend auto``: the choice of backend, and the transformers fallback when llama.cpp fails."""

from __future__ import annotations

import sys

import pytest

from engine.backends import auto
from engine.backends.base import EngineInfo
from engine.backends.llamacpp_build import LlamaCppBuild, llamacpp_build
from engine.config import EngineConfig
from engine.device import DeviceInfo
from engine.engine import Engine

CPU = DeviceInfo("cpu", "cpu", "test cpu", 8 << 30, 4 << 30, bf16=True)
DCU = DeviceInfo("dcu", "cuda:0", "Hygon DCU", 64 << 30, 60 << 30, bf16=True)
CPU_BUILD = LlamaCppBuild(True, "1", ("AVX2",))
GPU_BUILD = LlamaCppBuild(True, "1", ("AVX2",), gpus=("ROCm0 (DCU, 64.0 GiB)",))
MISSING = LlamaCppBuild(False, error="xllamacpp does not import")


@pytest.mark.parametrize(("model", "device", "build", "gpu_layers", "expected"), [
    (None, CPU, CPU_BUILD, None, "llamacpp"),  # the embedded default on a CPU
    ("/m/model.GGUF", CPU, CPU_BUILD, None, "llamacpp"),
    ("/m/qwen-dir", CPU, CPU_BUILD, None, "transformers"),  # safetensors: always transformers
    (None, DCU, CPU_BUILD, None, "transformers"),  # the card, through torch: a CPU-only wheel cannot use it
    (None, DCU, GPU_BUILD, None, "llamacpp"),  # a GPU build of llama.cpp offloads
    (None, DCU, GPU_BUILD, 0, "transformers"),
    (None, CPU, MISSING, None, "transformers"),
])
def test_choice(model, device, build, gpu_layers, expected):
    choice, note = auto.choose_backend(EngineConfig(model=model, gpu_layers=gpu_layers), build, device)
    assert choice == expected
    assert (note is not None) == (build is MISSING)


def test_auto_is_the_default():
    assert EngineConfig().backend == "auto"
    assert EngineConfig().quantization == "auto"  # kept for the transformers path auto may take


class FakeTransformers:
    loaded_with: list = []

    def __init__(self) -> None:
        self.info = EngineInfo("fake", "transformers", "cpu", "cpu", "float32", None, 512)
        self.capacity = 1

    @classmethod
    def load(cls, config, progress=None):
        cls.loaded_with.append(config)
        return cls()


@pytest.fixture
def fake_transformers(monkeypatch):
    import engine.backends.transformers as transformers_backend

    FakeTransformers.loaded_with = []
    monkeypatch.setattr(transformers_backend, "TransformersBackend", FakeTransformers)
    monkeypatch.setattr(auto, "resolve_device", lambda *a: CPU, raising=False)
    return FakeTransformers


def test_missing_xllamacpp_falls_back_with_a_note(monkeypatch, fake_transformers):
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # import xllamacpp now raises ImportError
    assert not llamacpp_build().available
    engine = Engine.load(EngineConfig(device="cpu"))
    assert engine.info.backend == "transformers" and fake_transformers.loaded_with[0].backend == "transformers"
    assert any("llama.cpp is not available" in note and "falling back" in note for note in engine.info.notes)


def test_a_file_llamacpp_cannot_load_falls_back(tmp_path, fake_transformers):
    pytest.importorskip("xllamacpp")
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "strange.gguf"  # a valid GGUF header for an architecture llama.cpp does not know
    writer = gguf.GGUFWriter(str(path), "no-such-architecture")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    engine = Engine.load(EngineConfig(model=str(path), device="cpu"))
    assert engine.info.backend == "transformers"
    assert any("llama.cpp could not load" in note and str(path) in note for note in engine.info.notes)


def test_a_broken_file_is_a_human_error_on_llamacpp(tmp_path):
    from engine.errors import ModelLoadError

    path = tmp_path / "broken.gguf"
    path.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelLoadError, match="not a readable GGUF"):
        Engine.load(EngineConfig(model=str(path), backend="llamacpp", device="cpu"))
