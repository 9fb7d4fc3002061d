"""Tools and template variables through real prompt rendering and the tiny transformers model."""

from __future__ import annotations

import re

import pytest

from engine.config import SamplingParams
from engine.errors import ConfigError
from engine.history import prompt_text
from engine.stats import GenerationStats
from engine.templates import prompt_format

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
# A Qwen3-like template, cut down: tools in the system turn, thinking switch, a think block
# opened in the generation prompt.
QWEN_LIKE = (
    "{% if tools %}<|im_start|>system\n# Tools\n{% for t in tools %}{{ t['function']['name'] }}\n{% endfor %}"
    "<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% for c in m.get('tool_calls', []) %}<tool_call>{{ c['function']['name'] }}</tool_call>{% endfor %}"
    "<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}"
)
USER = [{"role": "user", "content": "Weather in Paris?"}]


def test_a_template_that_does_tools_gets_them_and_the_template_variables():
    fmt = prompt_format(QWEN_LIKE)
    text = prompt_text(fmt, USER, tools=(WEATHER,))
    assert "# Tools\nget_weather" in text and text.endswith("<think>\n")
    assert prompt_text(fmt, USER, template_kwargs={"enable_thinking": False}).endswith("</think>\n\n")
    history = [*USER, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21 C"}]
    assert "<tool_call>get_weather</tool_call>" in prompt_text(fmt, history, tools=(WEATHER,))


def test_the_completion_format_of_base_models_gets_the_fallback_tool_prompt():
    fmt = prompt_format(None, "gemma3")
    history = [*USER, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21 C"}]
    text = prompt_text(fmt, history, tools=(WEATHER,))
    assert '"name": "get_weather"' in text and "<tool_call>" in text and "<tool_response>\n21 C" in text
    assert prompt_text(fmt, USER) == fmt.render(USER)  # no tools: nothing changes


def test_the_backend_echoes_a_think_block_opened_by_the_template(tiny_engine, monkeypatch):
    backend = tiny_engine.backend
    monkeypatch.setattr(backend, "prompt_format", prompt_format(QWEN_LIKE))
    items = list(tiny_engine.stream_chat([{"role": "user", "content": "hello"}],
                                         SamplingParams(temperature=0, max_new_tokens=4)))
    assert items[0] == "<think>" and isinstance(items[-1], GenerationStats)
    items = list(tiny_engine.stream_chat([{"role": "user", "content": "hello"}], SamplingParams(
        temperature=0, max_new_tokens=4, template_kwargs={"enable_thinking": False})))
    assert items[0] != "<think>"


def test_without_xgrammar_the_transformers_backend_refuses_schemas_and_says_why(tiny_engine, monkeypatch):
    from engine import constrained

    monkeypatch.setattr(constrained, "available", lambda: False)
    with pytest.raises(ConfigError, match="cannot constrain decoding.*xgrammar"):
        list(tiny_engine.stream_chat(USER, SamplingParams(json_schema={"type": "object"})))


# Cut down from Mistral's own templates: they refuse tool call ids that are not 9 alphanumerics.
MISTRAL_LIKE = (
    "{%- for message in messages %}"
    "{%- if message.tool_calls is defined %}{%- for call in message.tool_calls %}"
    "{%- if call.id|length != 9 %}{{- raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}"
    "{%- endif %}[TOOL_CALLS][{\"name\": \"{{ call.function.name }}\", \"id\": \"{{ call.id }}\"}]"
    "{%- endfor %}"
    "{%- elif message.role == 'tool' %}"
    "{%- if message.tool_call_id|length != 9 %}{{- raise_exception('Tool call IDs should be alphanumeric strings "
    "with length 9!') }}{%- endif %}[TOOL_RESULTS]{\"call_id\": \"{{ message.tool_call_id }}\"}[/TOOL_RESULTS]"
    "{%- else %}[INST]{{ message.content }}[/INST]{%- endif %}"
    "{%- endfor %}{%- if tools %}[AVAILABLE_TOOLS]{%- endif %}"
)


def test_openai_call_ids_are_rendered_as_the_nine_characters_mistral_templates_demand():
    fmt = prompt_format(MISTRAL_LIKE, "mistral")
    history = [{"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"id": "call_3f2a9c0d1e4b5a6978c0d1e2", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "call_3f2a9c0d1e4b5a6978c0d1e2", "content": "21 C"}]
    text = prompt_text(fmt, history, tools=({"type": "function", "function": {"name": "get_weather"}},))
    ids = re.findall(r'"(?:id|call_id)": "(\w+)"', text)
    assert len(ids) == 2 and ids[0] == ids[1] and len(ids[0]) == 9 and ids[0].isalnum()
    kept = [{**history[1], "tool_calls": [{**history[1]["tool_calls"][0], "id": "a1B2c3D4e"}]},
            {**history[2], "tool_call_id": "a1B2c3D4e"}]
    assert '"id": "a1B2c3D4e"' in prompt_text(fmt, [history[0], *kept], tools=({"type": "function",
                                                                              "function": {"name": "f"}},))


def test_tool_call_arguments_reach_the_template_as_an_object_not_a_quoted_string():
    """Qwen's template writes ``{{ tool_call.arguments | tojson }}``: JSON text came out quoted."""
    from engine.history import validate_messages

    qwen_like = ("{%- for m in messages %}{%- if m.tool_calls %}{%- for c in m.tool_calls %}<tool_call>"
                 "{\"name\": \"{{ c.function.name }}\", \"arguments\": {{ c.function.arguments | tojson }}}</tool_call>"
                 "{%- endfor %}{%- else %}{{ m.content }}{%- endif %}{%- endfor %}")
    history = validate_messages([
        {"role": "user", "content": "Time in Tokyo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_current_time", "arguments": '{"timezone": "Asia/Tokyo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "02:18"}])
    text = prompt_format(qwen_like, "qwen2").render(history)
    assert '"arguments": {"timezone": "Asia/Tokyo"}' in text and '\\"' not in text
    odd = validate_messages([*history[:1], {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "not json"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "x"}])
    assert odd[1]["tool_calls"][0]["function"]["arguments"] == "not json"  # text that is no object stays text
