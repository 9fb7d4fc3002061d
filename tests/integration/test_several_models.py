"""Two models in one server, for real: the embedded default under two names on two backends
(llama.cpp and transformers), room for one at a time, driven by the official ``openai`` client."""

from __future__ import annotations

import httpx
import openai
import pytest

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def two_models(launch_app):
    return launch_app("--model", "qwen-cpp=embedded,backend=llamacpp",
                      "--model", "qwen-hf=embedded,backend=transformers,max_batch=2",
                      "--max-loaded-models", "1")


def loaded(app) -> dict[str, bool]:
    return {m["id"]: m["x_loaded"] for m in httpx.get(app.url + "/v1/models", timeout=10).json()["data"]
            if m.get("x_kind") != "embedding"}


def test_each_model_answers_under_its_name_and_the_other_is_unloaded(two_models):
    client = openai.OpenAI(base_url=two_models.url + "/v1", api_key="unused", max_retries=0, timeout=600)
    assert loaded(two_models) == {"qwen-cpp": True, "qwen-hf": False}  # the first loads at start

    answers = {}
    for name in ("qwen-hf", "qwen-cpp", "default"):
        reply = client.chat.completions.create(model=name, messages=QUESTION, temperature=0, max_tokens=16)
        answers[name] = (reply.model, reply.choices[0].message.content, reply.model_extra["x_stats"])
        if name == "qwen-hf":  # room for one: loading it unloaded the llama.cpp one
            assert loaded(two_models) == {"qwen-cpp": False, "qwen-hf": True}
    assert answers["qwen-hf"][0] == "qwen-hf" and answers["qwen-cpp"][0] == answers["default"][0] == "qwen-cpp"
    for model, text, _ in answers.values():
        assert "Paris" in text, (model, text)
    assert answers["qwen-hf"][2]["extra"].get("backend") != "llamacpp"
    assert answers["qwen-cpp"][2]["extra"]["backend"] == "llamacpp"
    assert loaded(two_models) == {"qwen-cpp": True, "qwen-hf": False}

    health = httpx.get(two_models.url + "/api/health", timeout=10).json()
    assert health["default_model"] == "qwen-cpp" and health["backend"] == "llamacpp"
    assert [(m["id"], m["backend"]) for m in health["models"]] == [("qwen-cpp", "llamacpp"),
                                                                   ("qwen-hf", "transformers")]


def test_an_unknown_model_is_a_404_that_lists_the_served_ones(two_models):
    client = openai.OpenAI(base_url=two_models.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION, max_tokens=4)
    message = caught.value.body["message"]
    assert "'qwen-cpp', 'qwen-hf'" in message and caught.value.body["code"] == "model_not_found"
    assert [m.id for m in client.models.list().data][:2] == ["qwen-cpp", "qwen-hf"]
