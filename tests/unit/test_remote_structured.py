"""The remote backend passes tools, schemas and template variables through, and reads the remote
server's ``reasoning_content`` and ``tool_calls`` back: dcu-chat behind dcu-chat, over HTTP."""

from __future__ import annotations

import json
import threading

from fakes import ScriptedBackend
from openai_support import serve_in_thread

from engine.answer_stream import answer_events
from engine.backends.openai import OpenAIBackend
from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.json_schema import tool_call_schema
from engine.reasoning import Piece
from engine.tool_calls import ToolCallDelta
from webui.api import build_api
from webui.services import Services, WebConfig

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
OUTPUT = ('<think>\nThey want Paris weather.\n</think>\n\n<tool_call>\n{"name": "get_weather", '
          '"arguments": {"city": "Paris"}}\n</tool_call>')


def test_tools_schema_and_thinking_round_trip_through_a_remote_server():
    remote = ScriptedBackend(OUTPUT)
    with serve_in_thread(build_api(Services(engine=Engine(remote), web=WebConfig()))) as url:
        local = Engine(OpenAIBackend.load(EngineConfig(backend="openai", base_url=url + "/v1")))
        params = SamplingParams(tools=(WEATHER,), json_schema=tool_call_schema([WEATHER["function"]]),
                                template_kwargs={"enable_thinking": True})
        events = list(answer_events(local.stream_chat([{"role": "user", "content": "Weather?"}], params,
                                                      cancel=threading.Event()), ["get_weather"]))
    sent = remote.calls[0]["params"]
    assert sent.tools == (WEATHER,) and sent.template_kwargs == {"enable_thinking": True}
    assert sent.json_schema["properties"]["name"] == {"const": "get_weather"}
    reasoning = "".join(e.text for e in events if isinstance(e, Piece) and e.kind == "reasoning")
    assert reasoning.strip() == "They want Paris weather."
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls[0].name == "get_weather"
    assert json.loads("".join(c.arguments for c in calls)) == {"city": "Paris"}
    assert events[-1].finish_reason == "tool_calls"
