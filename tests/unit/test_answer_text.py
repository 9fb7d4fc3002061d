"""engine.answer_text.AnswerText: what a growing answer may show, the same for every backend."""

from __future__ import annotations

from engine.answer_text import AnswerText
from engine.templates import prompt_format


def feed(answer: AnswerText, pieces: list[str]) -> list[str]:
    text, shown = "", []
    for piece in pieces:
        text += piece
        shown.append(answer.update(text))
        if answer.ended:
            break
    return shown


def test_a_stop_string_split_across_deltas_is_held_back_and_never_shown():
    answer = AnswerText(None, stop_strings=("<END>",))
    shown = feed(answer, ["Hello ", "wor", "ld<E", "ND> more"])
    assert shown == ["Hello ", "wor", "ld", ""] and answer.ended
    assert "".join(shown) == "Hello world"


def test_the_completion_format_ends_a_base_model_answer_at_the_next_question():
    answer = AnswerText(prompt_format(None), stop_strings=())
    shown = "".join(feed(answer, [" Paris.", "\n", "Question: What", " is the capital of Italy?"]))
    assert answer.ended and shown.strip() == "Paris." and "Question" not in shown


def test_finish_shows_the_rest_once_generation_stopped_by_itself():
    answer = AnswerText(None, stop_strings=("###",))
    assert answer.update("The answer is #") == "The answer is "  # "#" might start the stop string
    assert answer.finish("The answer is #") == "#" and answer.ended
    assert answer.update("The answer is # more") == "" and answer.finish("anything") == ""


def test_a_model_with_its_own_template_streams_everything():
    answer = AnswerText(prompt_format("{{ messages }}"))
    assert feed(answer, ["Line one.\n\n", "Question: not a label here"]) == ["Line one.\n\n", "Question: not a label here"]
    assert not answer.ended
