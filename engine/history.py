"""Turn a conversation into prompt token ids that fit the model's context.

History is data: callers pass a list of ``{"role", "content"}`` dicts and get new lists back.
Trimming counts tokens with the model's own tokenizer and prompt format
(``engine.templates``), keeps the system prompt and the newest turns, and reserves room for
the answer. ``fit_prompt`` takes any ``encode(messages) -> ids`` function, so a backend
without an HF tokenizer (llama.cpp) trims by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import ConfigError, PromptTooLong
from engine.templates import PromptFormat, prompt_format

__all__ = ["TrimmedPrompt", "validate_messages", "render_prompt_ids", "fit_to_context", "fit_prompt"]

Encode = Callable[[list[dict]], list[int]]

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class TrimmedPrompt:
    ids: list[int]
    messages: list[dict]
    dropped: int  # how many older messages did not fit


def validate_messages(messages: list[dict]) -> list[dict]:
    """Copy and check messages; raise ConfigError with a readable reason."""
    if not messages:
        raise ConfigError("The conversation is empty: send a message first.")
    clean: list[dict] = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ConfigError(f"Message {i + 1} has role {role!r}; use system, user or assistant.")
        if not isinstance(content, str):
            raise ConfigError(f"Message {i + 1} content must be text.")
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "user":
        raise ConfigError("The last message must come from the user.")
    return clean


def render_prompt_ids(tokenizer, messages: list[dict], fmt: PromptFormat | None = None) -> list[int]:
    """Prompt ids through ``fmt`` (default: the tokenizer's own template, or the completion format)."""
    fmt = fmt or prompt_format(getattr(tokenizer, "chat_template", None))
    text = fmt.render(messages, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "")
    # The format already writes BOS where the model wants it.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_to_context(tokenizer, messages: list[dict], context_length: int, reserve: int,
                   fmt: PromptFormat | None = None) -> TrimmedPrompt:
    """``fit_prompt`` with an HF tokenizer and prompt format."""
    return fit_prompt(messages, context_length, reserve, lambda m: render_prompt_ids(tokenizer, m, fmt))


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
        if len(turns) <= 1:
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
