"""Tool calls in model output -> OpenAI ``tool_calls``, while the output streams.

Models write calls in their family's format; all of them are recognised, so no per-model setting
is needed:

* Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (one block per call)
* Llama 3: ``{"name": ..., "parameters": {...}}`` as the whole answer (plain JSON, below), or after
  ``<|python_tag|>``, there with several calls separated by ``;``
* Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`` and the newer
  ``[TOOL_CALLS]name[ARGS]{...}``
* plain JSON, fenced (```json, as small Qwen models write) or bare (Llama 3, and our own
  constrained output for a required or named call): ``engine/tool_json.py`` says when such JSON
  is a call (the whole answer, a declared tool, arguments valid for its schema).

Text before the first marked call is the answer's content. Arguments of marked calls stream as
they are written: each ``ToolCallDelta`` carries the next piece of the arguments' JSON text, as
OpenAI's stream does. An answer that may still be a JSON call is held back until it is decided
(a call then comes whole at the end; text is released as soon as it cannot be one).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from engine.json_scan import object_fields, skip_ws, value_end
from engine.reasoning import Piece
from engine.tool_json import Tools, json_calls, schemas_of

__all__ = ["ToolCall", "ToolCallDelta", "ToolCallParser", "parse_tool_calls", "new_call_id", "MARKERS"]

MARKERS = {"<tool_call>": "hermes", "[TOOL_CALLS]": "mistral", "<|python_tag|>": "llama"}
_HERMES_CLOSE, _MISTRAL_ARGS = "</tool_call>", "[ARGS]"
_ARGUMENT_KEYS = ("arguments", "parameters")


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ToolCallDelta:
    """The next piece of call ``index``: ``id`` and ``name`` come with its first piece only."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it

    def to_openai(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class _Found:
    """A call as far as the text goes: name once whole, arguments' JSON text so far."""

    name: str | None
    arguments: str
    complete: bool


def _partial_suffix(text: str) -> int:
    for n in range(min(len(text), max(map(len, MARKERS))), 0, -1):
        if any(marker.startswith(text[-n:]) for marker in MARKERS):
            return n
    return 0


def _call_in_object(text: str, start: int) -> tuple[_Found | None, int | None]:
    """The call in the object at ``text[start]`` and where the object ends."""
    fields, end = object_fields(text, start)
    name, arguments, whole = None, "", False
    for key, value_start, value_stop in fields:
        if key == "name" and value_stop is not None:
            try:
                name = json.loads(text[value_start:value_stop])
            except ValueError:
                return None, end
            if not isinstance(name, str):
                return None, end
        elif key in _ARGUMENT_KEYS:
            raw = text[value_start:value_stop] if value_stop is not None else text[value_start:]
            if raw.startswith('"'):  # arguments sent as a JSON string: only usable once whole
                if value_stop is None:
                    raw = ""
                else:
                    try:
                        raw = str(json.loads(raw))
                    except ValueError:
                        raw = ""
            arguments, whole = raw, value_stop is not None
    if end is not None and not whole:
        arguments = arguments or "{}"
    return _Found(name, arguments, end is not None), end


def _objects(text: str, i: int, separators: str) -> list[_Found]:
    """Call objects one after another from ``text[i]``, skipping ``separators`` between them."""
    found: list[_Found] = []
    while True:
        while i < len(text) and (text[i] in separators or text[i].isspace()):
            i += 1
        if i >= len(text) or text[i] != "{":
            return found
        call, end = _call_in_object(text, i)
        if call is None:
            return found
        found.append(call)
        if end is None:
            return found
        i = end


def _hermes(text: str) -> list[_Found]:
    found: list[_Found] = []
    for block in text.split("<tool_call>"):
        block = block.split(_HERMES_CLOSE)[0]
        found.extend(_objects(block, 0, ""))
    return found


def _mistral(text: str) -> list[_Found]:
    found: list[_Found] = []
    for block in text.split("[TOOL_CALLS]"):
        i = skip_ws(block, 0)
        if block[i:i + 1] == "[":
            found.extend(_objects(block, i + 1, ","))
        elif _MISTRAL_ARGS in block:
            name, rest = block.split(_MISTRAL_ARGS, 1)
            start = skip_ws(rest, 0)
            stop = value_end(rest, start) if start < len(rest) else None
            found.append(_Found(name.strip(), rest[start:stop] if stop else rest[start:], stop is not None))
    return found


_FORMATS = {"hermes": _hermes, "mistral": _mistral, "llama": lambda text: _objects(text, 0, ";,")}


class ToolCallParser:
    """Feed answer text (reasoning already split off); get content ``Piece``s and ``ToolCallDelta``s."""

    def __init__(self, tools: Tools, max_calls: int | None = None) -> None:
        """``tools``: name -> parameter schema (arguments of JSON calls are checked), or just names."""
        self.schemas = schemas_of(tools)
        self.tool_names = set(self.schemas)
        self.max_calls = max_calls  # 1 for ``parallel_tool_calls: false``: later calls are dropped
        self.calls: list[ToolCall] = []
        self._held = ""
        self._format: str | None = None  # set once the calls begin
        self._marker = ""
        self._buffer = ""
        self._started = False  # content other than whitespace was written (the answer is not JSON calls)

    def feed(self, delta: str) -> list[Piece | ToolCallDelta]:
        if self._format is not None:
            self._buffer += delta
            return self._update()
        self._held += delta
        out: list[Piece | ToolCallDelta] = []
        if not self._started:
            if json_calls(self._held, self.schemas, final=False) is None:
                return out  # may still be a call written as JSON: hold it back
            self._started = bool(self._held.strip())
        hits = [(self._held.find(m), m) for m in MARKERS if m in self._held]
        if hits:
            index, marker = min(hits)
            before, self._buffer = self._held[:index], self._held[index + len(marker):]
            self._held, self._format, self._marker = "", MARKERS[marker], marker
            if before and (self._started or before.strip()):  # whitespace after content is content
                out.append(Piece("content", before))
            return out + self._update()
        keep = _partial_suffix(self._held)
        text, self._held = self._held[: len(self._held) - keep], self._held[len(self._held) - keep:]
        if text and (self._started or text.strip()):
            out.append(Piece("content", text))
        return out

    def _update(self) -> list[Piece | ToolCallDelta]:
        out: list[Piece | ToolCallDelta] = []
        for index, found in enumerate(_FORMATS[self._format](self._buffer)):
            if found.name is None or (self.max_calls is not None and index >= self.max_calls):
                break
            if index == len(self.calls):
                self.calls.append(ToolCall(new_call_id(), found.name, ""))
                out.append(ToolCallDelta(index, self.calls[index].id, found.name, ""))
            call = self.calls[index]
            if len(found.arguments) > len(call.arguments) and found.arguments.startswith(call.arguments):
                out.append(ToolCallDelta(index, None, None, found.arguments[len(call.arguments):]))
                call.arguments = found.arguments
        return out

    def _whole_calls(self, calls: list[tuple[str, str]]) -> list[Piece | ToolCallDelta]:
        out: list[Piece | ToolCallDelta] = []
        for name, arguments in calls[:self.max_calls]:
            self.calls.append(ToolCall(new_call_id(), name, arguments))
            index = len(self.calls) - 1  # the header, then the arguments: the shape of OpenAI's stream
            out += [ToolCallDelta(index, self.calls[index].id, name, ""), ToolCallDelta(index, None, None, arguments)]
        return out

    def finish(self) -> list[Piece | ToolCallDelta]:
        """The end of the output: held text is content; output that never became a call is content."""
        if self._format is None:
            held, self._held = self._held, ""
            calls = json_calls(held, self.schemas, final=True) if not self._started else False
            if calls:
                return self._whole_calls(calls)
            return [Piece("content", held)] if held and (self._started or held.strip()) else []
        out = self._update()
        if not self.calls:  # a marker and then nothing usable: show it rather than lose it
            return [Piece("content", self._marker + self._buffer)]
        for call in self.calls:
            if not call.arguments:
                call.arguments = "{}"
                out.append(ToolCallDelta(self.calls.index(call), None, None, "{}"))
        return out


def parse_tool_calls(text: str, tools: Tools) -> tuple[str, list[ToolCall]]:
    """(content, calls) of a complete answer."""
    parser = ToolCallParser(tools)
    pieces = parser.feed(text) + parser.finish()
    content = "".join(p.text for p in pieces if isinstance(p, Piece))
    return content, parser.calls
