"""Several models in one server (engine.models): names, load on first use, least-recently-used unloading."""

from __future__ import annotations

import threading

import pytest
from fakes import FakeEngine, fake_models
from fakes import FakeModelLoader as Loader

from engine.backends.base import EngineInfo
from engine.config import EngineConfig, ModelsConfig
from engine.embedded import EMBEDDED_MODEL
from engine.errors import ConfigError, EngineBusy, ModelLoadError, UnknownModel
from engine.model_spec import ModelSpec, default_alias, parse_model_option
from engine.models import ModelRegistry


def registry(*names: str, max_loaded: int = 2, budget: int = 0, loader=None) -> ModelRegistry:
    return fake_models(*names, max_loaded=max_loaded, budget=budget, loader=loader)


def test_requests_name_an_alias_default_or_the_model_s_own_name():
    models = registry("a", "b")
    assert models.aliases == ["a", "b"] and models.default == "a"
    assert models.resolve(None) == models.resolve("default") == models.resolve("") == "a"
    assert models.resolve("b") == models.resolve("/models/b") == "b"
    models.engine("b")
    assert models.resolve("/models/b-name") == "b"  # the loaded backend's name for it
    with pytest.raises(UnknownModel, match="'nope' does not exist.*'a', 'b'") as caught:
        models.resolve("nope")
    assert caught.value.http_status == 404 and caught.value.known == ["a", "b"]


def test_models_load_on_first_use_once_and_answer_as_themselves():
    loader = Loader()
    models = registry("a", "b", loader=loader)
    assert not models.is_loaded("a") and loader.loads == []
    with models.use("b") as engine:
        text, _ = engine.chat([{"role": "user", "content": "hi"}])
    assert text == "answer from /models/b" and loader.loads == ["/models/b"]
    assert models.engine("b") is engine and loader.loads == ["/models/b"]  # loaded once
    cards = {card.alias: card for card in models.cards()}
    assert cards["b"].loaded and not cards["a"].loaded and cards["a"].default
    assert cards["b"].info.model == "/models/b-name" and cards["a"].info is None


def test_the_least_recently_used_idle_model_is_unloaded_to_load_another():
    loader = Loader()
    models = registry("a", "b", "c", max_loaded=2, loader=loader)
    first, second = models.engine("a"), models.engine("b")
    models.engine("a")  # a is now the more recently used
    third = models.engine("c")
    assert second.closed and not first.closed and not third.closed
    assert set(models.loaded()) == {"a", "c"}
    models.engine("b")  # comes back on use: a new load, and now a (least recent) goes
    assert first.closed and set(models.loaded()) == {"c", "b"} and loader.loads[-1] == "/models/b"


def test_a_model_answering_is_never_unloaded_and_a_load_that_cannot_fit_is_refused():
    models = registry("a", "b", max_loaded=1)
    with models.use("a") as busy:
        with pytest.raises(EngineBusy, match="answering"):
            models.engine("b")
        assert not busy.closed and set(models.loaded()) == {"a"}
    models.engine("b")  # a is idle now
    assert busy.closed and set(models.loaded()) == {"b"}


def test_the_memory_budget_counts_weights_on_disk(tmp_path):
    files = {}
    for name, size in (("a", 600), ("b", 500), ("c", 300)):
        files[name] = tmp_path / f"{name}.gguf"
        files[name].write_bytes(b"\0" * size)
    specs = [ModelSpec(name, EngineConfig(model=str(path))) for name, path in files.items()]
    models = ModelRegistry(specs, ModelsConfig(max_loaded_models=0, memory_budget_bytes=1000), Loader())
    a = models.engine("a")
    c = models.engine("c")  # 600 + 300 fit
    assert not a.closed and set(models.loaded()) == {"a", "c"}
    models.engine("b")  # 600 + 300 + 500 do not: a (least recent) goes, 300 + 500 fit
    assert a.closed and not c.closed and set(models.loaded()) == {"c", "b"}
    assert {card.alias: card.weights_bytes for card in models.cards()} == {"a": 600, "b": 500, "c": 300}
    small = ModelRegistry(specs, ModelsConfig(memory_budget_bytes=400), Loader())
    with pytest.raises(ConfigError, match="more than the whole model memory budget"):
        small.engine("a")


def test_remote_models_take_no_room():
    loader = Loader()
    specs = [ModelSpec("local", EngineConfig(model="/models/local")),
             ModelSpec("cluster", EngineConfig(backend="openai", base_url="http://10.0.0.5:8000/v1"))]
    models = ModelRegistry(specs, ModelsConfig(max_loaded_models=1), loader)
    local, remote = models.engine("local"), models.engine("cluster")
    assert not local.closed and set(models.loaded()) == {"local", "cluster"}
    assert next(c for c in models.cards() if c.alias == "cluster").weights_bytes == 0
    assert not remote.closed


def test_two_requests_for_an_unloaded_model_load_it_once():
    release = threading.Event()
    loader = Loader()

    def slow(config, progress):
        release.wait(5)
        return loader(config, progress)

    models = registry("a", "b", loader=slow)
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(models.engine("b"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert loader.loads == ["/models/b"] and len(got) == 3 and all(e is got[0] for e in got)


def test_loading_messages_stream_the_load_and_raise_its_failure():
    models = registry("a", "b")
    assert list(models.loading_messages("b")) == ["loading /models/b"]
    assert list(models.loading_messages("b")) == []  # loaded: nothing to wait for

    def broken(config, progress):
        progress("reading the file")
        raise ModelLoadError("GGUF file /models/x does not exist.")

    failing = registry("x", loader=broken)
    messages = failing.loading_messages("x")
    assert next(messages) == "reading the file"
    with pytest.raises(ModelLoadError, match="does not exist"):
        next(messages)
    assert not failing.cards()[0].loading and not failing.cards()[0].loaded


def test_names_and_the_model_option():
    assert parse_model_option("fast=/m/x.gguf,backend=llamacpp, max-batch=4") == (
        "fast", "/m/x.gguf", {"backend": "llamacpp", "max_batch": "4"})
    assert parse_model_option("/m/Qwen3-0.6B") == (None, "/m/Qwen3-0.6B", {})
    assert parse_model_option("gemma=embedded") == ("gemma", None, {})
    with pytest.raises(ConfigError, match="key=value"):
        parse_model_option("a=/m/x,llamacpp")
    assert default_alias(EngineConfig()) == EMBEDDED_MODEL.model_id == "qwen2.5-coder-0.5b-instruct"
    assert default_alias(EngineConfig(model="/m/Qwen3-0.6B/")) == "Qwen3-0.6B"
    assert default_alias(EngineConfig(backend="openai", base_url="http://h/v1", remote_model="q")) == "q"
    with pytest.raises(ConfigError, match="both called 'a'"):
        ModelRegistry([ModelSpec("a", EngineConfig()), ModelSpec("a", EngineConfig(model="/m/b"))])
    for bad in ("default", "has space", ""):
        with pytest.raises(ConfigError, match="cannot be used"):
            ModelSpec(bad, EngineConfig())


def test_a_registry_of_one_loaded_engine():
    engine = FakeEngine()
    models = ModelRegistry.of(engine)
    assert ModelRegistry.of(models) is models and models.aliases == ["fake-model"]
    assert models.is_loaded() and models.engine("default") is engine
    assert models.cards()[0].info == EngineInfo(**{**FakeEngine.info.to_dict()})
