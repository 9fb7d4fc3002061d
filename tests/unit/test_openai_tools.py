"""/v1 reasoning, tool calls and structured output, end to end with the official ``openai`` client.

A real server on a loopback port, the real ``Engine`` facade, parsers and wire format, and a
scripted backend that writes outputs in the real formats (tests/data/model_outputs.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import ScriptedBackend
from openai_support import serve_in_thread

from engine.engine import Engine
from engine.json_schema import for_decoding
from webui.api import build_api
from webui.services import Services, WebConfig

openai = pytest.importorskip("openai")

OUTPUTS = {c["name"]: c for c in json.loads(
    (Path(__file__).parent.parent / "data" / "model_outputs.json").read_text())["outputs"]}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"]}}}
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


class Server:
    def __init__(self, backend: ScriptedBackend):
        self.backend = backend
        self._serving = serve_in_thread(build_api(Services(engine=Engine(backend), web=WebConfig())))

    def __enter__(self):
        url = self._serving.__enter__()
        return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)

    def __exit__(self, *exc):
        return self._serving.__exit__(*exc)


def text_of(name: str) -> str:
    return OUTPUTS[name]["text"]


def test_reasoning_content_on_the_message_and_reasoning_tokens_in_usage():
    backend = ScriptedBackend(text_of("qwen3_thinking_answer"))
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=USER)
    message = answer.choices[0].message
    assert message.content == "17 × 3 = **51**."
    assert message.model_extra["reasoning_content"] == OUTPUTS["qwen3_thinking_answer"]["reasoning"]
    assert answer.usage.completion_tokens_details.reasoning_tokens == backend.count_tokens(
        OUTPUTS["qwen3_thinking_answer"]["reasoning"])
    assert answer.choices[0].finish_reason == "stop"


def test_reasoning_streams_as_reasoning_content_deltas_before_the_answer():
    backend = ScriptedBackend(text_of("deepseek_r1_distill_template_opened"), opened_thinking=True)
    with Server(backend) as client:
        chunks = list(client.chat.completions.create(model="default", messages=USER, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    kinds = [("reasoning" if (d.model_extra or {}).get("reasoning_content") else "content")
             for d in deltas if (d.model_extra or {}).get("reasoning_content") or d.content]
    assert kinds.index("content") > 1 and "reasoning" not in kinds[kinds.index("content"):]
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == \
        OUTPUTS["deepseek_r1_distill_template_opened"]["reasoning"]
    assert "".join(d.content or "" for d in deltas) == "The capital of France is Paris."
    assert "<think>" not in "".join(d.content or "" for d in deltas)


@pytest.mark.parametrize("how", ["max_tokens", "stop"])
def test_a_think_block_cut_off_by_max_tokens_or_a_stop_string(how):
    backend = ScriptedBackend("<think>\nFirst I add the tens, then the ones, and then I answer.\n</think>\n\n42")
    kwargs = {"max_tokens": 12} if how == "max_tokens" else {"stop": ["then I"]}
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=USER, **kwargs)
        chunks = list(client.chat.completions.create(model="default", messages=USER, stream=True, **kwargs))
    message = answer.choices[0].message
    assert message.model_extra["reasoning_content"].startswith("First I add the ")
    assert not message.content
    assert answer.choices[0].finish_reason == ("length" if how == "max_tokens" else "stop")
    streamed = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                       for c in chunks if c.choices)
    assert streamed == message.model_extra["reasoning_content"]
    assert chunks[-1].choices[0].finish_reason == answer.choices[0].finish_reason


def test_a_tool_call_comes_back_as_tool_calls_with_an_id():
    backend = ScriptedBackend(text_of("qwen3_hermes_tool_call_after_thinking"))
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=USER, tools=[WEATHER])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}
    assert choice.message.content is None
    assert backend.calls[0]["params"].tools == (WEATHER,) and backend.calls[0]["params"].json_schema is None


def test_tool_call_deltas_stream_and_add_up():
    backend = ScriptedBackend(text_of("qwen25_hermes_parallel_calls"), chars_per_token=2)
    with Server(backend) as client:
        chunks = list(client.chat.completions.create(model="default", messages=USER, tools=[WEATHER], stream=True))
    calls: dict[int, dict] = {}
    pieces = 0
    for chunk in chunks:
        for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            pieces += 1
            call = calls.setdefault(piece.index, {"id": piece.id, "name": piece.function.name, "arguments": ""})
            call["arguments"] += piece.function.arguments or ""
    assert pieces > 4  # arguments arrive in several deltas, as OpenAI streams them
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_weather"]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [{"city": "Paris"}, {"city": 'Tokyo, "JP" {x}'}]
    assert len({c["id"] for c in calls.values()}) == 2
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_parallel_tool_calls_false_returns_only_the_first_call():
    backend = ScriptedBackend(text_of("qwen25_hermes_parallel_calls"))
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=USER, tools=[WEATHER],
                                                parallel_tool_calls=False)
        both = client.chat.completions.create(model="default", messages=USER, tools=[WEATHER])
    (call,) = answer.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Paris"} and answer.choices[0].finish_reason == "tool_calls"
    assert len(both.choices[0].message.tool_calls) == 2


def test_a_tool_result_round_trip():
    backend = ScriptedBackend(text_of("llama31_json_call"), "It is 21 °C and sunny in Paris.")
    with Server(backend) as client:
        first = client.chat.completions.create(model="default", messages=USER, tools=[WEATHER])
        call = first.choices[0].message.tool_calls[0]
        history = [*USER, first.choices[0].message.model_dump(exclude_none=True),
                   {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21, "sky": "sunny"}'}]
        second = client.chat.completions.create(model="default", messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "It is 21 °C and sunny in Paris."
    assert second.choices[0].finish_reason == "stop"
    sent = backend.calls[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call.id and sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[2]["tool_call_id"] == call.id and "21" in sent[2]["content"]


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_required_or_named_call_is_decoded_under_the_calls_schema(choice):
    backend = ScriptedBackend(text_of("forced_call_constrained_json"))
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=USER, tools=[WEATHER, other],
                                                tool_choice=choice)
    assert answer.choices[0].message.tool_calls[0].function.name == "get_weather"
    schema = backend.calls[0]["params"].json_schema
    names = [s["properties"]["name"]["const"] for s in schema.get("anyOf", [schema])]
    assert names == (["get_weather", "get_time"] if choice == "required" else ["get_weather"])
    # The engine closes objects for decoding (engine/json_schema.for_decoding).
    assert all(s["properties"]["arguments"] in (for_decoding(WEATHER["function"]["parameters"]), {"type": "object"})
               for s in schema.get("anyOf", [schema]))


def test_tool_choice_none_hides_the_tools_and_reads_no_calls():
    backend = ScriptedBackend(text_of("llama31_json_call"))
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=USER, tools=[WEATHER], tool_choice="none")
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].message.content.startswith("{")
    assert backend.calls[0]["params"].tools == ()


def test_response_format_reaches_the_engine_as_a_schema():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    backend = ScriptedBackend('{"city": "Paris"}')
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=USER, response_format={
            "type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}})
        client.chat.completions.create(model="default", messages=USER, response_format={"type": "json_object"})
    assert json.loads(answer.choices[0].message.content) == {"city": "Paris"}
    assert backend.calls[0]["params"].json_schema == {**schema, "additionalProperties": False}
    assert backend.calls[1]["params"].json_schema == {"type": "object"}


def test_a_backend_that_cannot_constrain_decoding_refuses_schemas_with_a_reason():
    backend = ScriptedBackend('{"city": "Paris"}', enforces_json_schema=False)
    with Server(backend) as client:
        with pytest.raises(openai.BadRequestError, match="cannot constrain decoding"):
            client.chat.completions.create(model="default", messages=USER, response_format={"type": "json_object"})
        with pytest.raises(openai.BadRequestError, match="patternProperties"):
            client.chat.completions.create(model="default", messages=USER, response_format={
                "type": "json_schema", "json_schema": {"name": "x", "schema": {"patternProperties": {}}}})
    assert backend.calls == []


def test_chat_template_kwargs_and_earlier_thinking():
    backend = ScriptedBackend(text_of("qwen3_enable_thinking_false_empty_block"))
    history = [{"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "<think>\nThey greet me.\n</think>\n\nHello!"},
               {"role": "user", "content": "How are you?"}]
    with Server(backend) as client:
        answer = client.chat.completions.create(model="default", messages=history,
                                                extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert answer.choices[0].message.content == "Hello! How can I help you today?"
    assert "reasoning_content" not in answer.choices[0].message.model_extra
    params, sent = backend.calls[0]["params"], backend.calls[0]["messages"]
    assert params.template_kwargs == {"enable_thinking": False}
    assert sent[1]["content"] == "Hello!"  # the earlier answer's thinking is not sent back
