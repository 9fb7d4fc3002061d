"""The OpenAI-compatible routes with a fake engine, in-process (FastAPI TestClient)."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from fakes import FakeEngine
from fastapi.testclient import TestClient
from openai_support import RecordingEngine, serve_in_thread, wait_until

from engine.errors import EngineBusy, OutOfMemory
from webui.api import build_api
from webui.services import Services, WebConfig

USER = [{"role": "user", "content": "Say hello"}]


def client_for(engine=None, embedder=None, **web) -> TestClient:
    services = Services(engine=engine or FakeEngine(), web=WebConfig(**web), embedder=embedder)
    return TestClient(build_api(services), raise_server_exceptions=False)


def chat(client: TestClient, **body) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": "default", "messages": USER, **body})


def sse_events(response: httpx.Response) -> list:
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines), lines
    return [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_models_lists_the_engine_model_and_the_embedder():
    from rag.embedding import HashingEmbedder

    data = client_for(embedder=HashingEmbedder(dim=16)).get("/v1/models").json()
    assert data["object"] == "list"
    ids = [m["id"] for m in data["data"]]
    assert ids == ["fake-model", "hashing-16"]
    assert all(m["object"] == "model" and m["owned_by"] for m in data["data"])
    client = client_for()
    assert client.get("/v1/models/default").json()["id"] == "fake-model"
    assert_openai_error(client.get("/v1/models/nope"), 404)


def test_non_streamed_answer_has_usage_finish_reason_and_stats():
    response = chat(client_for(), temperature=0)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "fake-model"  # the alias resolves to the real name
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there, friend."}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == 2 and usage["completion_tokens"] == 3 and usage["total_tokens"] == 5
    assert body["x_stats"]["ttft_s"] == 0.01 and body["x_stats"]["device"] == "cpu"


def test_the_engine_model_name_is_accepted_and_unknown_models_are_404():
    client = client_for()
    assert chat(client, model="fake-model").status_code == 200
    error = assert_openai_error(chat(client, model="gpt-4o"), 404)
    assert error["param"] == "model" and error["code"] == "model_not_found" and "fake-model" in error["message"]


def test_sampling_parameters_are_mapped():
    engine = FakeEngine()
    client = client_for(engine)
    chat(client, temperature=0.2, top_p=0.5, max_tokens=7, stop="END", seed=3)
    params = engine.calls[-1]["params"]
    assert (params.temperature, params.top_p, params.max_new_tokens, params.stop, params.seed) == (
        0.2, 0.5, 7, ("END",), 3)
    chat(client, max_tokens=7, max_completion_tokens=9, stop=["a", "b"])
    params = engine.calls[-1]["params"]
    assert params.max_new_tokens == 9 and params.stop == ("a", "b")
    chat(client)  # OpenAI's defaults where the request says nothing
    params = engine.calls[-1]["params"]
    assert (params.temperature, params.top_p, params.top_k, params.repetition_penalty) == (1.0, 1.0, 0, 1.0)


def test_messages_are_converted_for_the_engine():
    engine = FakeEngine()
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "system", "content": "Be kind."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": None}, {"role": "user", "content": "Again"}]
    response = client_for(engine).post("/v1/chat/completions", json={"model": "default", "messages": messages})
    assert response.status_code == 200
    assert engine.calls[-1]["messages"] == [
        {"role": "system", "content": "Be brief.\n\nBe kind."}, {"role": "user", "content": "Hi\nthere"},
        {"role": "assistant", "content": ""}, {"role": "user", "content": "Again"}]


@pytest.mark.parametrize("body, param", [
    ({"temperature": 3}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"content": "no role"}]}, "messages[0].role"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "assistant", "content": "x"}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content"),
    ({"n": 2}, "n"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function.name"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
    ({"response_format": {"type": "xml"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format.json_schema.schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "patternProperties": {"^a": {"type": "string"}}}}}}, "response_format"),
    ({"chat_template_kwargs": {"messages": []}}, "chat_template_kwargs"),
    ({"model": None}, "model"),
])
def test_invalid_requests_are_400_in_openai_format(body, param):
    error = assert_openai_error(chat(client_for(), **body), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_an_image_part_is_400_when_no_served_model_reads_images():
    body = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}
    error = assert_openai_error(chat(client_for(), **body), 400)
    assert error["param"] == "messages" and "None of the models served here can" in error["message"]


def test_malformed_json_is_400_not_422():
    response = client_for().post("/v1/chat/completions", content=b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert "JSON" in assert_openai_error(response, 400)["message"]


def test_other_routes_keep_fastapis_422():
    from pydantic import BaseModel

    class Body(BaseModel):
        name: str

    app = build_api(Services(engine=FakeEngine()))

    @app.post("/api/echo")
    def echo(body: Body) -> dict:
        return {"name": body.name}

    assert TestClient(app).post("/api/echo", json={"wrong": 1}).status_code == 422


def test_streamed_answer_is_sse_chunks_ending_with_done():
    response = chat(client_for(), stream=True)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello there, friend."
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert "usage" not in chunks[-1] and chunks[-1]["x_stats"]["completion_tokens"] == 3


def test_stream_options_include_usage_adds_a_usage_chunk():
    events = sse_events(chat(client_for(), stream=True, stream_options={"include_usage": True}))
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] == 5


def test_length_finish_reason():
    from engine.stats import GenerationStats

    class LengthEngine(FakeEngine):
        def stream_chat(self, messages, params=None, session_id=None, cancel=None):
            yield "cut"
            yield GenerationStats(completion_tokens=params.max_new_tokens, finish_reason="length")

    body = chat(client_for(LengthEngine()), max_tokens=1).json()
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 1


@pytest.mark.parametrize("error, status, kind", [
    (EngineBusy("The server is busy (3 requests waiting). Please try again in a moment."), 429, "rate_limit_error"),
    (OutOfMemory("The CUDA ran out of memory for this request."), 503, "server_error"),
])
def test_engine_errors_map_to_status_codes(error, status, kind):
    for stream in (False, True):
        body = assert_openai_error(chat(client_for(FakeEngine(error=error)), stream=stream), status)
        assert body["type"] == kind and body["message"] == str(error)


def test_error_after_the_first_token_is_an_error_event():
    class Failing(FakeEngine):
        def stream_chat(self, messages, params=None, session_id=None, cancel=None):
            yield "partial"
            raise OutOfMemory("The CUDA ran out of memory mid-answer.")

    events = sse_events(chat(client_for(Failing()), stream=True))
    assert events[-1] == "[DONE]" and events[-2]["error"]["message"] == "The CUDA ran out of memory mid-answer."


def test_embeddings_float_and_base64():
    from rag.embedding import HashingEmbedder

    client = client_for(embedder=HashingEmbedder(dim=16))
    body = client.post("/v1/embeddings", json={"model": "default", "input": ["a cat", "a dog"]}).json()
    assert body["object"] == "list" and body["model"] == "hashing-16"
    assert [d["index"] for d in body["data"]] == [0, 1] and len(body["data"][0]["embedding"]) == 16
    assert abs(np.linalg.norm(body["data"][0]["embedding"]) - 1) < 1e-4 and body["usage"]["prompt_tokens"] > 0
    encoded = client.post("/v1/embeddings", json={"model": "hashing-16", "input": "a cat",
                                                  "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vector, body["data"][0]["embedding"], atol=1e-6)


def test_embeddings_errors():
    from rag.embedding import HashingEmbedder

    assert "not available" in assert_openai_error(
        client_for().post("/v1/embeddings", json={"model": "default", "input": "x"}), 503)["message"]
    client = client_for(embedder=HashingEmbedder(dim=16))
    assert_openai_error(client.post("/v1/embeddings", json={"model": "nope", "input": "x"}), 404)
    assert_openai_error(client.post("/v1/embeddings", json={"model": "default", "input": [""]}), 400)
    assert_openai_error(client.post("/v1/embeddings", json={"model": "default", "input": [[1, 2]]}), 400)
    assert_openai_error(client.post("/v1/embeddings", json={"model": "default", "input": "x", "dimensions": 8}), 400)


def test_request_too_large_is_413():
    client = client_for(max_request_bytes=2000)
    big = [{"role": "user", "content": "x" * 5000}]
    error = assert_openai_error(client.post("/v1/chat/completions", json={"model": "default", "messages": big}), 413)
    assert error["code"] == "request_too_large"


# --- disconnects need a real server: the TestClient runs a request to completion first ---

@pytest.fixture()
def served():
    engine = RecordingEngine(reply=" ".join(["word"] * 200), delay=0.05)
    with serve_in_thread(build_api(Services(engine=engine))) as url:
        yield engine, url


def test_closing_a_stream_cancels_generation(served):
    engine, url = served
    body = {"model": "default", "messages": USER, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=10) as response:
        for line in response.iter_lines():
            if '"content": "word"' in line or '"content": " word"' in line:
                break
    assert wait_until(lambda: engine.cancels and engine.cancels[-1].is_set())


def test_a_client_timing_out_cancels_a_non_streamed_answer(served):
    engine, url = served
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json={"model": "default", "messages": USER}, timeout=0.5)
    assert wait_until(lambda: engine.cancels and engine.cancels[-1].is_set())
