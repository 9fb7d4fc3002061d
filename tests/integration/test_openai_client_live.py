"""The official ``openai`` client against the live app (real default model), plus API key and UI login.

The model is tiny and CPU-bound (a few tokens per second here), so every answer is short.
Model output is never hard-coded: greedy decoding is deterministic, so a second request is
checked against the first.
"""

from __future__ import annotations

import httpx
import pytest

from engine.embedded import EMBEDDED_MODEL

openai = pytest.importorskip("openai")

PROMPT = [{"role": "user", "content": "Count from one to ten: one, two,"}]
KEY = "integration-key"


@pytest.fixture(scope="module")
def client(live_app):
    return openai.OpenAI(base_url=live_app.url + "/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def model(live_app) -> str:
    return httpx.get(live_app.url + "/api/health", timeout=10).json()["model"]


@pytest.fixture(scope="module")
def greedy(client):
    """One greedy answer that the stop and max_tokens tests compare against."""
    return client.chat.completions.create(model="default", messages=PROMPT, max_tokens=12, temperature=0)


def test_lists_the_served_model(client, model):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == model == EMBEDDED_MODEL.model_id
    assert client.models.retrieve("default").id == model


def test_non_streamed_answer_has_usage(greedy, model):
    assert greedy.object == "chat.completion" and greedy.model == model
    choice = greedy.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    usage = greedy.usage
    assert usage.prompt_tokens > 5 and 1 <= usage.completion_tokens <= 12
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    stats = greedy.model_extra["x_stats"]  # our own per-answer stats ride along
    assert stats["ttft_s"] > 0 and stats["device"] in ("cpu", "cuda", "dcu", "rocm")


def test_streamed_answer_matches_the_non_streamed_one(client, greedy):
    stream = client.chat.completions.create(model="default", messages=PROMPT, max_tokens=12, temperature=0,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == greedy.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == greedy.choices[0].finish_reason and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == greedy.usage.completion_tokens


def test_max_tokens_limits_the_answer(client):
    answer = client.chat.completions.create(model="default", messages=PROMPT, max_tokens=2, temperature=0)
    assert answer.usage.completion_tokens <= 2
    assert answer.choices[0].finish_reason == "length" or answer.usage.completion_tokens < 2


def test_stop_cuts_the_answer_where_the_stop_string_starts(client, greedy):
    text = greedy.choices[0].message.content
    starts = [i for i in range(1, len(text) - 1) if not text[i:i + 2].isspace() and text.find(text[i:i + 2]) == i]
    if not starts:
        pytest.skip(f"the greedy answer {text!r} is too short to pick a stop string from")
    stop = text[starts[len(starts) // 2]:][:2]
    answer = client.chat.completions.create(model="default", messages=PROMPT, max_tokens=12, temperature=0,
                                            stop=[stop, "never-appears"])
    assert answer.choices[0].message.content == text[:text.find(stop)]
    assert answer.choices[0].finish_reason == "stop"


def test_embeddings_with_the_bundled_embedder(client):
    result = client.embeddings.create(model="default", input=["a cat sat on the mat", "GPU memory"])
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) == 384
    assert abs(sum(x * x for x in result.data[0].embedding) - 1) < 1e-3 and result.usage.prompt_tokens > 0


def test_bad_requests_are_400_and_unknown_models_404(client):
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="default", messages=PROMPT, temperature=5, max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="default", messages=[], max_tokens=2)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=PROMPT, max_tokens=2)


@pytest.fixture(scope="module")
def locked(launch_app):
    """A second instance with an API key and a UI login."""
    return launch_app("--api-key", KEY, "--auth", "ann:secret-pw")


def test_api_key_401_and_200(locked):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=locked.url + "/v1", api_key="wrong", max_retries=0).models.list()
    missing = httpx.get(locked.url + "/v1/models", timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    good = openai.OpenAI(base_url=locked.url + "/v1", api_key=KEY, max_retries=0, timeout=300)
    assert [m.id for m in good.models.list()]
    answer = good.chat.completions.create(model="default", messages=PROMPT, max_tokens=2, temperature=0)
    assert answer.usage.completion_tokens >= 1
    assert httpx.get(locked.url + "/api/health", timeout=10).status_code == 200  # no key needed
    assert httpx.get(locked.url + "/api/sessions", timeout=10).status_code == 401


def test_the_ui_needs_its_login_while_the_api_uses_the_key(locked):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    assert httpx.get(locked.url + "/config", timeout=10).status_code == 401  # the UI's config needs the login
    with pytest.raises(AuthenticationError):
        Client(locked.url, verbose=False)
    with pytest.raises(AuthenticationError, match="Invalid credentials"):  # /login answers 401
        Client(locked.url, auth=("ann", "wrong"), verbose=False)
    client = Client(locked.url, auth=("ann", "secret-pw"), verbose=False)
    display = client.predict("hi", api_name="/chat", max_new_tokens=16, temperature=0)[0]
    assert display[-1]["role"] == "assistant"
