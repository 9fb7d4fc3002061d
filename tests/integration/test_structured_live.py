"""Structured output and tool calls from the real embedded default (Gemma 3 270M base) over /v1.

The app is launched as users run it (its default backend: llama.cpp), driven by the official
``openai`` client. A 270M base model does not know JSON or tools; constrained decoding
(llama.cpp's JSON-schema grammar) is what makes the output valid, so these tests check
validity against the schema, never particular values.
"""

from __future__ import annotations

import json

import pytest

openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris", "maxLength": 40},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


@pytest.fixture(scope="module")
def client(live_app):
    return openai.OpenAI(base_url=live_app.url + "/v1", api_key="unused", max_retries=0, timeout=600)


def test_json_schema_output_is_valid_for_the_schema(client):
    schema = {"type": "object", "properties": {
        "country": {"type": "string", "maxLength": 40}, "capital": {"type": "string", "maxLength": 40},
        "population_millions": {"type": "integer", "minimum": 0, "maximum": 2000}},
        "required": ["country", "capital", "population_millions"]}
    answer = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Describe France as JSON."}], max_tokens=80,
        temperature=0, response_format={"type": "json_schema", "json_schema": {"name": "country", "schema": schema,
                                                                               "strict": True}})
    data = json.loads(answer.choices[0].message.content)
    jsonschema.validate(data, schema)
    assert answer.choices[0].finish_reason == "stop"


def test_json_object_mode_gives_a_json_object_or_says_it_was_cut_off(client):
    # Any object is allowed, so a small model may write until max_tokens; OpenAI's contract is the
    # same: a finished answer is a JSON object, a cut-off one says "length".
    answer = client.chat.completions.create(model="default", messages=ASK, max_tokens=60, temperature=0,
                                            response_format={"type": "json_object"})
    content, finish = answer.choices[0].message.content, answer.choices[0].finish_reason
    assert content.startswith("{")
    if finish == "stop":
        assert isinstance(json.loads(content), dict)
    else:
        assert finish == "length"


def test_a_forced_get_weather_call_has_valid_arguments_and_the_result_round_trips(client):
    first = client.chat.completions.create(
        model="default", messages=ASK, tools=[WEATHER], max_tokens=60, temperature=0,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])

    history = [*ASK, choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "sunny"}'}]
    second = client.chat.completions.create(model="default", messages=history, tools=[WEATHER],
                                            max_tokens=24, temperature=0)
    message = second.choices[0].message
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert message.content or message.tool_calls  # the model answered the tool result


def test_a_required_call_streams_as_tool_call_deltas(client):
    stream = client.chat.completions.create(model="default", messages=ASK, tools=[WEATHER], tool_choice="required",
                                            max_tokens=60, temperature=0, stream=True)
    pieces, name, arguments, finish = 0, None, "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for piece in chunk.choices[0].delta.tool_calls or []:
            pieces += 1
            name = name or piece.function.name
            arguments += piece.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather" and pieces >= 2 and finish == "tool_calls"
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])
