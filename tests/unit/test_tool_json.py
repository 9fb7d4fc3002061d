"""Tool calls written as plain JSON (```json fenced or bare), as Qwen2.5-Coder 0.5B writes them.

The recorded outputs (tests/data/model_outputs.json, ``recorded``) are fed through the parser in
pieces of 1-3 characters, as a stream arrives; variants of them check each part of the rule in
``engine/tool_json.py``: the JSON is the whole answer, names a declared tool, and its arguments
are valid for that tool's schema, or else it is text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fakes import ScriptedBackend
from openai_support import serve_in_thread

from engine.answer_stream import AnswerParser, answer_events, tool_schemas
from engine.engine import Engine
from engine.reasoning import Piece
from engine.stats import GenerationStats
from engine.tool_calls import ToolCallDelta, parse_tool_calls
from engine.tool_json import PATIENCE, json_calls
from webui.api import build_api
from webui.services import Services, WebConfig

DATA = json.loads((Path(__file__).parent.parent / "data" / "model_outputs.json").read_text())
TOOLS = tool_schemas(DATA["tools"])
RECORDED = [c for c in DATA["outputs"] if "recorded" in c]
QWEN = {c["name"]: c["text"] for c in RECORDED}
FENCED = QWEN["qwen25_coder_05b_fenced_json_call"]  # ```json {"name": "get_weather", ... "Beijing"} ```
WEATHER = next(t for t in DATA["tools"] if t["function"]["name"] == "get_weather")


def pieces_of(text: str, seed: int) -> list[str]:
    """``text`` in pieces of 1-3 characters, as a model's tokens arrive."""
    rng, out, i = random.Random(seed), [], 0
    while i < len(text):
        step = rng.randint(1, 3)
        out.append(text[i:i + step])
        i += step
    return out


def stream(text: str, tools=TOOLS, seed: int = 0, max_calls: int | None = None) -> tuple[str, list[dict], list]:
    """(content, calls as {"name", "arguments" (parsed)}, events) of ``text`` fed in small pieces."""
    parser = AnswerParser(tools, max_calls)
    events: list = []
    for piece in pieces_of(text, seed):
        events.append(parser.feed(piece))
    events.append(parser.finish())
    flat = [e for batch in events for e in batch]
    content = "".join(e.text for e in flat if isinstance(e, Piece))
    calls: list[dict] = []
    for event in flat:
        if isinstance(event, ToolCallDelta):
            if event.id is not None:
                calls.append({"name": event.name, "arguments": ""})
            calls[event.index]["arguments"] += event.arguments
    return content, [{"name": c["name"], "arguments": json.loads(c["arguments"])} for c in calls], events


@pytest.mark.parametrize("case", RECORDED, ids=[c["name"] for c in RECORDED])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recorded_outputs_in_small_pieces(case, seed):
    content, calls, _ = stream(case["text"], seed=seed)
    assert calls == case["tool_calls"]
    assert content == case["content"]


@pytest.mark.parametrize("case", RECORDED, ids=[c["name"] for c in RECORDED])
def test_finish_reason_is_tool_calls_only_for_calls(case):
    events = list(answer_events([*pieces_of(case["text"], 7), GenerationStats()], TOOLS))
    assert events[-1].finish_reason == ("tool_calls" if case["tool_calls"] else "stop")


def test_a_call_is_held_back_whole_and_comes_at_the_end():
    _, _, events = stream(FENCED)
    assert all(batch == [] for batch in events[:-1])  # nothing leaks out as content meanwhile
    header, arguments = events[-1]
    assert header.id.startswith("call_") and header.name == "get_weather" and header.arguments == ""
    assert arguments.index == header.index and arguments.id is None
    assert arguments.arguments == '{"city": "Beijing"}'  # compact JSON text, as OpenAI sends it


@pytest.mark.parametrize("text, released_by", [
    ('{"city": "Beijing", "weather": "sunny"}', '{"city"'),  # a JSON answer, not a call
    (QWEN["qwen25_coder_05b_fenced_call_of_an_undeclared_tool_is_content"], '"reverse_string"'),
    ("```python\ndef reverse(s):\n    return s[::-1]\n```", "```p"),  # a code answer
    ("Sure! " + FENCED, "S"),
    ("[1, 2, 3]", "[1"),
])
def test_text_that_cannot_be_a_call_is_released_as_soon_as_that_is_clear(text, released_by):
    parser = AnswerParser(TOOLS)
    written, shown = "", ""
    for piece in pieces_of(text, 3):
        written += piece
        shown += "".join(e.text for e in parser.feed(piece))
        if shown:
            break
    assert shown and released_by in written and len(written) < len(text)
    assert written.startswith(shown)


@pytest.mark.parametrize("text", [
    "Here you go:\n" + FENCED,  # text before
    FENCED + "\nI will look it up.",  # text after
    FENCED.replace('"Beijing"', "42"),  # city must be a string
    FENCED.replace('"city"', '"town"'),  # the required city is missing
    '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "kelvin"}}',  # not in the enum
    '{"name": "get_weather", "arguments": "Oslo"}',  # arguments not an object
    '{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": 1}',  # not only a call object
    '{"name": "get_weather", "arguments": {"city": "Oslo"}, "parameters": {"city": "Rome"}}',
    FENCED[: -len("```")],  # the fence never closed
    "```json\n" + '{"name": "get_weather", "arguments": {"city": "Oslo"}' + "\n```",  # not JSON
    "```json\n[]\n```",
    '```json\n[{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "add", "arguments": {"a": 1}}]\n```',
])
def test_anything_else_stays_text_unchanged(text):
    content, calls, _ = stream(text)
    assert calls == [] and content == text
    assert list(answer_events([text, GenerationStats()], TOOLS))[-1].finish_reason == "stop"


@pytest.mark.parametrize("text, expected", [
    ("\n\n  " + FENCED + "\n\n", [("get_weather", {"city": "Beijing"})]),  # whitespace around is fine
    ("```\n" + FENCED[len("```json\n"):], [("get_weather", {"city": "Beijing"})]),  # a fence without a language
    (FENCED.replace('"arguments"', '"parameters"'), [("get_weather", {"city": "Beijing"})]),
    ('{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}', [("get_weather", {"city": "Rome"})]),
    ('{"name": "add", "arguments": {"a": 2.5, "b": -1}}', [("add", {"a": 2.5, "b": -1})]),
    ('```json\n[\n  {"name": "get_weather", "arguments": {"city": "Beijing"}},\n  {"name": "get_weather", '
     '"arguments": {"city": "Shanghai"}}\n]\n```', [("get_weather", {"city": "Beijing"}),
                                                     ("get_weather", {"city": "Shanghai"})]),
])
def test_calls_written_as_json(text, expected):
    content, calls, _ = stream(text)
    assert content == "" and [(c["name"], c["arguments"]) for c in calls] == expected


def test_parallel_tool_calls_false_keeps_the_first_call_of_an_array():
    text = '[{"name": "get_weather", "arguments": {"city": "A"}}, {"name": "get_weather", "arguments": {"city": "B"}}]'
    _, calls, _ = stream(text, max_calls=1)
    assert calls == [{"name": "get_weather", "arguments": {"city": "A"}}]


def test_names_without_schemas_accept_any_object_as_arguments():
    content, calls = parse_tool_calls(FENCED.replace('"Beijing"', "42"), ["get_weather"])
    assert content == "" and json.loads(calls[0].arguments) == {"city": 42}
    assert parse_tool_calls('{"name": "get_weather", "arguments": [1]}', ["get_weather"])[1] == []


def test_a_schema_that_cannot_be_used_does_not_turn_a_call_into_text():
    tools = {"get_weather": {"type": "object", "properties": {"city": {"$ref": "https://example.com/city.json"}}}}
    assert parse_tool_calls(FENCED, tools)[1][0].name == "get_weather"
    assert parse_tool_calls(FENCED, {"get_weather": {"type": 5}})[1][0].name == "get_weather"


def test_undecided_until_the_text_decides():
    assert json_calls("  ``", TOOLS, final=False) is None
    assert json_calls("```js", TOOLS, final=False) is None  # may still be "json"
    assert json_calls("```jsx", TOOLS, final=False) is False
    assert json_calls(FENCED, TOOLS, final=False) is None  # text may still follow
    assert json_calls(FENCED[:-1], TOOLS, final=False) is None  # the closing fence is coming
    assert json_calls("{" + " " * (PATIENCE + 1), TOOLS, final=False) is False
    assert json_calls(FENCED, TOOLS, final=True) == [("get_weather", '{"city": "Beijing"}')]
    assert json_calls("", TOOLS, final=True) is False


def test_the_fenced_call_over_v1_streamed_and_not():
    openai = pytest.importorskip("openai")
    backend = ScriptedBackend(FENCED, FENCED, chars_per_token=2)
    user = [{"role": "user", "content": "What's the weather in Beijing?"}]
    with serve_in_thread(build_api(Services(engine=Engine(backend), web=WebConfig()))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)
        answer = client.chat.completions.create(model="default", messages=user, tools=[WEATHER], tool_choice="auto")
        chunks = list(client.chat.completions.create(model="default", messages=user, tools=[WEATHER], stream=True))
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Beijing"}
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert not "".join(d.content or "" for d in deltas)  # no fence or JSON shown as text
    pieces = [p for d in deltas for p in d.tool_calls or []]
    assert pieces[0].function.name == "get_weather"
    assert json.loads("".join(p.function.arguments or "" for p in pieces)) == {"city": "Beijing"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

