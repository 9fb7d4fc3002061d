"""[[mcp_servers]] tables and the tools options: parsed and checked at start-up, with messages that say what to fix."""

from __future__ import annotations

import argparse

import pytest

from assist.tools.config import ToolsConfig, parse_mcp_servers
from assist.tools.errors import ToolConfigError


def test_stdio_and_http_servers():
    stdio, http = parse_mcp_servers([
        {"name": "time", "command": "python", "args": ["-m", "mcp_server_time"], "env": {"TZ": "UTC"},
         "trusted": True},
        {"name": "search", "url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer k"},
         "timeout_s": 5}])
    assert (stdio.transport, stdio.args, stdio.env, stdio.trusted) == ("stdio", ("-m", "mcp_server_time"),
                                                                      (("TZ", "UTC"),), True)
    assert (http.transport, http.headers, http.trusted, http.timeout_s) == ("http", (("Authorization", "Bearer k"),),
                                                                            False, 5.0)
    assert "Bearer" not in http.describe() and stdio.describe() == "python -m mcp_server_time"
    assert parse_mcp_servers(None) == ()


@pytest.mark.parametrize("table, words", [
    ({"name": "x"}, "either command"),
    ({"name": "x", "command": "a", "url": "http://h"}, "not both"),
    ({"name": "x", "url": "ftp://h"}, "http://"),
    ({"name": "x.y", "command": "a"}, "name must be"),
    ({"name": "sandbox", "command": "a"}, "not sandbox"),
    ({"name": "x", "command": "a", "arg": ["b"]}, "did you mean args"),
    ({"name": "x", "command": "a", "args": "b"}, "list of strings"),
    ({"name": "x", "command": "a", "headers": {"A": "b"}}, "headers applies only to url"),
    ({"name": "x", "command": "a", "trusted": "yes"}, "true or false"),
    ({"name": "x", "command": "a", "timeout_s": 0}, "positive"),
])
def test_bad_tables_say_what_to_fix(table, words):
    with pytest.raises(ToolConfigError, match=words):
        parse_mcp_servers([table])


def test_names_are_unique_and_limits_positive():
    servers = parse_mcp_servers([{"name": "a", "command": "x"}, {"name": "a", "command": "y"}])
    with pytest.raises(ToolConfigError, match="Two"):
        ToolsConfig(mcp_servers=servers)
    with pytest.raises(ToolConfigError, match="max_steps"):
        ToolsConfig(max_steps=0)


def test_the_config_file_and_flags(tmp_path):
    from app_settings import build_tools_config, parser, resolve_settings

    config = tmp_path / "dcu.toml"
    config.write_text('tool_max_steps = 3\n[[mcp_servers]]\nname = "time"\ncommand = "python"\n'
                      'args = ["-m", "mcp_server_time"]\ntrusted = true\n', encoding="utf-8")
    args = parser().parse_args(["--config", str(config), "--tool-result-chars", "100"])
    tools = build_tools_config(resolve_settings(args, environ={}))
    assert (tools.max_steps, tools.result_chars) == (3, 100)
    assert [s.name for s in tools.mcp_servers] == ["time"] and tools.mcp_servers[0].trusted
    bad = tmp_path / "bad.toml"
    bad.write_text('[[mcp_servers]]\nname = "t"\n', encoding="utf-8")
    with pytest.raises(ToolConfigError, match="either command"):
        build_tools_config(resolve_settings(argparse.Namespace(config=str(bad)), environ={}))
