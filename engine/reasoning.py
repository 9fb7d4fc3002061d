"""Reasoning ("thinking") text apart from the answer, while it streams.

Reasoning models (Qwen3, DeepSeek-R1 distills, QwQ) write ``<think>…</think>`` before their
answer. Some chat templates open the block in the generation prompt, so the output starts inside
it and only the closing marker appears; the backend that renders such a prompt echoes the
opening marker as the stream's first text (``opened_thinking``), so every stream describes
itself and one splitter serves all backends.

The splitter is fed text deltas as they come. A marker may be split across deltas
(``"<thi"`` + ``"nk>"``), so text that could be the start of a marker is held back until the
next delta decides. A block may also never close (``max_tokens``, a stop string, Stop): what
was written is still reasoning, and ``finish`` says the thinking was cut off.

Earlier turns' thinking is not sent back to the model (every reasoning model's template drops
it, and it would waste context): ``strip_reasoning`` removes it from assistant history.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MARKERS", "ReasoningSplitter", "Piece", "strip_reasoning", "opened_thinking", "template_thinks", "split_reasoning"]

# (open, close) pairs: DeepSeek-R1 / Qwen3 / QwQ write <think>; some fine-tunes <thinking>.
MARKERS: tuple[tuple[str, str], ...] = (("<think>", "</think>"), ("<thinking>", "</thinking>"))


@dataclass(frozen=True)
class Piece:
    """A stretch of output: ``kind`` is "reasoning" or "content"."""

    kind: str
    text: str


def _partial_suffix(text: str, markers: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is a proper start of one of ``markers``."""
    best = 0
    for marker in markers:
        for n in range(min(len(marker) - 1, len(text)), best, -1):
            if marker.startswith(text[-n:]):
                best = n
                break
    return best


class ReasoningSplitter:
    """Feed text deltas; get ``Piece`` lists back. ``finish()`` flushes what was held back.

    The opening marker is recognised only at the start of the output (leading whitespace
    allowed): an answer that mentions ``<think>`` later is an answer.
    """

    def __init__(self, markers: tuple[tuple[str, str], ...] = MARKERS) -> None:
        self._markers = markers
        self._state = "start"  # start -> thinking -> answer (or start -> answer)
        self._close = ""
        self._held = ""
        self.reasoning = ""  # everything classified as reasoning so far
        self.content = ""
        self.closed = False  # a think block was opened and closed
        self._skip_gap = False  # newlines after a marker are layout, not text

    @property
    def thinking(self) -> bool:
        """True while inside an open think block."""
        return self._state == "thinking"

    def feed(self, delta: str) -> list[Piece]:
        self._held += delta
        pieces: list[Piece] = []
        while self._held:
            if self._state == "start":
                if not self._start():
                    break
            elif self._state == "thinking":
                if self._skip_gap:  # the newline after <think> is layout, not thinking
                    self._held = self._held.lstrip("\n")
                    if not self._held:
                        break
                    self._skip_gap = False
                index = self._held.find(self._close)
                if index >= 0:
                    self._emit(pieces, "reasoning", self._held[:index])
                    self._held = self._held[index + len(self._close):]
                    self._state, self.closed = "answer", True
                    self._held = self._held.lstrip("\n")
                    self._skip_gap = not self._held  # the blank line after </think> may come next
                    continue
                keep = _partial_suffix(self._held, (self._close,))
                self._emit(pieces, "reasoning", self._held[: len(self._held) - keep])
                self._held = self._held[len(self._held) - keep:]
                break
            else:
                if self._skip_gap:
                    stripped = self._held.lstrip("\n")
                    if not stripped:
                        self._held = ""
                        break
                    self._held, self._skip_gap = stripped, False
                self._emit(pieces, "content", self._held)
                self._held = ""
        return pieces

    def _start(self) -> bool:
        """Decide whether the output opens a think block; False means: wait for more text."""
        head = self._held.lstrip()
        for open_, close in self._markers:
            if head.startswith(open_):
                self._held = head[len(open_):]
                self._state, self._close, self._skip_gap = "thinking", close, True
                return True
        if head and any(open_.startswith(head) for open_, _ in self._markers):
            return False  # "<thi": could still become a marker
        if not head:
            return False  # only whitespace so far
        self._state = "answer"
        return True

    def _emit(self, pieces: list[Piece], kind: str, text: str) -> None:
        if not text:
            return
        if kind == "reasoning":
            self.reasoning += text
        else:
            self.content += text
        if pieces and pieces[-1].kind == kind:
            pieces[-1] = Piece(kind, pieces[-1].text + text)
        else:
            pieces.append(Piece(kind, text))

    def finish(self) -> list[Piece]:
        """The end of the output: held text goes out as what it was part of."""
        pieces: list[Piece] = []
        held, self._held = self._held, ""
        if self._state == "thinking":
            self._emit(pieces, "reasoning", held)
        elif self._state == "start":
            self._emit(pieces, "content", held.strip() and held)
        elif not self._skip_gap:
            self._emit(pieces, "content", held)
        return pieces

    @property
    def cut_off(self) -> bool:
        """After ``finish``: the thinking never closed (max tokens, a stop string, Stop)."""
        return self._state == "thinking"


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a complete output."""
    splitter = ReasoningSplitter()
    splitter.feed(text)
    splitter.finish()
    return splitter.reasoning, splitter.content


def strip_reasoning(text: str) -> str:
    """An earlier assistant turn without its thinking: what the model should see of it.

    Handles a whole block at the start and the form where the template opened the block, so
    the stored answer starts inside it and only the closing marker is there.
    """
    if not text:
        return text
    head = text.lstrip()
    for open_, close in MARKERS:
        if head.startswith(open_) or (close in text and open_ not in text):
            end = text.find(close)
            if end < 0:
                return ""  # thinking that never closed: there was no answer
            return text[end + len(close):].lstrip()
    return text


def template_thinks(chat_template: str | None) -> bool:
    """Whether a chat template knows think blocks at all (then its prompts are worth checking)."""
    return bool(chat_template) and any(open_ in chat_template for open_, _ in MARKERS)


def opened_thinking(prompt_text: str) -> str | None:
    """The opening marker if ``prompt_text`` ends inside an open think block, else None.

    Backends call this on the rendered generation prompt and, when it returns a marker, yield
    that marker as the first text of the stream.
    """
    tail = prompt_text[-200:]
    for open_, close in MARKERS:
        start = tail.rfind(open_)
        if start >= 0 and tail.find(close, start) < 0:
            return open_
    return None
