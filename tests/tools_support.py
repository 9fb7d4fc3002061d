"""Helpers for the tool tests: a fake tool registry, scripted model calls, MCP server scripts."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from assist.tools.config import ToolsConfig
from assist.tools.errors import ToolCancelled
from assist.tools.registry import Catalog, ToolInfo, ToolResult, cut_text

TIME_TOOL = ToolInfo("time", "get_current_time", "Get current time in a specific timezone",
                     {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
                     trusted=True)


def fenced_call(name: str, arguments: dict) -> str:
    """A call as Qwen2.5-Coder-0.5B writes it with tool_choice auto: a fenced JSON object."""
    return "```json\n" + json.dumps({"name": name, "arguments": arguments}) + "\n```"


class FakeRegistry:
    """``ToolRegistry.call`` and ``config`` only: scripted results, recorded calls, an optional slow call."""

    def __init__(self, results: dict | None = None, config: ToolsConfig | None = None, slow_s: float = 0.0,
                 tools: tuple[ToolInfo, ...] | None = None):
        self.tools = tuple(tools) if tools is not None else (TIME_TOOL,)
        self.config = config or ToolsConfig()
        self.results = results or {}
        self.slow_s = slow_s
        self.calls: list[tuple[str, dict]] = []
        self.started = threading.Event()

    def server_names(self) -> list[str]:
        return list(dict.fromkeys(t.server for t in self.tools))

    def default_selection(self) -> list[str]:
        return self.server_names()

    def catalog(self, servers=None) -> Catalog:
        return Catalog([t for t in self.tools if servers is None or t.server in list(servers)])

    def select(self, specs, strict: bool = True) -> Catalog:
        return Catalog([t for t in self.tools if t.server in specs or t.qualified in specs])

    def call(self, tool: ToolInfo, arguments: dict, cancel=None) -> ToolResult:
        self.calls.append((tool.qualified, arguments))
        self.started.set()
        deadline = time.monotonic() + self.slow_s
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                raise ToolCancelled("The call was stopped.")
            time.sleep(0.01)
        text, truncated = cut_text(self.results.get(tool.qualified, "ok"), self.config.result_chars)
        return ToolResult(text, False, truncated, self.slow_s)


# An MCP server written with the SDK's high-level server (FastMCP, now ``MCPServer``), run over
# stdio by the tests: echo, HTML, a slow tool, a crash, and a tool that prints the current count.
TEST_SERVER = '''
import asyncio, os, sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("test-tools")

@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text

@server.tool()
def html() -> str:
    """A result that is HTML."""
    return "<img src=x onerror=alert(1)><b>bold</b><script>alert(2)</script>"

@server.tool()
async def slow(seconds: float) -> str:
    """Wait, then answer."""
    await asyncio.sleep(seconds)
    return "done waiting"

@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    os._exit(3)

@server.tool()
def big(size: int) -> str:
    """A long result."""
    return "x" * size

if __name__ == "__main__":
    server.run()
'''


def write_test_server(folder: Path) -> list[str]:
    """The command (argv) that runs ``TEST_SERVER`` over stdio."""
    path = folder / "test_mcp_server.py"
    path.write_text(TEST_SERVER)
    return [sys.executable, str(path)]
