"""Prompt formats: how a conversation becomes prompt text, and where an answer ends.

Every backend renders prompts here, so Chat, Docs and Code read the same on llama.cpp and
transformers; nothing below needs an HF tokenizer (llama.cpp has none).

* Models that ship a chat template (instruction-tuned ones) keep it: it is rendered with
  transformers' own jinja helper, and they stop on their end-of-turn token.
* Models without one (base models, the embedded Gemma 3 270M among them) never learned a turn
  format; fed one, they repeat the prompt. They do follow a plain text completion:
  the system text, then ``Question: …`` / ``Answer:`` pairs (``问题：`` / ``回答：`` when the
  question is Chinese). A base model does not know when to stop, so the format also says where
  an answer ends: at the next question label, at a blank line after the answer, or when a line
  repeats (small models loop). Fenced code blocks are kept whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PromptFormat", "prompt_format", "COMPLETION_LABELS"]

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
    """System text, then Question/Answer pairs, ending with an open ``Answer:``.

    The labels follow the language of the last user message, so a Chinese question gets
    ``问题：`` / ``回答：`` throughout.
    """
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    ask, answer = COMPLETION_LABELS[_language(last_user)]
    parts: list[str] = []
    for message in messages:
        content = str(message["content"]).strip()
        if message["role"] == "system":
            if content:
                parts.append(content + "\n\n")
        elif message["role"] == "user":
            parts.append(f"{_label(ask)}{content}\n")
        else:
            parts.append(f"{_label(answer)}{content}\n\n")
    if not messages or messages[-1]["role"] != "assistant":
        parts.append(answer)
    return "".join(parts)


def _scan(text: str) -> tuple[int | None, set[str], bool]:
    """Judge every finished line: (cut index or None, long lines seen, inside a fence at the end)."""
    lines = text.split("\n")
    offset, in_fence, blank_after_content, blanks = 0, False, False, 0
    seen: set[str] = set()
    content = False
    for number, line in enumerate(lines):
        last = number == len(lines) - 1  # may still be growing
        stripped = line.strip()
        label = _NEXT_TURN.match(line)
        if _FENCE.match(line):
            in_fence = not in_fence
            content = True
        elif in_fence:
            content = content or bool(stripped)
        elif label and number > 0:
            return _trim(text, offset), seen, in_fence
        elif not stripped:
            blank_after_content = blank_after_content or (content and not last)
            blanks += not last and content
            if blanks >= _BLANK_RUN:  # the model is only writing newlines
                return _trim(text, offset), seen, in_fence
        elif blank_after_content:
            return _trim(text, offset), seen, in_fence
        elif not last:
            blanks = 0
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
