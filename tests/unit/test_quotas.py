"""Per-user quotas: tokens per day and answers at once; 429 with Retry-After on /v1 and the ask
route, a clear gr.Error in the UI; usage per user and UTC day."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import gradio as gr
import pytest
from docs_support import REPORT_PAGES, make_pdf, make_services
from fakes import FakeEngine
from fastapi.testclient import TestClient

from assist.errors import QuotaExceeded
from assist.quotas import MeteredEngine, QuotaConfig, Quotas
from engine.errors import ConfigError
from webui.api import build_api
from webui.chat_tab import ChatHandlers
from webui.code_tab import code_event
from webui.docs_tab import DocsHandlers

CHAT = {"model": "default", "messages": [{"role": "user", "content": "hello there"}]}
ASK = {"question": "What is the warranty period of the X200 pump?"}


class Clock:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when


def make(tmp_path, **limits):
    services = make_services(tmp_path / "data", FakeEngine("It is 36 months [1]."))
    services.quotas = Quotas(QuotaConfig(**limits), tmp_path / "data" / "usage.sqlite3")
    services.store.add_files("default", [("report.pdf", make_pdf(REPORT_PAGES))])  # the local user's default
    return services


def as_(user: str) -> dict:
    return {"Authorization": "Bearer k", "X-DCU-User": user}


@pytest.fixture()
def keyed(tmp_path):
    """Services whose REST callers name themselves with X-DCU-User (trusted with --api-key)."""
    def build(**limits):
        services = make(tmp_path, **limits)
        services.web = type(services.web)(data_dir=services.web.data_dir, api_key="k")
        return services, TestClient(build_api(services))
    return build


def test_tokens_per_day_gives_429_with_retry_after_on_v1_and_ask(keyed):
    services, client = keyed(tokens_per_day=10)
    services.collections.create("alice", "docs")
    services.collections.add_files("alice", "docs", [("report.pdf", make_pdf(REPORT_PAGES))])
    first = client.post("/v1/chat/completions", headers=as_("alice"), json=CHAT)
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] > 0
    client.post("/v1/chat/completions", headers=as_("alice"), json=CHAT)  # two answers: over 10 tokens now
    refused = client.post("/v1/chat/completions", headers=as_("alice"), json=CHAT)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and "tokens for today" in error["message"]
    streamed = client.post("/v1/chat/completions", headers=as_("alice"), json={**CHAT, "stream": True})
    assert streamed.status_code == 429 and "retry-after" in streamed.headers
    for body in (ASK, {**ASK, "stream": True}):
        ask = client.post("/api/collections/docs/ask", headers=as_("alice"), json=body)
        assert ask.status_code == 429 and ask.json()["error"]["type"] == "QuotaExceeded"
        assert int(ask.headers["retry-after"]) > 0
    # bob has his own allowance; searching costs no tokens
    assert client.post("/v1/chat/completions", headers=as_("bob"), json=CHAT).status_code == 200
    assert client.post("/api/collections/docs/search", headers=as_("alice"), json={"query": "pump"}).status_code == 200
    assert services.quotas.usage()["alice"]["requests"] == 2


def test_max_concurrent_gives_429_while_a_user_has_an_answer_running(keyed):
    services, client = keyed(max_concurrent=1)
    with services.quotas.acquire("alice"):  # alice's first answer is still being written
        refused = client.post("/v1/chat/completions", headers=as_("alice"), json=CHAT)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
        assert "at once" in refused.json()["error"]["message"]
        assert client.post("/v1/chat/completions", headers=as_("bob"), json=CHAT).status_code == 200
    assert client.post("/v1/chat/completions", headers=as_("alice"), json=CHAT).status_code == 200
    assert services.quotas.running("alice") == 0  # every lease was given back


def test_the_ui_says_why_with_a_gr_error(tmp_path):
    services = make(tmp_path, tokens_per_day=5)
    services.quotas.charge("alice", 5)
    alice = SimpleNamespace(session_hash="tab", username="alice", headers={"accept-language": "en-US"})
    chat = ChatHandlers(FakeEngine(), quotas=services.quotas)
    with pytest.raises(gr.Error, match="tokens for today"):
        list(chat.respond("hi", request=alice))
    with pytest.raises(gr.Error, match="tokens for today"):
        services.collections.add_files("alice", "default", [("report.pdf", make_pdf(REPORT_PAGES))])
        list(DocsHandlers(services).ask(ASK["question"], "default", request=alice))
    with pytest.raises(gr.Error, match="tokens for today"):  # the Code tab too
        list(code_event(MeteredEngine(FakeEngine(), services.quotas, "alice"), "print hello"))
    bob = SimpleNamespace(session_hash="tab2", username="bob", headers={"accept-language": "en-US"})
    assert list(chat.respond("hi", request=bob))[-1][1][-1]["content"] == "Hello there, friend."


def test_usage_is_per_utc_day_and_survives_a_restart(tmp_path):
    clock = Clock(datetime(2026, 5, 1, 23, 30, tzinfo=timezone.utc))
    path = tmp_path / "usage.sqlite3"
    quotas = Quotas(QuotaConfig(tokens_per_day=100), path, clock=clock)
    quotas.charge("alice", 100)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.acquire("alice")
    assert refused.value.retry_after == 30 * 60 and "in 30 min" in str(refused.value)
    assert Quotas(QuotaConfig(tokens_per_day=100), path, clock=clock).used_today("alice") == 100
    clock.when = datetime(2026, 5, 2, 0, 0, 1, tzinfo=timezone.utc)
    quotas.acquire("alice").release()  # a new day: allowed again
    assert quotas.usage("2026-05-01") == {"alice": {"tokens": 100, "requests": 1}} and quotas.usage() == {}


def test_limits_are_validated():
    with pytest.raises(ConfigError, match="--user-tokens-per-day"):
        QuotaConfig(tokens_per_day=0)
    with pytest.raises(ConfigError, match="--user-max-concurrent"):
        QuotaConfig(max_concurrent=-1)


def test_cli_builds_the_quota_config():
    import app_settings

    args = app_settings.parser().parse_args(["--user-tokens-per-day", "5000", "--user-max-concurrent", "2"])
    config = app_settings.build_quota_config(app_settings.resolve_settings(args, environ={}))
    assert (config.tokens_per_day, config.max_concurrent) == (5000, 2)
