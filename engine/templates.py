"""Prompt formats: how a conversation becomes prompt text, and where an answer ends.

Every backend renders prompts here, so Chat, Docs and Code read the same on llama.cpp and
transformers; nothing below needs an HF tokenizer (llama.cpp has none).

* Models that ship a chat template (instruction-tuned ones) keep it: it is rendered with
  transformers' own jinja helper, and they stop on their end-of-turn token.
* Models without one (base models, the embedded Gemma 3 270M among them) never learned a turn
  format; fed one, they repeat the prompt. They do follow a plain text completion:
  the system text, then ``Question: …`` / ``Answer:`` pairs (``问题：`` / ``回答：`` when the
  question is Chinese), after a few worked examples that show the shape of an answer. A base
  model does not know when to stop, so the format also says where an answer ends: at the next
  question label, at a blank line after the answer (one paragraph may follow a code block),
  after a run of blank lines, or when a line or a piece of one repeats (small models loop).
  Fenced code blocks are kept whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PromptFormat", "prompt_format", "COMPLETION_LABELS", "COMPLETION_EXAMPLES"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

#: language -> (question label, answer label) of the completion format.
COMPLETION_LABELS: dict[str, tuple[str, str]] = {"en": ("Question:", "Answer:"), "zh": ("问题：", "回答：")}

# Lines a base model writes when it runs on into an imagined next exchange. The answer ends
# before any of them; the first few are also stop strings, so generation stops there too.
_NEXT_TURN = re.compile(
    r"^[ \t]*(?:Question|Q|Answer|User|Human|Assistant|问题|问|回答|答|用户)[ \t]*[:：]", re.M)
_LABEL_WORDS = ("Question:", "Q:", "Answer:", "User:", "Human:", "Assistant:", "问题：", "问：", "回答：", "答：",
                "用户：", "问题:", "回答:")
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
# A unit of text repeated back to back: a long one three times, a short one ten times ("0000…").
_LOOP = re.compile(r"(.{4,60}?)\1{2,}|(.{1,3}?)\2{9,}")

_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_BLANK_RUN = 2  # this many blank lines in a row end an answer even if nothing follows yet
_MIN_REPEATED = 8  # a repeated line shorter than this ("}", "---") is not a loop


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

    def end_of_answer(self, text: str, final: bool = False) -> int | None:
        """Where the answer in ``text`` (generated so far) ends, or None to keep generating.

        ``final=True`` once generation has stopped (the last line is then complete). Models with
        their own template end on their end-of-turn token; this only cuts completion answers.
        """
        return _completion_end(text, final) if self.completion else None

    def safe_prefix(self, text: str) -> int:
        """How much of ``text`` can be shown now: no later ``end_of_answer`` cuts before it.

        Streaming callers show ``text[:safe_prefix(text)]`` (minus what stop strings hold back)
        and the rest once ``end_of_answer`` has decided.
        """
        return _completion_safe(text) if self.completion else len(text)


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


def _scan(text: str) -> tuple[int | None, set[str], bool]:
    """Judge every finished line: (cut index or None, long lines seen, inside a fence at the end)."""
    lines = text.split("\n")
    offset, in_fence, blank_after_content, blanks, grace = 0, False, False, 0, False
    seen: set[str] = set()
    content = False
    for number, line in enumerate(lines):
        last = number == len(lines) - 1  # may still be growing
        stripped = line.strip()
        label = _NEXT_TURN.match(line)
        if _FENCE.match(line):
            in_fence = not in_fence
            content = True
            if not in_fence:  # one paragraph may follow a code block ("Changed - to +.")
                blank_after_content, blanks, grace = False, 0, True
        elif in_fence:
            content = content or bool(stripped)
        elif label and number > 0:
            return _trim(text, offset), seen, in_fence
        elif not stripped:
            blank_after_content = blank_after_content or (content and not last and not grace)
            blanks += not last and content
            if blanks >= _BLANK_RUN:  # the model is only writing newlines
                return _trim(text, offset), seen, in_fence
        elif blank_after_content:
            return _trim(text, offset), seen, in_fence
        elif (loop := _LOOP.search(line)) is not None:
            return _trim(text, offset + loop.start() + len(loop.group(1) or loop.group(2))), seen, in_fence
        elif not last:
            blanks, grace = 0, False
            if len(stripped) >= _MIN_REPEATED and stripped in seen:
                return _trim(text, offset), seen, in_fence
            seen.add(stripped)
            content = True
        offset += len(line) + 1
    return None, seen, in_fence


def _label(label: str) -> str:
    return label if label.endswith("：") else label + " "  # no space after a full-width colon


def _completion_end(text: str, final: bool) -> int | None:
    cut, _, _ = _scan(text + "\n" if final else text)
    if cut is None and final and text != text.rstrip():
        cut = len(text.rstrip())  # no trailing blank lines in a finished answer
    return None if cut is None else min(cut, len(text))


def _completion_safe(text: str) -> int:
    cut, seen, in_fence = _scan(text)
    if cut is not None:
        return cut
    start = text.rfind("\n") + 1
    line = text[start:]
    stripped = line.strip()
    # The last line may yet turn out to be a repeat, a label, or the first line after a blank one.
    if not in_fence and (not stripped or _could_be_label(line)
                         or any(s.startswith(stripped) for s in seen if len(s) >= _MIN_REPEATED)):
        return len(text[:start].rstrip())
    return len(text[:start].rstrip()) if not stripped else len(text)


def _could_be_label(line: str) -> bool:
    """True while ``line`` is a prefix of a next-turn label ("Quest" of "Question:")."""
    stripped = line.lstrip()
    return len(stripped) < 10 and any(word.startswith(stripped) for word in _LABEL_WORDS)


def _trim(text: str, end: int) -> int:
    """``end`` moved back over trailing whitespace, so the answer does not end in blank lines."""
    return len(text[:end].rstrip())
