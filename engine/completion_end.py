"""Where a base model's answer ends, judged line by line as it grows (the completion format's rules).

A base model does not know when to stop: the answer ends at the next question label, at a blank
line after the answer (one paragraph may follow a code block), after a run of blank lines, or when
a line or a piece of one repeats (small models loop). Fenced code blocks are kept whole.

``CompletionScanner`` is fed the whole text generated so far, many times a second. Judging every
line again each time cost ~4 ms per token on a 300-number line (the repeat search ran over the
whole line): more than a quarter of a 270M model's decoding step on 2 cores. So finished lines are
judged once and remembered, and the line still growing is searched for a repeat only in its new
tail — a repeat first becomes visible within 3 units of 60 characters of where it ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

__all__ = ["CompletionScanner", "LABEL_WORDS"]

# Lines a base model writes when it runs on into an imagined next exchange.
_NEXT_TURN = re.compile(
    r"^[ \t]*(?:Question|Q|Answer|User|Human|Assistant|问题|问|回答|答|用户)[ \t]*[:：]", re.M)
LABEL_WORDS = ("Question:", "Q:", "Answer:", "User:", "Human:", "Assistant:", "问题：", "问：", "回答：", "答：",
               "用户：", "问题:", "回答:")
# A unit of text repeated back to back: a long one three times, a short one ten times ("0000…").
_LOOP = re.compile(r"(.{4,60}?)\1{2,}|(.{1,3}?)\2{9,}")
_LOOP_REACH = 3 * 60  # a repeat new in a line's tail (3 units of <= 60, or 10 of <= 3) starts this close to it
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_BLANK_RUN = 2  # this many blank lines in a row end an answer even if nothing follows yet
_MIN_REPEATED = 8  # a repeated line shorter than this ("}", "---") is not a loop


@dataclass
class _Lines:
    """What the finished lines so far say; a line still growing is judged on a copy."""

    offset: int = 0  # where the next line starts
    in_fence: bool = False
    blank_after_content: bool = False
    blanks: int = 0
    grace: bool = False
    content: bool = False
    seen: set[str] = field(default_factory=set)
    loop_free: int = 0  # characters of the line at ``offset`` known to hold no repeat


def _trim(text: str, end: int) -> int:
    """``end`` moved back over trailing whitespace, so the answer does not end in blank lines (no copy
    of the text: this runs for every token)."""
    end = min(end, len(text))
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _loop_end(state: _Lines, line: str) -> int | None:
    """Where a repeat in ``line`` ends the answer (within the line), or None; remembers what was clean."""
    start = max(0, state.loop_free - _LOOP_REACH)
    loop = _LOOP.search(line, start)
    if loop is None:
        state.loop_free = len(line)
        return None
    return loop.start() + len(loop.group(1) or loop.group(2))


def _judge(state: _Lines, text: str, line: str, number: int, last: bool) -> int | None:
    """One line: the cut index if the answer ends at or in it; updates ``state`` (see ``_scan``)."""
    stripped = line.strip()
    if _FENCE.match(line):
        state.in_fence = not state.in_fence
        state.content = True
        if not state.in_fence:  # one paragraph may follow a code block ("Changed - to +.")
            state.blank_after_content, state.blanks, state.grace = False, 0, True
    elif state.in_fence:
        state.content = state.content or bool(stripped)
    elif _NEXT_TURN.match(line) and number > 0:
        return _trim(text, state.offset)
    elif not stripped:
        state.blank_after_content = state.blank_after_content or (state.content and not last and not state.grace)
        state.blanks += not last and state.content
        if state.blanks >= _BLANK_RUN:  # the model is only writing newlines
            return _trim(text, state.offset)
    elif state.blank_after_content:
        return _trim(text, state.offset)
    elif (end := _loop_end(state, line)) is not None:
        return _trim(text, state.offset + end)
    elif not last:
        state.blanks, state.grace = 0, False
        if len(stripped) >= _MIN_REPEATED and stripped in state.seen:
            return _trim(text, state.offset)
        state.seen.add(stripped)
        state.content = True
    return None


class CompletionScanner:
    """The completion format's end-of-answer rules over a text that only grows (restarts if it does not)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._done = _Lines()
        self._lines = 0
        self._cut: int | None = None
        self._last: tuple[str, int | None, _Lines] | None = None  # the last text judged, and its verdict

    def _scan(self, text: str) -> tuple[int | None, _Lines]:
        """(cut index or None, the state after every line of ``text``, its last line judged as growing).

        ``text`` grows from call to call, or is a prefix of the last one (cut at a stop string)."""
        if self._last is not None and self._last[0] is text:
            return self._last[1], self._last[2]  # end_of_answer and safe_prefix of the same text
        offset = self._done.offset
        if len(text) < offset or (offset and text[offset - 1] != "\n"):
            self._reset()  # shorter than the lines judged already: start over
        if self._cut is not None:
            return self._cut, self._done
        cut, state = self._judge_lines(text)
        self._last = (text, cut, state)
        return cut, state

    def _judge_lines(self, text: str) -> tuple[int | None, _Lines]:
        state = self._done
        while (newline := text.find("\n", state.offset)) >= 0:  # finished lines: judged once, remembered
            cut = _judge(state, text, text[state.offset:newline], self._lines, last=False)
            if cut is not None:
                self._cut = cut
                return cut, state
            state.offset, state.loop_free = newline + 1, 0
            self._lines += 1
        growing = replace(state)  # the same seen set: a growing line only reads it
        cut = _judge(growing, text, text[state.offset:], self._lines, last=True)
        state.loop_free = growing.loop_free
        return cut, growing

    def end_of_answer(self, text: str, final: bool = False) -> int | None:
        """Where the answer in ``text`` ends, or None to keep generating; ``final`` once generation stopped."""
        if not final:
            return self._scan(text)[0]
        # The last line is complete now: judge it as finished, on a copy, so the scanner can go on.
        cut, _ = self._copy()._scan(text + "\n")
        if cut is None and text != text.rstrip():
            cut = _trim(text, len(text))  # no trailing blank lines in a finished answer
        return None if cut is None else min(cut, len(text))

    def safe_prefix(self, text: str) -> int:
        """How much of ``text`` no later ``end_of_answer`` can cut: the rest waits for more text."""
        cut, state = self._scan(text)
        if cut is not None:
            return cut
        start = text.rfind("\n") + 1
        line = text[start:]
        stripped = line.strip()
        # The last line may yet turn out to be a repeat, a label, or the first line after a blank one.
        if not state.in_fence and (not stripped or _could_be_label(line)
                                   or any(s.startswith(stripped) for s in state.seen if len(s) >= _MIN_REPEATED)):
            return _trim(text, start)
        return _trim(text, start) if not stripped else len(text)

    def _copy(self) -> CompletionScanner:
        twin = CompletionScanner()
        twin._done = replace(self._done, seen=set(self._done.seen))
        twin._lines, twin._cut = self._lines, self._cut
        return twin


def _could_be_label(line: str) -> bool:
    """True while ``line`` is a prefix of a next-turn label ("Quest" of "Question:")."""
    stripped = line.lstrip()
    return len(stripped) < 10 and any(word.startswith(stripped) for word in LABEL_WORDS)
