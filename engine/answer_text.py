"""Cumulative generated text -> the deltas an answer may show now.

Every in-process backend streams through one ``AnswerText``: the transformers loop
(engine/generate.py, which also applies stop strings itself), llama.cpp and vLLM (whose servers
apply stop strings). It holds back what might still turn out to be the start of a stop string
or a split character, and applies the prompt format's end-of-answer rules
(``PromptFormat.end_of_answer`` / ``safe_prefix``): a base model runs on past its answer, and
the format knows where the answer ended.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.templates import PromptFormat

__all__ = ["AnswerText"]


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters might be the start of a stop string (or a split character)."""
    hold = 1 if text.endswith("\ufffd") else 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    return hold


class AnswerText:
    """Feed it the whole text generated so far; it returns what is new to show.

    ``ended`` turns True once a stop string or the format's rules ended the answer (the caller
    then stops generating); ``finish`` gives the rest once generation stopped on its own.
    """

    def __init__(self, fmt: PromptFormat | None = None, stop_strings: Sequence[str] = ()) -> None:
        # The format's end-of-answer rules, remembering the lines judged already (None: it cuts nothing).
        self.scanner = fmt.answer_scanner() if fmt is not None else None
        self.stops = tuple(s for s in stop_strings if s)
        self.emitted = 0  # characters of the text already shown
        self.ended = False

    def update(self, text: str) -> str:
        """The next delta for ``text``; sets ``ended`` when the answer is over."""
        if self.ended:
            return ""
        cut = min((i for i in (text.find(s, max(0, self.emitted - len(s))) for s in self.stops) if i >= 0),
                  default=-1)
        # Text before a stop string is finished; otherwise the last line may still grow.
        answer_end = (self.scanner.end_of_answer(text[:cut] if cut >= 0 else text, final=cut >= 0)
                      if self.scanner is not None else None)
        if answer_end is not None:
            cut = answer_end
        if cut >= 0:
            self.ended = True
            return self._emit(text, cut)
        end = len(text) - _held_back(text, self.stops)
        if self.scanner is not None:
            end = min(end, self.scanner.safe_prefix(text))
        return self._emit(text, end)

    def finish(self, text: str) -> str:
        """The rest of ``text`` once generation stopped by itself (EOS, max tokens), judged as finished."""
        if self.ended:
            return ""
        self.ended = True
        answer_end = self.scanner.end_of_answer(text, final=True) if self.scanner is not None else None
        return self._emit(text, len(text) if answer_end is None else answer_end)

    def _emit(self, text: str, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta, self.emitted = text[self.emitted:end], end
        return delta
