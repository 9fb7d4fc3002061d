"""Shared fixtures: tiny models for unit tests, the real default models and a live app for the rest."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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
    """The real embedded default model (converted once per machine, cached), loaded once per session."""
    from engine.config import EngineConfig
    from engine.engine import Engine

    return Engine.load(EngineConfig(), progress=lambda m: print(m, flush=True))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveApp:
    """``python app.py`` in a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.log_path = data_dir.parent / f"app-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600) -> LiveApp:
        import httpx

        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), "--data-dir", str(self.data_dir),
             *self.args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app did not become healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA/ROCm/DCU device (torch.cuda.is_available() is False)"))
