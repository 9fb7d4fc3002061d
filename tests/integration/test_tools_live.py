"""The real default model (Qwen2.5-Coder-0.5B-Instruct) with the real ``mcp-server-time`` over stdio,
through the app as users start it (``python app.py --config`` with an ``[[mcp_servers]]`` table).

"What time is it in Tokyo?" through ``POST /api/chat``: the model calls ``get_current_time`` with
a valid timezone for Tokyo, and the answer states the time the server returned. The request
enables the one tool: with both of the server's tools offered, this small model picks
``convert_time`` for Tokyo (whose description uses 'Asia/Tokyo' as its example) and invents the
time to convert. Greedy, few new tokens: it answers in well under a minute on 2 busy cores.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import httpx
import pytest

pytest.importorskip("mcp_server_time")


@pytest.fixture(scope="module")
def tools_app(launch_app, tmp_path_factory):
    config = tmp_path_factory.mktemp("tools") / "tools.toml"
    config.write_text(f'[[mcp_servers]]\nname = "time"\ncommand = "{sys.executable}"\n'
                      'args = ["-m", "mcp_server_time"]\ntrusted = true\n', encoding="utf-8")
    return launch_app("--config", str(config))


def _clock(moment: datetime) -> list[str]:
    """Ways an answer may write the hour and minute of ``moment`` (24 h or 12 h, with or without a leading 0)."""
    hour12 = moment.hour % 12 or 12
    return [f"{moment.hour}:{moment.minute:02d}", f"{moment.hour:02d}:{moment.minute:02d}", f"{hour12}:{moment.minute:02d}"]


def test_what_time_is_it_in_tokyo(tools_app):
    listed = httpx.get(tools_app.url + "/api/tools", timeout=120).json()
    assert {"time.get_current_time", "time.convert_time"} <= {t["name"] for t in listed["tools"]}

    response = httpx.post(tools_app.url + "/api/chat", timeout=600, json={
        "messages": [{"role": "user", "content": "What time is it in Tokyo?"}],
        "tools": ["time.get_current_time"], "temperature": 0, "max_tokens": 96})
    assert response.status_code == 200, response.text
    body = response.json()
    print("answer:", body["message"]["content"])
    print("calls:", json.dumps(body["tool_calls"], ensure_ascii=False))
    call = body["tool_calls"][0]
    assert call["name"] == "time.get_current_time" and call["status"] == "ok"
    zone = call["arguments"]["timezone"]
    assert zone in available_timezones()
    assert ZoneInfo(zone).utcoffset(datetime.now()) == timedelta(hours=9)  # Tokyo's time, whatever the name
    returned = datetime.fromisoformat(json.loads(call["result"])["datetime"])
    answer = body["message"]["content"]
    said = [m for clock in _clock(returned) for m in re.finditer(rf"(?<!\d){re.escape(clock)}(?!\d)", answer)]
    assert said, answer
    for match in said:  # "2:12 PM" for 02:12 would not be the time it returned
        marker = re.match(r"(?::\d\d)?\s*([AaPp])\.?[Mm]\b", answer[match.end():])
        assert marker is None or (marker.group(1).lower() == "p") == (returned.hour >= 12), answer
    assert body["stats"]["finish_reason"] == "stop"
