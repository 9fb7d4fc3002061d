"""engine.completion_end: judging a growing answer incrementally gives what judging it whole gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import completion_end
from engine.completion_end import CompletionScanner
from engine.templates import prompt_format

BASE = prompt_format(None, "gemma3_text")
# Pieces a base model writes: words, numbers, labels, fences, blank lines, repeats.
PIECES = st.sampled_from([" Paris.", "\n", "\n\n", "Question:", " What", "```", "python\n", "def f():\n",
                          "    return 1\n", "1, ", "2, ", "ha", "ha", "The keeper lit the lamp. ", "回答：",
                          "巴黎。", "0", "0000", "—", "   ", "Answer: ", "x = 1\n"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=40))
def test_the_incremental_scanner_agrees_with_a_fresh_scan_at_every_step(pieces):
    scanner, text = CompletionScanner(), ""
    for piece in pieces:
        text += piece
        assert scanner.safe_prefix(text) == CompletionScanner().safe_prefix(text), text
        assert scanner.end_of_answer(text) == CompletionScanner().end_of_answer(text), text
        assert scanner.end_of_answer(text, final=True) == BASE.end_of_answer(text, final=True), text
        if scanner.end_of_answer(text) is not None:
            break


def test_a_shorter_text_than_the_one_followed_is_judged_afresh():
    scanner = CompletionScanner()
    long = " Paris.\nThe capital.\nThe capital.\n"
    assert scanner.end_of_answer(long) is not None  # the repeated line
    assert scanner.end_of_answer(" Paris.", final=True) is None


def test_a_long_line_is_searched_for_repeats_in_its_new_tail_only(monkeypatch):
    """300 numbers on one line: searched whole at every token, that cost ~4 ms per token by the end."""
    searched: list[int] = []
    real = completion_end._LOOP

    class Counting:
        def search(self, line, pos=0):
            searched.append(len(line) - pos)
            return real.search(line, pos)

    monkeypatch.setattr(completion_end, "_LOOP", Counting())
    scanner, text = CompletionScanner(), ""
    for n in range(1, 400):
        text += f"{n}, "
        scanner.safe_prefix(text)
        scanner.end_of_answer(text)
    assert len(text) > 1800 and max(searched) < 300  # a window, not the whole line
