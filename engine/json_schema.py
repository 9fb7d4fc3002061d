"""Which JSON schemas constrained decoding can enforce, and the schema of a forced tool call.

A strict ``response_format`` promises output that matches the schema. Grammar engines turn a
schema into a grammar keyword by keyword; a keyword they ignore would be a promise broken
silently, so a schema that uses one is refused (400) with the keyword and where it is. The set
below is what llama.cpp's ``json_schema_to_grammar`` and xgrammar both enforce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.errors import ConfigError

__all__ = ["check_schema", "for_decoding", "JSON_OBJECT", "tool_call_schema", "MAX_SCHEMA_CHARS"]

JSON_OBJECT: dict = {"type": "object"}  # response_format json_object: any JSON object
MAX_SCHEMA_CHARS = 64_000  # a grammar is built per request; bigger schemas are a mistake or an attack

_ENFORCED = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "enum", "const",
    "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "minItems", "maxItems", "minLength",
    "maxLength", "pattern", "format",
}
_INTEGER_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated",
                "readOnly", "writeOnly", "nullable", "strict"}
_FORMATS = {"date", "time", "date-time", "uuid"}
_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _walk(schema, where: str) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise ConfigError(f"{where} must be a JSON schema object (got {type(schema).__name__}).")
    types = schema.get("type")
    type_list = [types] if isinstance(types, str) else list(types or [])
    bad_type = next((t for t in type_list if t not in _TYPES), None)
    if bad_type is not None:
        raise ConfigError(f"{where}: {bad_type!r} is not a JSON schema type.")
    for key in schema:
        if key in _ANNOTATIONS or key in _ENFORCED:
            continue
        if key in _INTEGER_BOUNDS and type_list == ["integer"]:
            continue
        hint = " (bounds are enforced on integers only)" if key in _INTEGER_BOUNDS else ""
        raise ConfigError(f"{where}: the keyword {key!r} cannot be enforced by constrained decoding{hint}; "
                          "remove it or check that value after decoding.")
    if "format" in schema and schema["format"] not in _FORMATS:
        raise ConfigError(f"{where}: format {schema['format']!r} cannot be enforced; supported formats are "
                          f"{', '.join(sorted(_FORMATS))}.")
    ref = schema.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#/")):
        raise ConfigError(f"{where}: only local references ('#/$defs/...') can be enforced (got {ref!r}).")
    for key in _SCHEMA_MAPS:
        if key in schema:
            if not isinstance(schema[key], Mapping):
                raise ConfigError(f"{where}.{key} must be an object of schemas.")
            for name, sub in schema[key].items():
                _walk(sub, f"{where}.{key}.{name}")
    for key in _SCHEMA_LISTS:
        if key in schema:
            if not isinstance(schema[key], Sequence) or isinstance(schema[key], str):
                raise ConfigError(f"{where}.{key} must be a list of schemas.")
            for i, sub in enumerate(schema[key]):
                _walk(sub, f"{where}.{key}[{i}]")
    for key in ("items", "additionalProperties"):
        if key in schema:
            _walk(schema[key], f"{where}.{key}")


def check_schema(schema, where: str = "schema") -> None:
    """Raise ConfigError naming the first part of ``schema`` that constrained decoding cannot enforce."""
    import json

    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} is not JSON: {exc}.") from exc
    if size > MAX_SCHEMA_CHARS:
        raise ConfigError(f"{where} is {size} characters; at most {MAX_SCHEMA_CHARS} are supported.")
    _walk(schema, where)


def for_decoding(schema):
    """``schema`` as the grammar is built from it: objects with listed properties are closed.

    JSON Schema lets an object carry properties it does not list, and grammar engines follow
    that; a small model then keeps inventing keys until max_tokens cuts the JSON (measured with
    the 270M default: ``"unit_temperature_temperature..."``). Output without extra keys is still
    valid for the schema, so unless a schema says ``additionalProperties`` itself, we close it.
    """
    if not isinstance(schema, dict):
        return schema
    closed = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            closed[key] = {name: for_decoding(sub) for name, sub in schema[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            closed[key] = [for_decoding(sub) for sub in schema[key]]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            closed[key] = for_decoding(schema[key])
    if isinstance(schema.get("properties"), dict) and "additionalProperties" not in schema:
        closed["additionalProperties"] = False
    return closed


def _call_schema(function: Mapping, defs: dict) -> dict:
    parameters = dict(function.get("parameters") or {"type": "object", "properties": {}})
    # "#/$defs/x" points at the document root: the call object is the root now, so hoist them.
    for key in ("$defs", "definitions"):
        for name, sub in (parameters.pop(key, None) or {}).items():
            if defs.setdefault(key, {}).setdefault(name, sub) != sub:
                raise ConfigError(f"Two tools define a different {key}.{name}; rename one of them.")
    return {"type": "object", "properties": {"name": {"const": function["name"]}, "arguments": parameters},
            "required": ["name", "arguments"], "additionalProperties": False}


def tool_call_schema(functions: Sequence[Mapping]) -> dict:
    """The JSON a forced call must be: ``{"name": <one of functions>, "arguments": <its parameters>}``.

    ``tool_calls.ToolCallParser`` reads this bare object as a call (``name`` comes first).
    """
    defs: dict = {}
    calls = [_call_schema(f, defs) for f in functions]
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    return {**schema, **defs}
