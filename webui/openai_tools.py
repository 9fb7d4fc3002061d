"""``tools``, ``tool_choice``, ``response_format`` and ``chat_template_kwargs`` of a /v1 request.

What the engine is asked for, as OpenAI defines it:

* ``tool_choice`` "none" (or no tools): the tools are not shown to the model, no calls are read.
* "auto" (the default with tools): the template gets the tools; calls in the output are read.
* "required" or a named function: as "auto", and decoding is constrained to a call's JSON
  (``{"name", "arguments"}`` valid for the function's parameter schema), so the arguments
  are valid even from a small model.
* ``response_format`` ``json_object`` / ``json_schema``: decoding is constrained to the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.json_schema import JSON_OBJECT, tool_call_schema

__all__ = ["ToolPlan", "tool_plan", "response_schema", "template_kwargs"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_TEMPLATE_VALUE = (str, int, float, bool, type(None))


class _Invalid(Exception):
    pass


@dataclass(frozen=True)
class ToolPlan:
    tools: tuple[dict, ...]  # OpenAI tool definitions for the chat template
    names: tuple[str, ...]  # tool names whose calls are read from the output
    json_schema: dict | None  # the forced call's schema ("required" / a named function)


def _functions(tools, invalid) -> list[dict]:
    functions = []
    for i, tool in enumerate(tools or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise invalid(f"tools[{i}]: only tools of type 'function' with a 'function' object are supported.",
                          f"tools[{i}]")
        name = function.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise invalid(f"tools[{i}].function.name must be 1-64 letters, digits, '_', '.' or '-'.",
                          f"tools[{i}].function.name")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid(f"tools[{i}].function.parameters must be a JSON schema object.",
                          f"tools[{i}].function.parameters")
        functions.append(function)
    names = [f["name"] for f in functions]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise invalid(f"tools: the function name {duplicate!r} is defined twice.", "tools")
    return functions


def tool_plan(tools, tool_choice, invalid) -> ToolPlan:
    """The plan for a request's ``tools`` / ``tool_choice``; ``invalid(message, param)`` builds the 400."""
    functions = _functions(tools, invalid)
    choice = tool_choice if tool_choice is not None else ("auto" if functions else "none")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        chosen = [f for f in functions if f["name"] == name]
        if not chosen:
            known = ", ".join(repr(f["name"]) for f in functions) or "none"
            raise invalid(f"tool_choice names the function {name!r}, which is not in tools (known: {known}).",
                          "tool_choice")
        return ToolPlan(tuple(tools), tuple(f["name"] for f in functions), tool_call_schema(chosen))
    if choice not in ("none", "auto", "required"):
        raise invalid("tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': "
                      "{'name': ...}}.", "tool_choice")
    if choice == "none":
        return ToolPlan((), (), None)
    if not functions:
        raise invalid(f"tool_choice {choice!r} needs at least one tool in tools.", "tool_choice")
    schema = tool_call_schema(functions) if choice == "required" else None
    return ToolPlan(tuple(tools), tuple(f["name"] for f in functions), schema)


def response_schema(response_format, invalid) -> dict | None:
    """The schema ``response_format`` asks for, or None for plain text."""
    if response_format is None:
        return None
    kind = response_format.get("type", "text") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise invalid("response_format.json_schema.schema must be a JSON schema object.",
                          "response_format.json_schema.schema")
        return schema
    raise invalid("response_format.type must be 'text', 'json_object' or 'json_schema'.", "response_format")


def template_kwargs(kwargs, invalid) -> dict:
    """``chat_template_kwargs`` (e.g. ``{"enable_thinking": false}``): simple named values only."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict) or not all(isinstance(v, _TEMPLATE_VALUE) for v in kwargs.values()):
        raise invalid("chat_template_kwargs must map names to text, numbers, booleans or null.",
                      "chat_template_kwargs")
    reserved = {"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"} & set(kwargs)
    if reserved:
        raise invalid(f"chat_template_kwargs may not set {', '.join(sorted(reserved))}.", "chat_template_kwargs")
    return dict(kwargs)
