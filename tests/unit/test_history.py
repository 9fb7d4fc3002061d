"""Token-budget trimming keeps the system prompt and the newest turns."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError, PromptTooLong
from engine.history import fit_to_context, render_prompt_ids, validate_messages


@pytest.fixture(scope="module")
def tokenizer(tiny_engine):
    return tiny_engine.backend.tokenizer


def conversation(turns: int) -> list[dict]:
    messages = [{"role": "system", "content": "you are a good model"}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"question {i}: " + "tell me a story " * 3})
        messages.append({"role": "assistant", "content": "the dragon was red and big " * 2})
    messages.append({"role": "user", "content": "what is the last question"})
    return messages


def test_everything_fits_when_the_budget_allows(tokenizer):
    messages = conversation(2)
    result = fit_to_context(tokenizer, messages, context_length=1000, reserve=50)
    assert result.dropped == 0 and result.messages == messages
    assert result.ids == render_prompt_ids(tokenizer, messages)


def test_oldest_turns_are_dropped_and_system_prompt_kept(tokenizer):
    messages = conversation(10)
    full = len(render_prompt_ids(tokenizer, messages))
    result = fit_to_context(tokenizer, messages, context_length=full // 2 + 20, reserve=20)
    assert len(result.ids) <= full // 2
    assert result.messages[0] == messages[0]
    assert result.messages[-1] == messages[-1]
    assert result.messages[1]["role"] == "user"
    assert result.dropped > 0 and len(result.messages) == len(messages) - result.dropped
    assert result.messages[1:] == messages[len(messages) - len(result.messages) + 1:]


def test_a_message_that_cannot_fit_gets_a_clear_error(tokenizer):
    with pytest.raises(PromptTooLong, match="Shorten the message"):
        fit_to_context(tokenizer, [{"role": "user", "content": "story " * 500}], context_length=100, reserve=10)


def test_input_is_not_mutated(tokenizer):
    messages = conversation(6)
    snapshot = [dict(m) for m in messages]
    fit_to_context(tokenizer, messages, context_length=160, reserve=10)
    assert messages == snapshot


@pytest.mark.parametrize("bad, reason", [
    ([], "empty"),
    ([{"role": "robot", "content": "x"}], "role"),
    ([{"role": "user", "content": 3}], "text"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message"),
])
def test_invalid_messages_are_rejected_with_reasons(bad, reason):
    with pytest.raises(ConfigError, match=reason):
        validate_messages(bad)
