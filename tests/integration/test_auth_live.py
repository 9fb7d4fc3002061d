"""``python app.py --auth alice:pw1`` as users start it: every route but /api/health answers 401
without credentials and works with alice's token (made with ``python app.py users token``); the
start-up output says what is protected; the browser sign-in and ``gradio_client`` work."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from bench.live_app import ROOT

ROUTES = [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/api/collections"),
          ("POST", "/api/collections/default/search"), ("GET", "/api/collections/default/documents"),
          ("GET", "/api/sessions"), ("GET", "/metrics"), ("GET", "/"), ("GET", "/config"),
          ("GET", "/gradio_api/info"), ("GET", "/api/docs")]
BODIES = {"/v1/chat/completions": {"model": "default", "max_tokens": 2,
                                   "messages": [{"role": "user", "content": "Hi"}]},
          "/api/collections/default/search": {"query": "warranty", "top_k": 1}}


@pytest.fixture(scope="module")
def alice(launch_app, tmp_path_factory):
    data = tmp_path_factory.mktemp("auth-live") / "data"
    made = subprocess.run([sys.executable, "app.py", "--data-dir", str(data), "--auth", "alice:pw1",
                           "users", "token", "alice", "--label", "test"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    app = launch_app("--auth", "alice:pw1", data_dir=data)
    return app, made.stdout.strip()


def test_every_route_but_health_needs_credentials(alice):
    app, token = alice
    assert httpx.get(app.url + "/api/health", timeout=10).status_code == 200
    for method, path in ROUTES:
        body = BODIES.get(path)
        anonymous = httpx.request(method, app.url + path, json=body, timeout=60)
        assert anonymous.status_code == 401, (path, anonymous.text[:200])
        wrong = httpx.request(method, app.url + path, json=body, timeout=60,
                              headers={"Authorization": "Bearer dcu_wrong"})
        assert wrong.status_code == 401, path
        ok = httpx.request(method, app.url + path, json=body, timeout=300,
                           headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, (path, ok.status_code, ok.text[:200])


def test_start_up_says_what_is_protected(alice):
    app, _ = alice
    log = app.log()
    assert "Sign-in: on: every route" in log and "except /api/health and /login" in log
    assert "Bearer <user API token>" in log


def test_gradio_client_signs_in_or_uses_the_token(alice):
    from gradio_client import Client

    app, token = alice
    by_password = Client(app.url, auth=("alice", "pw1"), verbose=False)
    assert by_password.view_api(print_info=False, return_format="dict")["named_endpoints"]
    by_token = Client(app.url, headers={"Authorization": f"Bearer {token}"}, verbose=False)
    assert "/chat" in by_token.view_api(print_info=False, return_format="dict")["named_endpoints"]
