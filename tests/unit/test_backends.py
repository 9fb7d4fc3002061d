"""The remote (OpenAI-compatible) backend against our own /v1 over real HTTP, its error mapping,
and the parts of the vLLM backend that can be checked without vllm."""

from __future__ import annotations

import json
import sys
import threading

import httpx
import pytest
from openai_support import RecordingEngine, serve_in_thread, wait_until

from engine.backends.openai import OpenAIBackend
from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.errors import ConfigError, EngineBusy, ModelLoadError, PromptTooLong, RemoteError
from engine.history import estimate_tokens
from engine.stats import GenerationStats
from webui.api import build_api
from webui.services import Services, WebConfig

USER = [{"role": "user", "content": "Say hello"}]
KEY = "remote-secret"


@pytest.fixture(scope="module")
def remote():
    """A dcu-chat API (fake engine, API key on) served over HTTP: the 'remote server'."""
    engine = RecordingEngine(reply="Hello there, friend.")
    with serve_in_thread(build_api(Services(engine=engine, web=WebConfig(api_key=KEY)))) as url:
        yield engine, url + "/v1"


def remote_config(url: str, **kwargs) -> EngineConfig:
    return EngineConfig(backend="openai", base_url=url, remote_api_key=KEY, **kwargs)


def run(backend, messages=USER, params=None, cancel=None) -> tuple[str, GenerationStats]:
    parts, stats = [], None
    for item in backend.stream_chat(messages, params or SamplingParams(), None, cancel or threading.Event()):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            parts.append(item)
    return "".join(parts), stats


def test_load_picks_the_first_model_and_describes_the_remote(remote):
    _, url = remote
    backend = OpenAIBackend.load(remote_config(url))
    info = backend.info
    assert info.model == "fake-model" and info.backend == "openai" and info.device == "remote"
    assert info.device_name.startswith("127.0.0.1:") and info.context_length == 2048


def test_streams_the_answer_with_server_usage_and_stats(remote):
    engine, url = remote
    text, stats = run(OpenAIBackend.load(remote_config(url)))
    assert text == "Hello there, friend."
    assert (stats.prompt_tokens, stats.completion_tokens) == (2, 3)  # the server's usage, not an estimate
    assert stats.finish_reason == "stop" and stats.device == "remote" and 0 < stats.ttft_s <= stats.total_s
    assert stats.extra["remote"]["device"] == "cpu" and "approximate_usage" not in stats.extra
    assert engine.calls[-1]["messages"] == USER


def test_sampling_parameters_reach_the_server(remote):
    engine, url = remote
    params = SamplingParams(temperature=0.3, top_p=0.8, max_new_tokens=5, stop=("END", "STOP"), seed=11)
    run(OpenAIBackend.load(remote_config(url)), params=params)
    sent = engine.calls[-1]["params"]
    assert (sent.temperature, sent.top_p, sent.max_new_tokens, sent.stop, sent.seed) == (0.3, 0.8, 5, ("END", "STOP"), 11)


def test_the_engine_facade_works_the_same_on_the_remote_backend(remote):
    _, url = remote
    engine = Engine.load(remote_config(url))
    text, stats = engine.chat(USER)
    assert text == "Hello there, friend." and stats.completion_tokens == 3
    assert engine.count_tokens("hello world") == estimate_tokens("hello world")
    assert engine.queue.capacity > 1  # the remote server batches; our queue lets several through


def test_cancel_closes_the_http_stream_and_stops_the_server(remote):
    engine, url = remote
    engine.reply, engine.delay = " ".join(["word"] * 300), 0.02
    try:
        backend, cancel = OpenAIBackend.load(remote_config(url)), threading.Event()
        stream = backend.stream_chat(USER, SamplingParams(), None, cancel)
        assert next(stream).strip() == "word"
        stream.close()  # what a Stop button or a dropped client does
        assert wait_until(lambda: engine.cancels[-1].is_set())
        stream = backend.stream_chat(USER, SamplingParams(), None, cancel)
        cancel.set()
        items = list(stream)
        assert items[-1].finish_reason == "cancelled" and len(items) < 10
    finally:
        engine.reply, engine.delay = "Hello there, friend.", 0.0


def test_load_errors_are_clear(remote):
    _, url = remote
    with pytest.raises(ModelLoadError, match="--remote-api-key"):
        OpenAIBackend.load(EngineConfig(backend="openai", base_url=url, remote_api_key="wrong"))
    with pytest.raises(ModelLoadError, match="no model 'nope'.*fake-model.*--remote-model"):
        OpenAIBackend.load(remote_config(url, remote_model="nope"))
    from bench.live_app import free_port

    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelLoadError, match=f"Cannot reach the model server at {closed}.*--base-url"):
        OpenAIBackend.load(EngineConfig(backend="openai", base_url=closed))
    with pytest.raises(ConfigError, match="--base-url"):
        EngineConfig(backend="openai")


# --- error mapping with a scripted server (httpx.MockTransport) ---

MODELS = {"object": "list", "data": [{"id": "m1", "object": "model", "max_model_len": 4096}]}


def scripted(chat_response) -> OpenAIBackend:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json=MODELS)
        return chat_response(request) if callable(chat_response) else chat_response

    return OpenAIBackend.load(EngineConfig(backend="openai", base_url="http://remote.test/v1"),
                              transport=httpx.MockTransport(handler))


def sse(*events) -> httpx.Response:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def test_context_length_comes_from_vllms_max_model_len():
    assert scripted(sse()).info.context_length == 4096


@pytest.mark.parametrize("response, error, words", [
    (httpx.Response(429, json={"error": {"message": "slow down"}}), EngineBusy, "busy"),
    (httpx.Response(400, json={"error": {"message": "This model's maximum context length is 4096 tokens"}}),
     PromptTooLong, "too long"),
    (httpx.Response(400, json={"error": {"message": "temperature is bad"}}), ConfigError, "temperature is bad"),
    (httpx.Response(404, json={"error": {"message": "no such model"}}), RemoteError, "--remote-model"),
    (httpx.Response(500, text="boom"), RemoteError, "HTTP 500: boom"),
    (sse({"choices": [{"delta": {"content": "a"}}]}, {"error": {"message": "worker died"}}), RemoteError,
     "worker died"),
])
def test_server_errors_become_engine_errors(response, error, words):
    with pytest.raises(error, match=words):
        run(scripted(response))


def test_connection_lost_mid_session_is_a_remote_error():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RemoteError, match="Cannot reach the model server at http://remote.test/v1"):
        run(scripted(refuse))


def test_without_server_usage_counts_are_estimated_and_length_is_reported():
    chunks = [{"choices": [{"delta": {"content": w}, "finish_reason": None}]} for w in ("one", " two", " three")]
    text, stats = run(scripted(sse(*chunks, {"choices": [{"delta": {}, "finish_reason": "length"}]})))
    assert text == "one two three"
    assert stats.completion_tokens == 3 and stats.prompt_tokens > 0 and stats.extra["approximate_usage"]
    assert stats.finish_reason == "length"


def test_long_histories_are_trimmed_to_the_remote_context():
    seen = {}

    def capture(request):
        seen.update(json.loads(request.content))
        return sse()

    backend = scripted(capture)
    long = "word " * 2000  # ~2500 estimated tokens each; the context is 4096
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": long},
               {"role": "assistant", "content": long}, {"role": "user", "content": "And now?"}]
    _, stats = run(backend, history, SamplingParams(max_new_tokens=64))
    assert [m["content"] for m in seen["messages"]] == ["Be brief.", "And now?"] and stats.trimmed_messages == 2
    assert seen["stream"] is True and seen["stream_options"] == {"include_usage": True} and seen["max_tokens"] == 64


def test_estimate_tokens():
    assert estimate_tokens("") == 0 and estimate_tokens("hello world") == 3
    assert estimate_tokens("你好世界") == 4 and estimate_tokens("你好 world") == 2 + 2
    assert estimate_tokens("中文字") == 3 and estimate_tokens("abcdefgh") == 2


# --- vLLM: only what can be checked without the package (it needs a CUDA/ROCm card) ---

def test_vllm_missing_package_is_a_clear_load_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError, even where it is installed
    with pytest.raises(ModelLoadError, match=r"pip install '\.\[vllm\]'"):
        Engine.load(EngineConfig(backend="vllm"))


def test_vllm_options_map_to_engine_args():
    from engine.backends.vllm import engine_args, vllm_quantization

    assert [vllm_quantization(q) for q in (None, "4bit", "8bit")] == [None, "bitsandbytes", "fp8"]
    with pytest.raises(ConfigError, match="int8"):
        vllm_quantization("int8")
    args = engine_args(EngineConfig(backend="vllm", tensor_parallel_size=2, dtype="bfloat16", max_context=4096),
                       "/models/qwen")
    assert args == {"model": "/models/qwen", "tokenizer": "/models/qwen", "tensor_parallel_size": 2,
                    "dtype": "bfloat16", "trust_remote_code": False, "quantization": None, "max_model_len": 4096}


def test_vllm_constrains_json_schemas_with_the_field_its_version_has():
    from types import SimpleNamespace

    from engine.backends.vllm import structured_output_kwargs

    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    made = lambda **kw: kw  # noqa: E731 (stands in for vLLM's params classes)
    current = structured_output_kwargs(schema, SimpleNamespace(StructuredOutputsParams=made, GuidedDecodingParams=made))
    assert current == {"structured_outputs": {"json": schema}}
    assert structured_output_kwargs(schema, SimpleNamespace(GuidedDecodingParams=made)) == {
        "guided_decoding": {"json": schema}}
    assert structured_output_kwargs(None, SimpleNamespace()) == {}
    with pytest.raises(ConfigError, match="upgrade"):
        structured_output_kwargs(schema, SimpleNamespace())
