"""Exceptions of the tools package, with messages written for the person at the screen.

Like ``assist.errors`` they become ``gr.Error`` / HTTP errors only at the web edge, which reads
``http_status``. Inside the tool loop most of them are not errors of the answer at all: a failed
call becomes the call's result ("Error: …"), which the model reads and the user sees.
"""

from __future__ import annotations

from assist.errors import AssistError

__all__ = ["ToolError", "ToolConfigError", "UnknownTool", "ToolServerUnavailable", "ToolServerCrashed",
           "ToolCallFailed", "ToolTimeout", "ToolCancelled"]


class ToolError(AssistError):
    """Base class of the tools package."""

    http_status = 400


class ToolConfigError(ToolError):
    """An ``[[mcp_servers]]`` table (or a tools option) cannot be used; the message names the fix."""


class UnknownTool(ToolError):
    """A request names a server or tool that is not configured (or not enabled)."""


class ToolServerUnavailable(ToolError):
    """An MCP server could not be started, or could not list its tools; the message says why."""

    http_status = 503


class ToolServerCrashed(ToolServerUnavailable):
    """An MCP server stopped during a call; it is started again on the next use."""


class ToolCallFailed(ToolError):
    """A call reached the tool but did not give a result (a protocol error, a sandbox refusal)."""

    http_status = 502


class ToolTimeout(ToolCallFailed):
    """A call took longer than its limit and was stopped."""

    http_status = 504


class ToolCancelled(ToolError):
    """The user stopped the answer while a call was running (or waiting for approval)."""

    http_status = 499
