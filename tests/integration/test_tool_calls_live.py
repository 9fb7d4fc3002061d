"""An unforced tool call from the real embedded default (Qwen2.5-Coder-0.5B-Instruct) over /v1.

With ``tool_choice: "auto"`` nothing constrains decoding: the model writes the call its own way,
a fenced ```json {"name", "arguments"} block rather than ``<tool_call>`` tags (recorded in
tests/data/model_outputs.json), and engine/tool_json.py must read that as a call. Greedy, so the
arguments are the ones recorded. Run against another model: ``DCU_CHAT_MODEL=/path/model.gguf``.
"""

from __future__ import annotations

import json

import pytest

openai = pytest.importorskip("openai")

# The definition the recording was made with: the model's answer depends on its wording.
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name"}},
                   "required": ["city"]}}}
ASK = [{"role": "user", "content": "What's the weather in Beijing?"}]


@pytest.fixture(scope="module")
def client(live_app):
    return openai.OpenAI(base_url=live_app.url + "/v1", api_key="unused", max_retries=0, timeout=600)


def test_the_weather_in_beijing_is_a_get_weather_call_streamed_and_not(client):
    answer = client.chat.completions.create(model="default", messages=ASK, tools=[WEATHER], tool_choice="auto",
                                            temperature=0, max_tokens=128)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Beijing"}
    assert not choice.message.content

    chunks = list(client.chat.completions.create(model="default", messages=ASK, tools=[WEATHER], tool_choice="auto",
                                                 temperature=0, max_tokens=128, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert not "".join(d.content or "" for d in deltas)  # the fenced JSON is not shown as text
    pieces = [p for d in deltas for p in d.tool_calls or []]
    assert pieces[0].function.name == "get_weather" and pieces[0].id.startswith("call_")
    assert json.loads("".join(p.function.arguments or "" for p in pieces)) == {"city": "Beijing"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
