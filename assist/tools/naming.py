"""The names tools have in the prompt, and back.

People and the API see ``server.tool`` (``time.get_current_time``). The model sees a name it can
write: the tool's own name (``get_current_time``) when no other enabled tool has it, else
``server__tool``. Small models copy a short, plain name from the tool list far more reliably than
a qualified one, and MCP servers already name their tools for models; the qualified form appears
only where two servers' tools would clash. Names keep to OpenAI's function-name characters
(letters, digits, ``_``, ``-``; no dots), so a remote OpenAI-compatible backend accepts them.
Calls written with the other forms (``time__get_current_time``, ``time.get_current_time``) are
read as well.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from assist.tools.registry import ToolInfo

__all__ = ["ToolSet", "model_name_of"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name)[:64] or "tool"


def model_name_of(qualified: str) -> str:
    """The plain prompt name of a ``server.tool`` that is not among the enabled tools (old turns)."""
    return _safe(qualified.split(".", 1)[-1])


class ToolSet:
    """The enabled tools of one answer, with their prompt names."""

    def __init__(self, tools: Sequence[ToolInfo]) -> None:
        self.tools = list(tools)
        counts = Counter(_safe(t.name) for t in self.tools)
        self._by_model: dict[str, ToolInfo] = {}
        self._model: dict[str, str] = {}
        for tool in self.tools:
            name = _safe(tool.name) if counts[_safe(tool.name)] == 1 else _safe(f"{tool.server}__{tool.name}")
            base, n = name, 2
            while name in self._by_model:  # two names that become the same once made safe
                name, n = f"{base[:60]}_{n}", n + 1
            self._by_model[name] = tool
            self._model[tool.qualified] = name
        self._aliases = {alias: tool for tool in self.tools
                         for alias in (tool.qualified, _safe(f"{tool.server}__{tool.name}"))
                         if alias not in self._by_model}

    def __bool__(self) -> bool:
        return bool(self.tools)

    def model_name(self, qualified: str) -> str:
        return self._model.get(qualified) or model_name_of(qualified)

    def resolve(self, name: str) -> ToolInfo | None:
        """The tool a call names (its prompt name, or one of the qualified forms)."""
        return self._by_model.get(name) or self._aliases.get(name)

    def definitions(self) -> list[dict]:
        """OpenAI tool definitions for the chat template."""
        return [{"type": "function", "function": {"name": self._model[t.qualified], "description": t.description,
                                                  "parameters": t.parameters}} for t in self.tools]

    def schemas(self) -> dict[str, dict | None]:
        """Every name a call may use -> the parameter schema it is checked against."""
        names = {**self._by_model, **self._aliases}
        return {name: tool.parameters for name, tool in names.items()}
