"""Prompt formats: how a conversation becomes prompt text, and where an answer ends.

Every backend renders prompts here, so Chat, Docs and Code read the same on llama.cpp and
transformers; nothing below needs an HF tokenizer (llama.cpp has none).

* Models that ship a chat template (instruction-tuned ones) keep it: it is rendered with
  transformers' own jinja helper, and they stop on their end-of-turn token.
* Models without one (base models, the embedded Gemma 3 270M among them) never learned a turn
  format; fed one, they repeat the prompt. They do follow a plain text completion:
  the system text, then ``Question: …`` / ``Answer:`` pairs (``问题：`` / ``回答：`` when the
  question is Chinese), after a few worked examples that show the shape of an answer. A base
  model does not know when to stop, so the format also says where an answer ends
  (``engine.completion_end``: the next question label, a blank line after the answer, a repeat).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from engine.completion_end import CompletionScanner

__all__ = ["PromptFormat", "prompt_format", "COMPLETION_LABELS", "COMPLETION_EXAMPLES"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

#: language -> (question label, answer label) of the completion format.
COMPLETION_LABELS: dict[str, tuple[str, str]] = {"en": ("Question:", "Answer:"), "zh": ("问题：", "回答：")}

# Stop strings of the completion format: generation stops at the next question label.
_COMPLETION_STOPS = ("\nQuestion:", "\n问题：", "\n问题:", "\nQuestion：")

# End-of-turn markers of templates we know; a model that uses one stops on it.
_TURN_MARKERS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>")

# A base model given a bare question often restates it or rambles; a few worked examples first
# show it the shape of an answer (short, then a blank line). Measured on bench/data/questions.json
# (greedy, Gemma 3 270M): see docs/performance.md. None of them is one of the bench's questions.
# Sums are answered as "3 + 5 = 8.": writing the sum out first gets 6 of 10 right instead of 2.
# (A code example here made the model answer "which keyword defines a function?" with its code.)
_EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (("What is the capital of Germany?", "Berlin."), ("What is 3 + 5?", "3 + 5 = 8."),
           ("Why do leaves fall in autumn?", "Trees drop their leaves to save water and energy during the cold winter.")),
    "zh": (("德国的首都是哪里？", "柏林。"), ("3 加 5 等于多少？", "3 + 5 = 8。"),
           ("秋天树叶为什么会落下？", "树木落叶是为了在寒冷的冬天节省水分和能量。")),
}
COMPLETION_EXAMPLES = _EXAMPLES  # public: the quality bench counts copying them as parroting
_EXAMPLES_AFTER_SYSTEM = False


def _language(text: str) -> str:
    return "zh" if _CJK.search(text or "") else "en"


@dataclass(frozen=True)
class PromptFormat:
    """How prompts are written for one model. ``completion`` is True for the base-model format."""

    name: str
    chat_template: str | None
    stop_strings: tuple[str, ...]
    completion: bool

    def render(self, messages: Sequence[dict], bos_token: str = "", eos_token: str = "",
               tools: list[dict] | None = None, **template_kwargs) -> str:
        """The prompt text for ``messages`` (ending where the model's answer begins).

        ``bos_token`` is written where the model wants it: pass the model's BOS when the text is
        tokenized without special tokens, or "" when the tokenizer adds BOS itself. ``tools`` and
        ``template_kwargs`` (e.g. ``enable_thinking``) go to templates that read them.
        """
        if self.completion:
            return bos_token + _render_completion(messages)
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered = render_jinja_template([list(messages)], chat_template=self.chat_template,
                                         add_generation_prompt=True, bos_token=bos_token, eos_token=eos_token,
                                         tools=tools, **template_kwargs)
        # The helper returns (texts, generation indices); one conversation went in.
        texts = rendered[0] if isinstance(rendered, tuple) else rendered
        return texts[0] if isinstance(texts, list) else texts

    @cached_property
    def default_system_prompt(self) -> str | None:
        """The system text the template writes when a conversation brings none (Qwen's "You are Qwen,
        created by Alibaba Cloud. You are a helpful assistant."), or None. Models answer best with the
        words they were tuned with, so Chat starts from these (``assist.chat_defaults``)."""
        if self.completion:
            return None
        from jinja2.exceptions import TemplateError

        question = [{"role": "user", "content": "\x00Q\x00"}]
        try:
            bare = self.render(question)
            marked = self.render([{"role": "system", "content": "\x00S\x00"}, *question])
        except (TemplateError, TypeError, ValueError):  # a template that refuses a system turn has no default
            return None
        before, _, after = marked.partition("\x00S\x00")
        after = after[:after.find("\x00Q\x00") + 3]  # from the system text's end through the question
        if not after or not bare.startswith(before) or after not in bare[len(before):]:
            return None
        own = bare[len(before):bare.index(after, len(before))].strip()
        return own or None

    def end_of_answer(self, text: str, final: bool = False) -> int | None:
        """Where the answer in ``text`` (generated so far) ends, or None to keep generating.

        ``final=True`` once generation has stopped (the last line is then complete). Models with
        their own template end on their end-of-turn token; this only cuts completion answers.
        """
        return CompletionScanner().end_of_answer(text, final) if self.completion else None

    def safe_prefix(self, text: str) -> int:
        """How much of ``text`` can be shown now: no later ``end_of_answer`` cuts before it.

        Streaming callers show ``text[:safe_prefix(text)]`` (minus what stop strings hold back)
        and the rest once ``end_of_answer`` has decided.
        """
        return CompletionScanner().safe_prefix(text) if self.completion else len(text)

    def answer_scanner(self) -> CompletionScanner | None:
        """For a streamed answer: ``end_of_answer`` / ``safe_prefix`` that remember the lines judged
        already (each call above judges the whole text again). None where the format cuts nothing."""
        return CompletionScanner() if self.completion else None


def prompt_format(chat_template: str | None, model_type: str = "") -> PromptFormat:
    """The format for a model: its own ``chat_template`` if it has one, else the completion format."""
    if chat_template:
        stops = tuple(marker for marker in _TURN_MARKERS if marker in chat_template)
        return PromptFormat(name="chat_template", chat_template=chat_template, stop_strings=stops, completion=False)
    family = (model_type or "").lower() or "base"
    return PromptFormat(name=f"completion ({family})", chat_template=None, stop_strings=_COMPLETION_STOPS,
                        completion=True)


def _render_completion(messages: Sequence[dict]) -> str:
    """Worked examples, the system text, then Question/Answer pairs, ending with an open ``Answer:``.

    The labels and examples follow the language of the last user message, so a Chinese
    question gets ``问题：`` / ``回答：`` throughout.
    """
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    language = _language(last_user)
    ask, answer = COMPLETION_LABELS[language]
    examples = "".join(f"{_label(ask)}{q}\n{_label(answer)}{a}\n\n" for q, a in _EXAMPLES[language])
    parts: list[str] = [] if _EXAMPLES_AFTER_SYSTEM else [examples]
    for message in messages:
        content = str(message["content"]).strip()
        if message["role"] == "system":
            if content:
                parts.append(content + "\n\n")
            if _EXAMPLES_AFTER_SYSTEM:
                parts.append(examples)
                examples = ""
        elif message["role"] == "user":
            parts.append(f"{_label(ask)}{content}\n")
        else:
            parts.append(f"{_label(answer)}{content}\n\n")
    if _EXAMPLES_AFTER_SYSTEM and examples:
        parts.insert(0, examples)
    if not messages or messages[-1]["role"] != "assistant":
        parts.append(answer)
    return "".join(parts)


def _label(label: str) -> str:
    return label if label.endswith("：") else label + " "  # no space after a full-width colon
