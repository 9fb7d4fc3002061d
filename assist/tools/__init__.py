"""Tools for the model: MCP servers (official ``mcp`` SDK), built-in tools, and the tool loop.

``config`` (the admin's ``[[mcp_servers]]``), ``mcp_client`` (one server's session: lazy start,
keep-alive, restart), ``registry`` (all tools by ``server.tool``), ``naming`` (the names the model
sees), ``loop`` (model -> calls -> results -> model, as events, for Chat and ``/api/chat``).
Nothing is started at import; servers start on first use.
"""

from assist.tools.config import McpServerConfig, ToolsConfig, parse_mcp_servers
from assist.tools.errors import ToolError
from assist.tools.loop import LoopDone, TextDelta, ToolCallEvent, ToolResultEvent, run_tool_loop
from assist.tools.naming import ToolSet
from assist.tools.registry import Catalog, ToolInfo, ToolRegistry, ToolResult

__all__ = ["McpServerConfig", "ToolsConfig", "parse_mcp_servers", "ToolError", "ToolRegistry", "ToolInfo",
           "ToolResult", "Catalog", "ToolSet", "run_tool_loop", "TextDelta", "ToolCallEvent", "ToolResultEvent",
           "LoopDone"]
