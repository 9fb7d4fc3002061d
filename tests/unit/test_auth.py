"""API key on /v1 and /api (not /api/health), the official client through it, and exposure warnings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakes import FakeEngine
from fastapi.testclient import TestClient

from webui.api import build_api
from webui.auth import Gate
from webui.services import Services, WebConfig

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-key"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(build_api(Services(engine=FakeEngine(), web=WebConfig(api_key=KEY))))


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_health_stays_open(client):
    assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize("path", ["/v1/models", "/api/sessions", "/api/docs", "/api/openapi.json"])
def test_v1_and_api_routes_need_the_key(client, path):
    response = client.get(path)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert "Authorization: Bearer" in error["message"]
    if path.startswith("/v1"):  # OpenAI's error JSON
        assert error["code"] == "invalid_api_key" and error["type"]
    else:  # ours
        assert error["type"] == "NotAuthenticated"


@pytest.mark.parametrize("headers", [bearer("wrong"), bearer(KEY + "x"), {"Authorization": f"Basic {KEY}"},
                                     {"Authorization": KEY}, bearer("")])
def test_wrong_keys_are_refused(client, headers):
    assert client.get("/v1/models", headers=headers).status_code == 401


def test_the_right_key_is_accepted(client):
    assert client.get("/v1/models", headers=bearer(KEY)).status_code == 200
    assert client.get("/v1/models", headers={"authorization": f"bearer {KEY}"}).status_code == 200
    response = client.post("/v1/chat/completions", headers=bearer(KEY),
                           json={"model": "default", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200


def test_unauthenticated_requests_do_not_reach_the_engine():
    engine = FakeEngine()
    client = TestClient(build_api(Services(engine=engine, web=WebConfig(api_key=KEY))))
    response = client.post("/v1/chat/completions", json={"model": "default", "messages": [{"role": "user",
                                                                                            "content": "hi"}]})
    assert response.status_code == 401 and engine.calls == []


def test_without_a_key_everything_is_open():
    client = TestClient(build_api(Services(engine=FakeEngine())))
    assert client.get("/v1/models").status_code == 200


def test_open_paths():
    gate = Gate(api_key=KEY)
    assert gate.enabled and gate.is_open("/api/health") and gate.is_open("/login") and gate.is_open("/logout")
    for path in ("/v1/models", "/api", "/", "/gradio_api/info", "/metrics", "/api/health/x", "/loginx"):
        assert not gate.is_open(path)
    assert Gate(api_key=KEY, metrics_public=True).is_open("/metrics")
    assert not Gate().enabled and Gate().is_open("/v1/models")


def test_the_openai_client_works_with_the_key(client):
    openai = pytest.importorskip("openai")

    good = openai.OpenAI(base_url="http://testserver/v1", api_key=KEY, http_client=client, max_retries=0)
    assert [m.id for m in good.models.list()] == ["fake-model"]
    answer = good.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hello there, friend." and answer.usage.total_tokens > 0
    bad = openai.OpenAI(base_url="http://testserver/v1", api_key="nope", http_client=client, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def run_app(*args: str) -> subprocess.CompletedProcess:
    from bench.live_app import free_port

    # A remote backend on a closed port fails right after the start-up checks: fast, no model load.
    closed = f"http://127.0.0.1:{free_port()}/v1"
    return subprocess.run([sys.executable, "app.py", "--backend", "openai", "--base-url", closed, *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_exposure_warnings():
    import app

    def warning(signed_in=False, **web):
        return app.exposure_warning(WebConfig(**web), Gate(api_key=KEY) if signed_in else Gate())

    assert warning() is None and warning(host="localhost") is None
    assert "without --api-key or --auth" in warning(host="0.0.0.0")
    assert warning(host="0.0.0.0", signed_in=True) is None  # one rule: every route is signed in


def test_serving_on_all_interfaces_without_auth_prints_the_warning():
    exposed = run_app("--host", "0.0.0.0")
    assert "WARNING: serving on 0.0.0.0 without --api-key or --auth" in exposed.stderr
    # ...and an unreachable remote server is a clear one-line error, not a traceback.
    assert exposed.returncode == 2 and "Cannot reach the model server" in exposed.stderr
    assert "--base-url" in exposed.stderr and "Traceback" not in exposed.stderr
