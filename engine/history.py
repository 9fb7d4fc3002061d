"""Turn a conversation into prompt token ids that fit the model's context.

History is data: callers pass a list of ``{"role", "content"}`` dicts and get new lists back.
Trimming counts tokens with the model's own tokenizer and prompt format
(``engine.templates``), keeps the system prompt and the newest turns, and reserves room for
the answer. ``fit_prompt`` takes any ``encode(messages) -> ids`` function, so a backend
without an HF tokenizer (llama.cpp) trims by the same rule.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import ConfigError, PromptTooLong
from engine.images import check_images
from engine.reasoning import strip_reasoning
from engine.templates import PromptFormat, prompt_format
from engine.tool_prompt import prepare_messages

__all__ = ["TrimmedPrompt", "validate_messages", "render_prompt_ids", "fit_to_context", "fit_prompt", "prompt_text",
           "answer_reserve", "prompt_budget", "estimate_tokens", "estimated_encode"]

Encode = Callable[[list[dict]], list[int]]

ROLES = ("system", "user", "assistant", "tool")
IMAGE_TOKENS_ESTIMATE = 768  # what an image costs a vision model, where no processor can tell (remote servers)
# Tokens a chat template adds around messages beyond their contents (BOS, turn markers), for
# callers that count contents only; plus 2% of the context for estimates that run short.
TEMPLATE_MARGIN = 32
_MESSAGE_OVERHEAD = 4  # role markers and separators of one turn, where no tokenizer can tell
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def answer_reserve(context_length: int, max_new_tokens: int) -> int:
    """Room kept for the answer: what was asked for, but never more than half the context."""
    return min(int(max_new_tokens), context_length // 2)


def prompt_budget(context_length: int, max_new_tokens: int) -> int:
    """Tokens a caller may spend on message contents so that the prompt fits beside the answer."""
    return max(0, context_length - answer_reserve(context_length, max_new_tokens) - TEMPLATE_MARGIN
               - context_length // 50)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK (and kana, hangul) character, ~4 other characters each."""
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def estimated_encode(messages: list[dict]) -> list[int]:
    """Placeholder ids as many as ``estimate_tokens`` counts, for ``fit_prompt`` without a tokenizer."""
    return [0] * sum(estimate_tokens(m["content"]) + _MESSAGE_OVERHEAD
                     + IMAGE_TOKENS_ESTIMATE * len(m.get("images") or ()) for m in messages)


@dataclass(frozen=True)
class TrimmedPrompt:
    ids: list[int]
    messages: list[dict]
    dropped: int  # how many older messages did not fit


def _arguments(arguments: str | dict) -> str | dict:
    """Arguments as an object where the JSON text is one: chat templates render them with ``tojson``
    (Qwen's, Llama 3.1's), so JSON text came out as a quoted string — and a small model then imitated
    that string in its next call. vLLM hands templates objects too. Text that is no object stays text."""
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments or "{}")
        except ValueError:
            return arguments
        return parsed if isinstance(parsed, dict) else arguments
    return arguments


def _tool_calls(calls, i: int) -> list[dict]:
    """An assistant turn's OpenAI ``tool_calls``, checked; arguments as objects (``_arguments``)."""
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise ConfigError(f"Message {i + 1}: tool_calls must be a list of calls.")
    clean = []
    for call in calls:
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ConfigError(f"Message {i + 1}: each tool call needs a function with a name.")
        arguments = function.get("arguments", "{}")
        if not isinstance(arguments, (str, dict)):
            raise ConfigError(f"Message {i + 1}: tool call arguments must be JSON text.")
        clean.append({"id": str(call.get("id") or ""), "type": "function",
                      "function": {"name": function["name"], "arguments": _arguments(arguments)}})
    return clean


def validate_messages(messages: list[dict]) -> list[dict]:
    """Copy and check messages; raise ConfigError with a readable reason.

    Earlier answers lose their thinking (``<think>…</think>``): reasoning models' templates
    expect that, and it would fill the context. Tool calls and tool results are kept for the
    template (engine/tool_prompt.py folds them into text for templates without tool support).
    """
    if not messages:
        raise ConfigError("The conversation is empty: send a message first.")
    clean: list[dict] = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ConfigError(f"Message {i + 1} has role {role!r}; use system, user, assistant or tool.")
        calls = message.get("tool_calls") if role == "assistant" else None
        if content is None and (calls or role == "tool"):
            content = ""
        if not isinstance(content, str):
            raise ConfigError(f"Message {i + 1} content must be text.")
        item = {"role": role, "content": strip_reasoning(content) if role == "assistant" else content}
        if message.get("images"):
            if role != "user":
                raise ConfigError(f"Message {i + 1}: only user messages may carry images.")
            item["images"] = check_images(message["images"], i)
        if calls:
            item["tool_calls"] = _tool_calls(calls, i)
        if role == "tool":
            item["tool_call_id"] = str(message.get("tool_call_id") or "")
            if message.get("name"):
                item["name"] = str(message["name"])
        clean.append(item)
    if clean[-1]["role"] not in ("user", "tool"):
        raise ConfigError("The last message must come from the user (or be a tool result).")
    return clean


def prompt_text(fmt: PromptFormat, messages: list[dict], bos_token: str = "", eos_token: str = "",
                tools: tuple = (), template_kwargs: dict | None = None) -> str:
    """The prompt text through ``fmt``, with the request's tools and template variables.

    Templates that do tools get them (``tools=``); other templates and the completion format
    get them folded into the messages (engine/tool_prompt.py).
    """
    messages, template_tools = prepare_messages(messages, tools, fmt.chat_template)
    return fmt.render(messages, bos_token=bos_token, eos_token=eos_token, tools=template_tools,
                      **(template_kwargs or {}))


def render_prompt_ids(tokenizer, messages: list[dict], fmt: PromptFormat | None = None, tools: tuple = (),
                      template_kwargs: dict | None = None) -> list[int]:
    """Prompt ids through ``fmt`` (default: the tokenizer's own template, or the completion format)."""
    fmt = fmt or prompt_format(getattr(tokenizer, "chat_template", None))
    text = prompt_text(fmt, messages, tokenizer.bos_token or "", tokenizer.eos_token or "", tools, template_kwargs)
    # The format already writes BOS where the model wants it.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_to_context(tokenizer, messages: list[dict], context_length: int, reserve: int,
                   fmt: PromptFormat | None = None, tools: tuple = (),
                   template_kwargs: dict | None = None) -> TrimmedPrompt:
    """``fit_prompt`` with an HF tokenizer and prompt format."""
    return fit_prompt(messages, context_length, reserve,
                      lambda m: render_prompt_ids(tokenizer, m, fmt, tools, template_kwargs))


def fit_prompt(messages: list[dict], context_length: int, reserve: int, encode: Encode) -> TrimmedPrompt:
    """Drop the oldest non-system turns until prompt + ``reserve`` answer tokens fit."""
    messages = validate_messages(messages)
    budget = context_length - reserve
    system = [m for m in messages if m["role"] == "system"][:1]
    turns = [m for m in messages if m["role"] != "system"]
    dropped = 0
    while True:
        ids = encode(system + turns)
        if len(ids) <= budget:
            return TrimmedPrompt(ids, system + turns, dropped)
        if len(turns) <= 1 or not any(m["role"] == "user" for m in turns[1:]):
            raise PromptTooLong(
                f"Your message is {len(ids)} tokens with the system prompt, but the model's context "
                f"leaves {budget} tokens for it (context {context_length}, {reserve} reserved for the "
                "answer). Shorten the message or lower max new tokens."
            )
        # Drop the oldest turn; drop a following assistant reply too so the history starts with a user.
        turns = turns[1:]
        dropped += 1
        while turns and turns[0]["role"] != "user":
            turns = turns[1:]
            dropped += 1
