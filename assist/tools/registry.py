"""The tools this server offers: the admin's MCP servers and the built-in ones, by ``server.tool`` name.

``ToolRegistry`` owns the MCP sessions (``assist.tools.mcp_client``) and the event loop they run
on. It lists tools (starting servers lazily, all at once, each failure reported for its server
alone), resolves a selection ("time" = all of a server's tools, "time.get_current_time" = one),
and calls a tool with a timeout and a cancel event, the result cut to the configured size.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from assist.tools.aio import EventLoopThread
from assist.tools.builtin import BUILTIN_SERVER, builtin_tools, call_builtin
from assist.tools.config import ToolsConfig
from assist.tools.errors import ToolError, ToolServerUnavailable, UnknownTool
from assist.tools.mcp_client import McpServer, result_text

__all__ = ["ToolInfo", "ToolResult", "Catalog", "ToolRegistry", "cut_text"]


@dataclass(frozen=True)
class ToolInfo:
    """One tool as the registry knows it; ``qualified`` ("server.tool") is its name everywhere but
    in the prompt (``assist.tools.naming`` chooses the name the model sees)."""

    server: str
    name: str
    description: str
    parameters: dict
    trusted: bool

    @property
    def qualified(self) -> str:
        return f"{self.server}.{self.name}"

    def to_dict(self) -> dict:
        return {"name": self.qualified, "server": self.server, "tool": self.name, "description": self.description,
                "parameters": self.parameters, "trusted": self.trusted}


@dataclass(frozen=True)
class ToolResult:
    text: str  # cut to ToolsConfig.result_chars
    is_error: bool
    truncated: bool = False
    duration_s: float = 0.0


@dataclass
class Catalog:
    tools: list[ToolInfo] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # server -> why its tools are missing


def cut_text(text: str, limit: int) -> tuple[str, bool]:
    """``text`` within ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text, False
    return f"{text[:limit]}\n… [{len(text) - limit} more characters cut]", True


class ToolRegistry:
    """MCP servers from ``config.mcp_servers`` plus the built-in tools (``run_python`` with a sandbox)."""

    def __init__(self, config: ToolsConfig | None = None, sandbox=None) -> None:
        self.config = config or ToolsConfig()
        self.sandbox = sandbox
        self._loop = EventLoopThread()
        self._servers = {c.name: McpServer(c, self._loop, self.config.start_timeout_s)
                         for c in self.config.mcp_servers}
        self._builtin = builtin_tools(sandbox)

    @property
    def enabled(self) -> bool:
        """Whether there is any tool to offer at all."""
        return bool(self._servers or self._builtin)

    def server_names(self) -> list[str]:
        return [*self._servers, *([BUILTIN_SERVER] if self._builtin else [])]

    def default_selection(self) -> list[str]:
        """What Chat starts with: the admin's MCP servers on; built-in tools are the user's choice."""
        return list(self._servers)

    def catalog(self, servers: Iterable[str] | None = None) -> Catalog:
        """Tools of ``servers`` (default: all), starting MCP servers that are not running, in parallel."""
        names = list(self.server_names() if servers is None else dict.fromkeys(servers))
        catalog = Catalog()
        listed: dict[str, list[ToolInfo]] = {}
        mcp = [self._servers[n] for n in names if n in self._servers]
        if mcp:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(mcp), thread_name_prefix="mcp-start") as pool:
                for server, outcome in zip(mcp, pool.map(self._list_server, mcp), strict=True):
                    if isinstance(outcome, str):
                        catalog.problems[server.name] = outcome
                    else:
                        listed[server.name] = outcome
        if BUILTIN_SERVER in names:
            listed[BUILTIN_SERVER] = [ToolInfo(BUILTIN_SERVER, name, spec["description"], spec["input_schema"], True)
                                      for name, spec in self._builtin.items()]
        catalog.tools = [tool for name in names for tool in listed.get(name, [])]
        return catalog

    def _list_server(self, server: McpServer) -> list[ToolInfo] | str:
        try:
            return [ToolInfo(server.name, t.name, t.description or "", dict(t.input_schema or {"type": "object"}),
                             server.config.trusted) for t in server.tools()]
        except ToolError as exc:
            return str(exc)

    def select(self, specs: Iterable[str], strict: bool = True) -> Catalog:
        """The tools that ``specs`` ("server" or "server.tool") name, in order, without repeats.

        Unknown names are ``UnknownTool``; a named server that cannot start is
        ``ToolServerUnavailable`` when ``strict`` (an API caller asked for it), else a problem of
        the catalog (Chat goes on with the other tools and says why).
        """
        specs = [str(s).strip() for s in specs if str(s).strip()]
        known = self.server_names()
        for spec in specs:
            if spec.split(".", 1)[0] not in known:
                raise UnknownTool(f"There is no tool server {spec.split('.', 1)[0]!r} on this server; the "
                                  f"servers are: {', '.join(known) or 'none (no [[mcp_servers]] configured)'}.")
        catalog = self.catalog(s.split(".", 1)[0] for s in specs)
        if strict and catalog.problems:
            raise ToolServerUnavailable(next(iter(catalog.problems.values())))
        chosen: dict[str, ToolInfo] = {}
        for spec in specs:
            server, _, tool = spec.partition(".")
            found = [t for t in catalog.tools if t.server == server and (not tool or t.name == tool)]
            if tool and not found and server not in catalog.problems:
                names = ", ".join(t.qualified for t in catalog.tools if t.server == server)
                raise UnknownTool(f"The server {server!r} has no tool {tool!r}; its tools are: {names or 'none'}.")
            chosen.update((t.qualified, t) for t in found)
        return Catalog(list(chosen.values()), catalog.problems)

    def call(self, tool: ToolInfo, arguments: dict, cancel: threading.Event | None = None) -> ToolResult:
        """Run one call; tool-level failures come back as error results, the rest as ``ToolError``."""
        started = time.monotonic()
        if tool.server == BUILTIN_SERVER:
            text, is_error = call_builtin(tool.name, arguments, self.sandbox, cancel)
        else:
            server = self._servers[tool.server]
            result = server.call(tool.name, arguments, server.config.timeout_s or self.config.timeout_s, cancel)
            text, is_error = result_text(result), bool(result.is_error)
        text, truncated = cut_text(text, self.config.result_chars)
        return ToolResult(text, is_error, truncated, round(time.monotonic() - started, 3))

    def status(self) -> list[dict]:
        """Each server's state (without starting any): for the System tab and ``/api/tools``."""
        rows = [server.status() for server in self._servers.values()]
        if self._builtin:
            rows.append({"name": BUILTIN_SERVER, "transport": "built-in", "where": "the code sandbox (--sandbox)",
                         "trusted": True, "state": "ready", "error": "", "tools": list(self._builtin), "starts": 0})
        return rows

    def close(self) -> None:
        """Stop every MCP server (their processes end) and the event loop."""
        for server in self._servers.values():
            server.close()
        self._loop.close()
