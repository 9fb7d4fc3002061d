"""The tool loop, shared by the Chat tab and ``POST /api/chat``: model, calls, results, model, … answer.

The model gets the enabled tools through its chat template (``SamplingParams.tools``); each call it
writes (parsed by ``engine.answer_stream``) is run through the registry and its result fed back as
a ``tool`` message, until the model answers without calling or ``max_steps`` rounds of calls were
made. The loop is a generator of typed events, so the UI and HTTP show the same thing:

* ``TextDelta`` — answer text (or reasoning) as it streams, from any step;
* ``ToolCallEvent`` — a call the model made (``needs_approval``: waiting for the user's Allow/Deny);
* ``ToolResultEvent`` — its result (text, cut to size; status ok / error / denied / cancelled);
* ``LoopDone`` — last: the final answer, every call with its result, the stats, why it ended.

Stop (``cancel`` set) ends the loop at once: the generation stops within a step, a running call
is cancelled (``ToolCancelled``), an approval wait ends. A failed call is not an error of the
answer: its message becomes the result, and the model carries on.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from assist.tools.errors import ToolCancelled, ToolError
from assist.tools.naming import ToolSet
from assist.tools.registry import ToolRegistry, ToolResult
from engine.answer_stream import ToolCallDelta, answer_events
from engine.config import SamplingParams
from engine.stats import GenerationStats

__all__ = ["TextDelta", "ToolCallEvent", "ToolResultEvent", "LoopDone", "run_tool_loop", "template_calls", "DENIED",
           "TIMED_OUT", "STOPPED"]

DENIED = "The user denied this call; it was not made. Answer without it, or say what you would need."
TIMED_OUT = "Nobody allowed this call in time; it was not made."
STOPPED = "Stopped by the user."
# Said to the model only (never shown). Small models (Qwen2.5-Coder-0.5B, measured) otherwise answer a
# tool's result by writing the call again, or turn 02:12+09:00 into "2:12 PM UTC"; of four wordings of
# the note tried on three time questions (one and both of mcp-server-time's tools, with the Chat
# tab's system prompt and with none), this one gave a right one-sentence answer in all six.
TOOLS_HINT = ("Call a tool only when you need its result. When a tool's result is given to you, answer the "
              "user's question with it in plain words; do not call the tool again.")
RESULT_NOTE = ("Answer the user's question in one sentence using this result. Copy times, dates and numbers "
               "exactly as written in it.")


@dataclass(frozen=True)
class TextDelta:
    text: str
    kind: str = "content"  # or "reasoning"


@dataclass(frozen=True)
class ToolCallEvent:
    id: str
    name: str  # server.tool
    arguments: dict
    needs_approval: bool = False


@dataclass(frozen=True)
class ToolResultEvent:
    id: str
    name: str
    arguments: dict
    result: str
    status: str  # "ok", "error", "denied", "cancelled"
    duration_s: float = 0.0
    truncated: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "arguments": self.arguments, "result": self.result, "status": self.status}


@dataclass
class LoopDone:
    content: str
    reasoning: str
    calls: list[ToolResultEvent] = field(default_factory=list)
    stats: GenerationStats = field(default_factory=GenerationStats)
    finish_reason: str = "stop"  # the last generation's, "cancelled", or "step_limit"
    steps: int = 1


LoopEvent = TextDelta | ToolCallEvent | ToolResultEvent | LoopDone
Approve = Callable[[ToolCallEvent], str]  # -> "allow", "deny" or "timeout"


@dataclass
class _Step:
    content: str = ""
    reasoning: str = ""
    calls: list[dict] = field(default_factory=list)  # OpenAI tool_calls, prompt names
    stats: GenerationStats = field(default_factory=GenerationStats)


def template_calls(calls: list[dict]) -> list[dict]:
    """OpenAI ``tool_calls`` with their arguments as objects: chat templates (Qwen's, Hermes') write
    ``arguments | tojson``, which turns JSON text into a quoted string the model then imitates."""
    out = []
    for call in calls:
        arguments = call["function"].get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            pass  # not JSON: shown as it was written
        out.append({**call, "function": {**call["function"], "arguments": arguments}})
    return out


def _generate(engine, messages, tools: ToolSet, params: SamplingParams, session_id, cancel, meter,
              step: _Step) -> Iterator[TextDelta]:
    params = dataclasses.replace(params, tools=tuple(tools.definitions()))
    stream = engine.stream_chat(messages, params, session_id=session_id, cancel=cancel)
    if meter is not None:
        stream = meter(stream)
    for event in answer_events(stream, tools.schemas(), engine.count_tokens):
        if isinstance(event, GenerationStats):
            step.stats = event
        elif isinstance(event, ToolCallDelta):
            if event.id is not None:
                step.calls.append({"id": event.id, "type": "function",
                                   "function": {"name": event.name, "arguments": ""}})
            step.calls[event.index]["function"]["arguments"] += event.arguments
        elif event.text:
            if event.kind == "reasoning":
                step.reasoning += event.text
            else:
                step.content += event.text
            yield TextDelta(event.text, event.kind)


def _run_call(registry: ToolRegistry, tools: ToolSet, call: dict, cancel, approve) -> Iterator[LoopEvent]:
    """Events of one call; the last is its ``ToolResultEvent`` (``ToolCancelled`` on Stop)."""
    tool = tools.resolve(call["function"]["name"])
    try:
        arguments = json.loads(call["function"]["arguments"] or "{}")
    except ValueError:
        arguments = {}
    name = tool.qualified if tool is not None else call["function"]["name"]
    needs_approval = tool is not None and not tool.trusted and approve is not None
    event = ToolCallEvent(call["id"], name, arguments, needs_approval)
    yield event

    def result(text: str, status: str, outcome: ToolResult | None = None) -> ToolResultEvent:
        return ToolResultEvent(call["id"], name, arguments, text, status, outcome.duration_s if outcome else 0.0,
                               outcome.truncated if outcome else False)

    if tool is None:  # the parser only passes declared names; a guard, not a path
        yield result(f"Error: there is no tool {name!r}.", "error")
        return
    if needs_approval:
        decision = approve(event)
        if cancel.is_set():
            raise ToolCancelled("The answer was stopped while a call waited for approval.")
        if decision != "allow":
            yield result(DENIED if decision == "deny" else TIMED_OUT, "denied")
            return
    try:
        outcome = registry.call(tool, arguments if isinstance(arguments, dict) else {}, cancel)
    except ToolCancelled:
        raise
    except ToolError as exc:
        yield result(f"Error: {exc}", "error")
        return
    yield result(outcome.text, "error" if outcome.is_error else "ok", outcome)


def _with_hint(messages: list[dict]) -> list[dict]:
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        return [{**first, "content": f"{first['content']}\n\n{TOOLS_HINT}".strip()}, *messages[1:]]
    return [{"role": "system", "content": TOOLS_HINT}, *messages]


def run_tool_loop(engine, messages: list[dict], tools: ToolSet, registry: ToolRegistry, params: SamplingParams,
                  *, cancel: threading.Event | None = None, approve: Approve | None = None,
                  max_steps: int | None = None, session_id: str | None = None,
                  meter: Callable[[Iterator], Iterator] | None = None) -> Iterator[LoopEvent]:
    """Answer ``messages`` (engine messages, system first) with ``tools`` available; yields events.

    ``approve`` is asked before each call to an untrusted server (None: no approval step, as over
    HTTP, where the caller chose the tools). ``meter`` wraps each generation (quotas).
    """
    cancel = cancel or threading.Event()
    max_steps = max_steps or registry.config.max_steps
    messages, calls, steps = _with_hint(messages), [], 0
    while True:
        steps += 1
        step = _Step()
        yield from _generate(engine, messages, tools, params, session_id, cancel, meter, step)
        done = LoopDone(step.content, step.reasoning, calls, step.stats, step.stats.finish_reason, steps)
        done.stats.extra["tool_steps"] = steps
        if cancel.is_set() or not step.calls:
            done.finish_reason = "cancelled" if cancel.is_set() else done.finish_reason
            yield done
            return
        messages.append({"role": "assistant", "content": step.content, "tool_calls": template_calls(step.calls)})
        for call in step.calls:
            started = None
            try:
                for event in _run_call(registry, tools, call, cancel, approve):
                    started = event if isinstance(event, ToolCallEvent) else started
                    yield event
            except ToolCancelled:
                if started is not None:
                    calls.append(ToolResultEvent(started.id, started.name, started.arguments, STOPPED, "cancelled"))
                    yield calls[-1]
                done.finish_reason = "cancelled"
                yield done
                return
            calls.append(event)
            messages.append({"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"],
                             "content": f"{event.result}\n\n{RESULT_NOTE}"})
        if steps >= max_steps:
            done.finish_reason = "step_limit"
            yield done
            return
