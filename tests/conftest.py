"""Shared fixtures: tiny models for unit tests, the real default models and a live app for the rest."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Models must come from disk: a test that tries the network fails instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.live_app import LiveApp  # noqa: E402  (needs the path above)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir):
    """A real Engine over the tiny model, loaded through the real loader."""
    from engine.config import EngineConfig
    from engine.engine import Engine

    return Engine.load(EngineConfig(model=str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="session")
def default_engine():
    """The real embedded default model on transformers (converted once per machine, cached), once per session."""
    from engine.config import EngineConfig
    from engine.engine import Engine

    return Engine.load(EngineConfig(backend="transformers"), progress=lambda m: print(m, flush=True))


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    """The real app with the real default model; shared by API, integration and browser tests."""
    app = LiveApp(tmp_path_factory.mktemp("live") / "data").start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def launch_app(tmp_path_factory):
    """Start extra app instances (other flags, restarts); they are stopped when the test module ends,
    so at most a few real models are in memory at once."""
    started: list[LiveApp] = []

    def launch(*args: str, data_dir: Path | None = None, env: dict | None = None) -> LiveApp:
        app = LiveApp(data_dir or tmp_path_factory.mktemp("app") / "data", *args, env=env).start()
        started.append(app)
        return app

    yield launch
    for app in started:
        app.stop()


def pytest_collection_modifyitems(config, items):
    import importlib.util

    has_cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        has_cuda = torch.cuda.is_available()
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path:
            item.add_marker(pytest.mark.integration)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
        # The marker itself: keywords also hold folder names, and a checkout in a folder named gpu matched.
        if item.get_closest_marker("gpu") is not None and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA/ROCm/DCU device (torch.cuda.is_available() is False)"))
