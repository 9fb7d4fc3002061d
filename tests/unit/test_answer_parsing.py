"""Reasoning split and tool-call parsers on recorded outputs in the real formats (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.answer_stream import AnswerParser, answer_events, tool_schemas
from engine.errors import ConfigError
from engine.json_schema import check_schema, tool_call_schema
from engine.reasoning import ReasoningSplitter, opened_thinking, strip_reasoning
from engine.stats import GenerationStats
from engine.tool_calls import ToolCallDelta, parse_tool_calls
from engine.tool_prompt import prepare_messages

DATA = json.loads((Path(__file__).parent.parent / "data" / "model_outputs.json").read_text())
OUTPUTS = DATA["outputs"]
TOOLS = tool_schemas(DATA["tools"])  # name -> parameter schema: JSON calls are checked against it


def raw(case: dict) -> str:
    return ("<think>" if case["prompt_opened"] else "") + case["text"]


def parse(text: str, cuts: list[int]) -> tuple[str, str, list[dict], list]:
    """Feed ``text`` split at ``cuts``; return (reasoning, content, calls from the deltas, events)."""
    parser = AnswerParser(TOOLS)
    events, start = [], 0
    for cut in sorted(set(cuts)) + [len(text)]:
        events += parser.feed(text[start:cut])
        start = cut
    events += parser.finish()
    reasoning = "".join(e.text for e in events if not isinstance(e, ToolCallDelta) and e.kind == "reasoning")
    content = "".join(e.text for e in events if not isinstance(e, ToolCallDelta) and e.kind == "content")
    calls: list[dict] = []
    for event in events:
        if isinstance(event, ToolCallDelta):
            if event.id is not None:
                assert event.index == len(calls) and event.id.startswith("call_") and event.name
                calls.append({"id": event.id, "name": event.name, "arguments": ""})
            calls[event.index]["arguments"] += event.arguments
    return reasoning, content, calls, events


@pytest.mark.parametrize("case", OUTPUTS, ids=[c["name"] for c in OUTPUTS])
@pytest.mark.parametrize("step", [1, 2, 7, 10_000])
def test_recorded_outputs_parse_the_same_in_any_delta_size(case, step):
    text = raw(case)
    reasoning, content, calls, _ = parse(text, list(range(step, len(text), step)))
    assert reasoning == case["reasoning"]
    assert content == case["content"]
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == \
        [(c["name"], c["arguments"]) for c in case["tool_calls"]]
    assert len({c["id"] for c in calls}) == len(calls)


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(OUTPUTS), data=st.data())
def test_markers_split_anywhere_across_deltas(case, data):
    text = raw(case)
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    reasoning, content, calls, _ = parse(text, cuts)
    assert (reasoning, content) == (case["reasoning"], case["content"])
    assert [c["name"] for c in calls] == [c["name"] for c in case["tool_calls"]]


def test_arguments_stream_in_pieces_before_the_call_is_complete():
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "San Francisco", "unit": "celsius"}}\n</tool_call>'
    _, _, calls, events = parse(text, list(range(1, len(text))))
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(pieces) > 5  # header, then the arguments as they were written
    assert json.loads(calls[0]["arguments"]) == {"city": "San Francisco", "unit": "celsius"}


@pytest.mark.parametrize("case", [c for c in OUTPUTS if c["reasoning"] and c["finish"] != "stop" or
                                  c["name"].endswith("stop_string")], ids=lambda c: c["name"])
def test_thinking_cut_off_is_reasoning_and_reported(case):
    stream = [raw(case)[:10], raw(case)[10:], GenerationStats(finish_reason=case["finish"], completion_tokens=9)]
    events = list(answer_events(stream, count_tokens=lambda t: len(t.split())))
    stats = events[-1]
    assert stats.extra["reasoning_cut_off"] is True
    assert stats.extra["reasoning_tokens"] == len(case["reasoning"].split())
    assert stats.finish_reason == case["finish"]
    assert "".join(e.text for e in events[:-1]) == case["reasoning"]


def test_tool_calls_end_with_finish_reason_tool_calls_and_plain_answers_do_not():
    stream = ['{"name": "get_weather", "arguments": {"city": "Paris"}}', GenerationStats()]
    assert list(answer_events(stream, TOOLS))[-1].finish_reason == "tool_calls"
    assert list(answer_events(["Hi", GenerationStats()], TOOLS))[-1].finish_reason == "stop"
    # Without tools in the request, nothing is read as a call.
    events = list(answer_events(['{"name": "get_weather", "arguments": {}}', GenerationStats()]))
    assert events[0].kind == "content" and events[-1].finish_reason == "stop"


def test_a_marker_with_nothing_usable_after_it_stays_content():
    content, calls = parse_tool_calls("<tool_call>not json at all", TOOLS)
    assert content == "<tool_call>not json at all" and calls == []


def test_arguments_sent_as_a_json_string_are_unwrapped():
    _, calls = parse_tool_calls('<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}</tool_call>',
                                TOOLS)
    assert json.loads(calls[0].arguments) == {"city": "Rome"}


def test_only_a_leading_think_opens_a_block():
    splitter = ReasoningSplitter()
    pieces = splitter.feed("Use the <think> tag.") + splitter.finish()
    assert [p.kind for p in pieces] == ["content"] and splitter.reasoning == ""


@pytest.mark.parametrize("history, expected", [
    ("<think>\nsecret plan\n</think>\n\nThe answer.", "The answer."),
    ("secret plan\n</think>\n\nThe answer.", "The answer."),  # the template opened the block
    ("<think>\nnever closed", ""),
    ("Plain answer with </b> tags.", "Plain answer with </b> tags."),
    ("", ""),
])
def test_earlier_thinking_is_stripped(history, expected):
    assert strip_reasoning(history) == expected


def test_history_validation_strips_thinking_and_keeps_tool_turns():
    from engine.history import validate_messages

    messages = validate_messages([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        {"role": "assistant", "content": "<think>hmm</think>It is 21 °C."},
        {"role": "user", "content": "Thanks"},
    ])
    assert messages[1]["content"] == "" and messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[2] == {"role": "tool", "content": '{"temp_c": 21}', "tool_call_id": "call_1"}
    assert messages[3]["content"] == "It is 21 °C."
    assert validate_messages(messages[:3])[-1]["role"] == "tool"  # a tool result may end the conversation


def test_templates_without_tools_get_the_fallback_prompt():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "21 C"}]
    folded, template_tools = prepare_messages(history, tools, "{{ messages }}")
    assert template_tools is None and [m["role"] for m in folded] == ["system", "user", "assistant", "user"]
    assert folded[0]["content"].startswith("Be brief.") and '"name": "get_weather"' in folded[0]["content"]
    assert "<tool_call>" in folded[2]["content"] and "21 C" in folded[3]["content"]
    assert all(set(m) == {"role", "content"} for m in folded)
    same, template_tools = prepare_messages(history, tools, "{% for tool in tools %}{% endfor %}")
    assert same == history and template_tools == tools
    plain = [{"role": "user", "content": "Hi"}]
    assert prepare_messages(plain, (), None) == (plain, None)


def test_a_template_that_opens_the_think_block_is_detected():
    assert opened_thinking("<|im_start|>assistant\n<think>\n") == "<think>"
    assert opened_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n") is None
    assert opened_thinking("<start_of_turn>model\n") is None


def test_schema_support_is_checked_keyword_by_keyword():
    check_schema({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1},
                                                   "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                                                   "when": {"type": "string", "format": "date"}},
                  "required": ["n"], "additionalProperties": False, "$defs": {"x": {"type": "string"}}})
    for schema, words in [({"type": "object", "patternProperties": {}}, "patternProperties"),
                          ({"type": "number", "minimum": 0.5}, "integers only"),
                          ({"type": "string", "format": "email"}, "format 'email'"),
                          ({"$ref": "https://example.com/s.json"}, "local references"),
                          ({"type": "uuid"}, "not a JSON schema type"),
                          ({"properties": {"a": {"not": {}}}}, "schema.properties.a")]:
        with pytest.raises(ConfigError, match=words):
            check_schema(schema)


def test_the_forced_call_schema_names_the_function_first_and_hoists_defs():
    schema = tool_call_schema([{"name": "f", "parameters": {"type": "object", "properties": {
        "p": {"$ref": "#/$defs/P"}}, "$defs": {"P": {"type": "string"}}}}])
    assert list(schema["properties"]) == ["name", "arguments"] and schema["properties"]["name"] == {"const": "f"}
    assert schema["$defs"] == {"P": {"type": "string"}} and "$defs" not in schema["properties"]["arguments"]
    both = tool_call_schema([{"name": "f"}, {"name": "g"}])
    assert [s["properties"]["name"]["const"] for s in both["anyOf"]] == ["f", "g"]


def test_objects_with_listed_properties_are_closed_for_decoding():
    from engine.json_schema import for_decoding

    schema = {"type": "object", "properties": {"city": {"type": "string"}, "where": {
        "type": "object", "properties": {"lat": {"type": "number"}}}, "tags": {"type": "object"}},
        "anyOf": [{"properties": {"x": {}}}], "$defs": {"D": {"properties": {"y": {}}, "additionalProperties": True}}}
    closed = for_decoding(schema)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["where"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]["tags"]  # no listed properties: any object
    assert closed["anyOf"][0]["additionalProperties"] is False
    assert closed["$defs"]["D"]["additionalProperties"] is True  # what a schema says itself is kept
    assert "additionalProperties" not in schema  # the request's schema is not changed
