"""A second dcu-chat that uses the live app as its remote model (``--backend openai``).

It must answer through its own /v1 and through its UI exactly as a local model would: the UI,
RAG and Code only use ``engine.stream_chat`` / ``count_tokens`` / ``info``.
"""

from __future__ import annotations

import httpx
import pytest

PROMPT = [{"role": "user", "content": "Name three colours:"}]


@pytest.fixture(scope="module")
def remote(live_app, launch_app):
    return launch_app("--backend", "openai", "--base-url", live_app.url + "/v1")


def test_health_names_the_remote_model(remote, live_app):
    upstream = httpx.get(live_app.url + "/api/health", timeout=10).json()
    data = httpx.get(remote.url + "/api/health", timeout=10).json()
    assert data["backend"] == "openai" and data["device"] == "remote" and data["model"] == upstream["model"]


def test_answers_through_its_own_v1(remote, live_app):
    openai = pytest.importorskip("openai")

    client = openai.OpenAI(base_url=remote.url + "/v1", api_key="unused", max_retries=0, timeout=300)
    direct = openai.OpenAI(base_url=live_app.url + "/v1", api_key="unused", max_retries=0, timeout=300)
    # llama.cpp (the live app's default) computes a cached prompt's last token in a batch of one, which
    # may round differently from the full prefill; warm its prompt cache first so both calls below
    # run under the same conditions.
    direct.chat.completions.create(model="default", messages=PROMPT, max_tokens=1, temperature=0)
    via = client.chat.completions.create(model="default", messages=PROMPT, max_tokens=8, temperature=0)
    same = direct.chat.completions.create(model="default", messages=PROMPT, max_tokens=8, temperature=0)
    assert via.choices[0].message.content == same.choices[0].message.content  # greedy: same text either way
    assert via.usage.completion_tokens == same.usage.completion_tokens  # usage comes from the upstream server
    upstream_stats = via.model_extra["x_stats"]["extra"]["remote"]
    assert upstream_stats["device"] in ("cpu", "cuda", "dcu", "rocm")  # what the real backend reported
    chunks = list(client.chat.completions.create(model="default", messages=PROMPT, max_tokens=8, temperature=0,
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == via.choices[0].message.content


def test_answers_through_its_ui(remote):
    from gradio_client import Client

    client = Client(remote.url, verbose=False)
    display = client.predict("hi", api_name="/chat", max_new_tokens=16, temperature=0)[0]
    assert display[-1]["role"] == "assistant"
    content = display[-1]["content"]
    reply = "".join(p.get("text", "") for p in content) if isinstance(content, list) else content
    assert "TTFT" in reply  # the stats line under the answer


# --- the same backend against a real third-party server: llama.cpp's own HTTP server (xllamacpp) ---


@pytest.fixture(scope="module")
def llamacpp_url():
    """xllamacpp's HTTP server (llama.cpp's server code) on a random loopback port, with the default GGUF."""
    import signal

    xllamacpp = pytest.importorskip("xllamacpp")
    from engine.config import default_cache_dir
    from engine.embedded import embedded_gguf

    params = xllamacpp.CommonParams()
    params.model.path = str(embedded_gguf(default_cache_dir()))
    params.n_ctx = 2048
    params.n_parallel = 2
    params.verbosity = 0
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = xllamacpp.Server(params)
    for sig, handler in handlers.items():  # llama.cpp installs its own; pytest keeps its Ctrl+C
        signal.signal(sig, handler)
    assert server.listening_address.startswith("http://127.0.0.1:")
    yield server.listening_address
    del server


@pytest.fixture(scope="module")
def via_llamacpp(llamacpp_url, launch_app):
    return launch_app("--backend", "openai", "--base-url", llamacpp_url + "/v1")


def test_serves_llamacpp_servers_model(via_llamacpp, llamacpp_url):
    listed = httpx.get(llamacpp_url + "/v1/models", timeout=10).json()["data"][0]["id"]
    data = httpx.get(via_llamacpp.url + "/api/health", timeout=10).json()
    assert data["backend"] == "openai" and data["device"] == "remote" and data["model"] == listed


def test_answers_as_llamacpp_server_does(via_llamacpp, llamacpp_url):
    openai = pytest.importorskip("openai")

    ours = openai.OpenAI(base_url=via_llamacpp.url + "/v1", api_key="unused", max_retries=0, timeout=300)
    theirs = openai.OpenAI(base_url=llamacpp_url + "/v1", api_key="unused", max_retries=0, timeout=300)
    model = theirs.models.list().data[0].id
    via = ours.chat.completions.create(model="default", messages=PROMPT, max_tokens=8, temperature=0)
    direct = theirs.chat.completions.create(model=model, messages=PROMPT, max_tokens=8, temperature=0)
    assert via.choices[0].message.content == direct.choices[0].message.content  # greedy: the same text
    assert via.usage.completion_tokens == direct.usage.completion_tokens  # usage comes from llama.cpp
    chunks = list(ours.chat.completions.create(model="default", messages=PROMPT, max_tokens=8, temperature=0,
                                               stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == via.choices[0].message.content
