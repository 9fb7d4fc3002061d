"""What the admin configures for tools: ``[[mcp_servers]]`` tables in the TOML file and the loop's limits.

    [[mcp_servers]]
    name = "time"                       # tools show as time.get_current_time
    command = "python"                  # stdio: the server is this program
    args = ["-m", "mcp_server_time"]
    env = { TZ = "Europe/Paris" }       # added to a minimal environment (PATH, HOME, …)
    trusted = true                      # calls run without asking the user first

    [[mcp_servers]]
    name = "search"
    url = "http://127.0.0.1:8000/mcp"   # streamable HTTP
    headers = { Authorization = "Bearer …" }

Only the admin writes these (users choose among them), so a server's command is trusted to run;
whether each *call* is trusted is ``trusted``. Tables are checked at start-up, with messages
that name the table and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assist.config_keys import unknown_key
from assist.tools.errors import ToolConfigError

__all__ = ["McpServerConfig", "ToolsConfig", "parse_mcp_servers", "SERVER_NAME"]

SERVER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_KEYS = ("name", "command", "args", "env", "cwd", "url", "headers", "trusted", "timeout_s")
RESERVED = ("sandbox",)  # the built-in tools' server name


@dataclass(frozen=True)
class McpServerConfig:
    """One MCP server: stdio (``command`` + ``args`` + ``env``) or streamable HTTP (``url`` + ``headers``)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    trusted: bool = False
    timeout_s: float | None = None  # this server's call limit (default: ToolsConfig.timeout_s)

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"

    def describe(self) -> str:
        """Where the server is, without secrets (no env values, no headers)."""
        return " ".join([self.command or "", *self.args]).strip() if self.command else str(self.url)


@dataclass(frozen=True)
class ToolsConfig:
    max_steps: int = field(default=5, metadata={
        "option": "tool_max_steps", "help": "rounds of tool calls one answer may take (Chat and /api/chat)"})
    result_chars: int = field(default=4000, metadata={
        "option": "tool_result_chars", "help": "characters of a tool's result kept (shown and given to the model)"})
    timeout_s: float = field(default=60.0, metadata={
        "option": "tool_timeout_s", "help": "seconds a tool call may take before it is stopped"})
    start_timeout_s: float = field(default=30.0, metadata={
        "option": "tool_start_timeout_s", "help": "seconds an MCP server may take to start and list its tools"})
    approval_timeout_s: float = field(default=300.0, metadata={
        "option": "tool_approval_timeout_s",
        "help": "seconds Chat waits for Allow / Deny on a call to an untrusted MCP server (then: denied)"})
    mcp_servers: tuple[McpServerConfig, ...] = ()  # [[mcp_servers]] tables (config file only)

    def __post_init__(self) -> None:
        for name in ("max_steps", "result_chars", "timeout_s", "start_timeout_s", "approval_timeout_s"):
            if getattr(self, name) <= 0:
                raise ToolConfigError(f"The tools option {name} must be positive (got {getattr(self, name)}).")
        names = [s.name for s in self.mcp_servers]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:
            raise ToolConfigError(f"Two [[mcp_servers]] tables are named {twice!r}; give each server its own name.")


def _strings(value, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ToolConfigError(f"{where}: {key} must be a list of strings, e.g. {key} = [\"-m\", \"my_server\"].")
    return tuple(value)


def _pairs(value, where: str, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ToolConfigError(f"{where}: {key} must be a table of strings, e.g. {key} = {{ NAME = \"value\" }}.")
    return tuple((str(k), v) for k, v in value.items())


def _server(number: int, table) -> McpServerConfig:
    where = f"[[mcp_servers]] #{number}"
    if not isinstance(table, dict):
        raise ToolConfigError(f"{where} must be a table with a name and a command or url.")
    if (message := unknown_key(where, table, _KEYS)):
        raise ToolConfigError(message)
    name = table.get("name")
    if not isinstance(name, str) or not SERVER_NAME.match(name) or name in RESERVED:
        raise ToolConfigError(f"{where}: name must be 1-32 letters, digits, '_' or '-', starting with a letter "
                              f"(and not {', '.join(RESERVED)}); got {name!r}.")
    where = f"[[mcp_servers]] {name!r}"
    command, url = table.get("command"), table.get("url")
    if bool(command) == bool(url):
        raise ToolConfigError(f"{where}: give either command (a server run over stdio) or url (streamable "
                              "HTTP), not both or neither.")
    if command is not None and not isinstance(command, str):
        raise ToolConfigError(f"{where}: command must be a string (the program; its arguments go in args).")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://", url)):
        raise ToolConfigError(f"{where}: url must start with http:// or https:// (got {url!r}).")
    stdio_only = [k for k in ("args", "env", "cwd") if k in table and not command]
    http_only = [k for k in ("headers",) if k in table and not url]
    if stdio_only or http_only:
        raise ToolConfigError(f"{where}: {(stdio_only or http_only)[0]} applies only to "
                              f"{'command (stdio)' if stdio_only else 'url (HTTP)'} servers.")
    trusted = table.get("trusted", False)
    timeout = table.get("timeout_s")
    if not isinstance(trusted, bool):
        raise ToolConfigError(f"{where}: trusted must be true or false.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise ToolConfigError(f"{where}: timeout_s must be a positive number of seconds.")
    cwd = table.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ToolConfigError(f"{where}: cwd must be a string (a directory).")
    return McpServerConfig(
        name=name, command=command, args=_strings(table.get("args", []), where, "args"),
        env=_pairs(table.get("env", {}), where, "env"), cwd=cwd, url=url,
        headers=_pairs(table.get("headers", {}), where, "headers"), trusted=trusted,
        timeout_s=float(timeout) if timeout is not None else None)


def parse_mcp_servers(tables) -> tuple[McpServerConfig, ...]:
    """``[[mcp_servers]]`` tables (a list of dicts from TOML) -> server configs; None means none."""
    if tables is None:
        return ()
    if not isinstance(tables, list):
        raise ToolConfigError("mcp_servers must be a list of tables ([[mcp_servers]] sections).")
    return tuple(_server(number, table) for number, table in enumerate(tables, 1))
