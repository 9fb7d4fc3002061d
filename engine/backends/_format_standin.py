"""TEMPORARY stand-in for ``engine.templates.prompt_format`` and ``engine.history.fit_prompt``.

Engineer "base" is landing the real prompt formats; this copies their interface so the
llama.cpp backend works meanwhile. Delete this file once engine/templates.py has prompt_format.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import PromptTooLong
from engine.history import TrimmedPrompt, validate_messages

__all__ = ["prompt_format", "fit_prompt"]


@dataclass(frozen=True)
class _Format:
    chat_template: str | None
    stop_strings: tuple[str, ...]
    completion: bool

    def render(self, messages: list[dict], bos_token: str = "", eos_token: str = "") -> str:
        if not self.completion:
            from transformers.utils.chat_template_utils import render_jinja_template

            rendered = render_jinja_template([list(messages)], chat_template=self.chat_template,
                                             add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token)
            texts = rendered[0] if isinstance(rendered, tuple) else rendered
            return texts[0] if isinstance(texts, list) else texts
        parts = [bos_token]
        for m in messages:
            label = {"system": "", "user": "Question: ", "assistant": "Answer: "}[m["role"]]
            parts.append(f"{label}{m['content'].strip()}\n" + ("\n" if m["role"] != "user" else ""))
        parts.append("Answer:")
        return "".join(parts)

    def end_of_answer(self, text: str, final: bool = False) -> int | None:
        if not self.completion:
            return None
        cut = text.find("\n\n", len(text) - len(text.lstrip()))
        return cut if cut >= 0 else None

    def safe_prefix(self, text: str) -> int:
        return len(text.rstrip("\n")) if self.completion else len(text)


def prompt_format(chat_template: str | None, model_type: str = "") -> _Format:
    if chat_template:
        stops = tuple(m for m in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>") if m in chat_template)
        return _Format(chat_template, stops, False)
    return _Format(None, ("\nQuestion:",), True)


def fit_prompt(messages: list[dict], context_length: int, reserve: int, encode) -> TrimmedPrompt:
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
            raise PromptTooLong(f"Your message is {len(ids)} tokens, but the context leaves {budget} for it.")
        turns = turns[1:]
        dropped += 1
        while turns and turns[0]["role"] != "user":
            turns = turns[1:]
            dropped += 1
