"""A tool call written as plain JSON, fenced (```json) or bare, that is the whole answer.

Small instruct models do not always use their template's call markers: with ``tool_choice:
"auto"``, Qwen2.5-Coder 0.5B (measured, tests/data/model_outputs.json) answers "What's the weather
in Beijing?" with ```json {"name": "get_weather", "arguments": {"city": "Beijing"}} ``` and
Llama 3 writes the bare object. JSON is also what people ask models to answer in, so such JSON is
a call only when nothing else can be meant:

* after an optional fence (```json or ```, closed by ```), the answer is one call object or a
  JSON array of call objects, with nothing but whitespace around;
* a call object has a ``name`` that is one of the request's tools, and ``arguments`` (or
  ``parameters``; absent means ``{}``) and no other keys;
* its arguments are an object valid for that tool's parameter schema (``jsonschema``).

Every call must pass, or the whole answer is text. ``json_calls`` decides as early as the text
allows, so a streamed answer that cannot be a call is released at once, not at its end.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping

from engine.json_scan import object_fields, skip_ws, value_end

__all__ = ["Tools", "Schemas", "json_calls", "schemas_of", "tool_schemas", "PATIENCE"]

# Tool names, or each name's parameter schema (None: any object is accepted as arguments).
Tools = Mapping[str, dict | None] | Collection[str]
Schemas = Mapping[str, dict | None]

PATIENCE = 200  # characters of an opened object without a first field before we call it text
_FENCE = "```"
_FENCE_LANGUAGES = ("", "json")
_NAME, _ARGUMENT_KEYS = "name", ("arguments", "parameters")

# What ``json_calls`` says: None (cannot tell yet), False (text), or the calls as (name, arguments JSON).
Verdict = list[tuple[str, str]] | bool | None


def schemas_of(tools: Tools) -> dict[str, dict | None]:
    """Name -> parameter schema; a plain collection of names checks arguments only for being an object."""
    return dict(tools) if isinstance(tools, Mapping) else dict.fromkeys(tools)


def tool_schemas(definitions: Iterable[dict]) -> dict[str, dict | None]:
    """Name -> parameter schema of OpenAI tool definitions (``{"type": "function", "function": {...}}``)."""
    return {d["function"]["name"]: d["function"].get("parameters") for d in definitions}


def _valid(arguments, schema: dict | None) -> bool:
    if not isinstance(arguments, dict):
        return False
    if schema is None:
        return True
    from jsonschema import validators
    from jsonschema.exceptions import SchemaError
    from referencing.exceptions import Unresolvable

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
        return cls(schema).is_valid(arguments)
    except (SchemaError, Unresolvable):
        # The request's schema is broken (or points elsewhere): it cannot judge the arguments, and a
        # declared tool named in a well-formed call object is not turned into text for the
        # request author's mistake.
        return True


def _whole_call(text: str, schemas: Schemas) -> tuple[str, str] | None:
    """The (name, arguments JSON) of a complete object, or None when it is not a valid call."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    argument_keys = [k for k in _ARGUMENT_KEYS if k in obj] if isinstance(obj, dict) else []
    if not isinstance(obj, dict) or set(obj) - {_NAME, *_ARGUMENT_KEYS} or len(argument_keys) > 1:
        return None
    name = obj.get(_NAME)
    if not isinstance(name, str) or name not in schemas:
        return None
    arguments = obj[argument_keys[0]] if argument_keys else {}
    if isinstance(arguments, str):  # arguments sent as a JSON string, as OpenAI's wire format has them
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not _valid(arguments, schemas[name]):
        return None
    return name, json.dumps(arguments, ensure_ascii=False)


def _call_object(text: str, i: int, schemas: Schemas) -> tuple[Verdict, int | None]:
    """The call in the object at ``text[i]`` and where it ends; an unfinished one is judged by its keys."""
    end = value_end(text, i)
    if end is not None:
        call = _whole_call(text[i:end], schemas)
        return ([call] if call else False), end
    fields, _ = object_fields(text, i)
    for key, start, stop in fields:
        if key != _NAME and key not in _ARGUMENT_KEYS:
            return False, None
        if key == _NAME and stop is not None:
            try:
                name = json.loads(text[start:stop])
            except ValueError:
                return False, None
            if not isinstance(name, str) or name not in schemas:
                return False, None
    if not fields and len(text) - i > PATIENCE:
        return False, None
    return None, None


def _payload(text: str, i: int, schemas: Schemas) -> tuple[Verdict, int | None]:
    """The calls in the object or array of objects at ``text[i]``, and where the JSON ends."""
    if text[i] == "{":
        return _call_object(text, i, schemas)
    calls: list[tuple[str, str]] = []
    i = skip_ws(text, i + 1)
    while i < len(text):
        if text[i] != "{":
            return False, None
        verdict, end = _call_object(text, i, schemas)
        if not verdict:
            return verdict, None
        calls += verdict
        i = skip_ws(text, end)
        if i < len(text) and text[i] == "]":
            return calls, i + 1
        if i < len(text) and text[i] != ",":
            return False, None
        i = skip_ws(text, i + 1)
    return None, None


def _opening(text: str) -> tuple[Verdict, int, bool]:
    """(None to go on / verdict, where the JSON starts, whether fenced) of an answer without leading space."""
    if text[:1] in ("{", "["):
        return None, 0, False
    if not _FENCE.startswith(text[:3]):
        return False, 0, False
    newline = text.find("\n", 3)
    language = (text[3:] if newline < 0 else text[3:newline]).strip().lower()
    if newline < 0:  # the fence's line is not finished: the JSON has not started
        maybe = any(known.startswith(language) for known in _FENCE_LANGUAGES)
        return (None if maybe else False), len(text), True
    return (None if language in _FENCE_LANGUAGES else False), newline + 1, True


def _closing(rest: str, fenced: bool, final: bool) -> bool | None:
    """Whether what follows the JSON is only whitespace (and the closing fence): True, False, or None."""
    rest = rest.strip()
    if fenced and rest.startswith(_FENCE):
        rest, fenced = rest[len(_FENCE):].strip(), False
    elif fenced and not final and _FENCE.startswith(rest):
        return None
    if rest:
        return False
    return None if not final else not fenced  # a fence must be closed


def json_calls(answer: str, schemas: Schemas, final: bool) -> Verdict:
    """Whether ``answer`` (so far, or all of it when ``final``) is a call written as JSON.

    None: it may still become one (hold it back); False: it is text; when ``final`` and it is a
    call, the calls as (name, arguments JSON). Before the end it never says "call", since text
    may still follow the JSON.
    """
    text = answer.lstrip()
    if not text:
        return False if final else None
    verdict, start, fenced = _opening(text)
    if verdict is not None or start >= len(text):
        return False if final and verdict is None else verdict
    i = skip_ws(text, start)
    if i >= len(text):
        return False if final else None
    if text[i] not in "{[":
        return False
    calls, end = _payload(text, i, schemas)
    if not calls or end is None:
        return False if final or calls is False else None
    closing = _closing(text[end:], fenced, final)
    if closing is None:
        return None
    return calls if closing else False
