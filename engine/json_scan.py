"""Where JSON values end in text that may still be growing (a streamed model output).

``json.loads`` needs the whole value; a streaming tool-call parser needs to know, for a prefix
of the output, which object fields are complete and where an unfinished value starts. These
scanners answer that without parsing values, and say ``None`` where the text runs out.
"""

from __future__ import annotations

__all__ = ["skip_ws", "value_end", "object_fields"]

_WS = " \t\r\n"
_LITERAL_END = set(_WS + ",]}")


def skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _string_end(text: str, i: int) -> int | None:
    """``text[i]`` is a quote: the index after the closing quote, or None."""
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1
        i += 1
    return None


def value_end(text: str, i: int) -> int | None:
    """The index just after the JSON value starting at ``text[i]``, or None if it is unfinished.

    Malformed text is not diagnosed here (``json.loads`` does that once the value is whole);
    brackets are matched and strings skipped so that nesting is counted right.
    """
    if i >= len(text):
        return None
    char = text[i]
    if char == '"':
        return _string_end(text, i)
    if char in "{[":
        depth = 0
        while i < len(text):
            char = text[i]
            if char == '"':
                end = _string_end(text, i)
                if end is None:
                    return None
                i = end
                continue
            if char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return None
    # number, true, false, null: ends at a delimiter; at the end of the text it may still grow
    while i < len(text) and text[i] not in _LITERAL_END:
        i += 1
    return i if i < len(text) else None


def object_fields(text: str, i: int) -> tuple[list[tuple[str, int, int | None]], int | None]:
    """Fields of the object starting at ``text[i]`` (a ``{``) as far as the text goes.

    Returns ``([(key, value_start, value_end or None), ...], object_end or None)``; a field
    appears once its value has started. Keys that are not valid JSON strings end the scan.
    """
    import json

    fields: list[tuple[str, int, int | None]] = []
    i = skip_ws(text, i + 1)
    while i < len(text):
        if text[i] == "}":
            return fields, i + 1
        if text[i] == ",":
            i = skip_ws(text, i + 1)
            continue
        if text[i] != '"':
            return fields, None
        key_end = _string_end(text, i)
        if key_end is None:
            return fields, None
        try:
            key = json.loads(text[i:key_end])
        except ValueError:
            return fields, None
        i = skip_ws(text, key_end)
        if i >= len(text) or text[i] != ":":
            return fields, None
        start = skip_ws(text, i + 1)
        if start >= len(text):
            return fields, None
        end = value_end(text, start)
        fields.append((key, start, end))
        if end is None:
            return fields, None
        i = skip_ws(text, end)
    return fields, None
