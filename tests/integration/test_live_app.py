"""The app launched as users launch it, on a free loopback port, driven over HTTP."""

from __future__ import annotations

import httpx

from engine.embedded import EMBEDDED_MODEL


def test_health_reports_model_device_and_version(live_app):
    data = httpx.get(live_app.url + "/api/health", timeout=10).json()
    assert data["status"] == "ok" and data["model"] == data["default_model"] == EMBEDDED_MODEL.model_id
    assert data["device"] in ("cpu", "cuda", "dcu", "rocm") and data["version"]


def test_gradio_client_chat_returns_a_reply(live_app):
    from gradio_client import Client

    client = Client(live_app.url, verbose=False)
    display, box = client.predict("Hello! What is 2 + 2?", api_name="/chat", max_new_tokens=32, temperature=0)
    assert box == ""
    assert display[-1]["role"] == "assistant"
    reply = "".join(part.get("text", "") for part in display[-1]["content"]) if isinstance(
        display[-1]["content"], list) else display[-1]["content"]
    assert reply.strip() and "TTFT" in reply


def test_the_ui_page_is_served(live_app):
    page = httpx.get(live_app.url + "/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
