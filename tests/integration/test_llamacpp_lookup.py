"""Prompt lookup (n-gram speculative decoding) on llama.cpp, real embedded default model.

Lookup is server-wide in xllamacpp, so two servers answer: flash attention off in both (lookup
needs it: llama.cpp's CPU flash-attention kernel rounds a batch of tokens differently from one
token), one drafting. llama.cpp's quantized matmul still rounds a batch of draft tokens differently from one
token, so where two tokens nearly tie the prose after the code may part; the code and the counting must
be identical. No timing assertions: speed is in bench/.
"""

from __future__ import annotations

import re

import pytest

from engine.config import EngineConfig, SamplingParams

CODE = '''def parse_scores(path):
    totals = {}
    with open(path) as handle:
        for line in handle:
            name, score = line.strip().split(",")
            totals[name] = totals.get(name, 0) + score
    return totals
'''


@pytest.fixture(scope="module")
def pair():
    pytest.importorskip("xllamacpp")
    from engine.backends.llamacpp import LlamaCppBackend
    from engine.engine import Engine

    config = EngineConfig(backend="llamacpp", max_batch=1)
    without = Engine(LlamaCppBackend.load(config, lookup_tokens=0, flash_attn=False), config)
    with_lookup = Engine(LlamaCppBackend.load(config, lookup_tokens=10), config)
    yield without, with_lookup
    without.backend.close()
    with_lookup.backend.close()


def _fix_request():
    from assist.code.prompts import CodeRequest, build_messages, params_for

    request = CodeRequest(mode="fix", language="python", code=CODE,
                          error="TypeError: unsupported operand type(s) for +: 'int' and 'str'")
    return build_messages(request), params_for(request)


def _code_of(answer: str) -> str:
    """The first fenced block of an answer."""
    match = re.search(r"```[\w+-]*\n(.*?)```", answer, re.S)
    assert match, answer
    return match.group(1)


def test_lookup_turns_flash_attention_off_and_says_so(pair):
    _, with_lookup = pair
    assert any("Prompt lookup" in note for note in with_lookup.info.notes)


@pytest.mark.parametrize("case", ["code fix", "counting"])
def test_greedy_text_is_identical_with_and_without_lookup(pair, case):
    if case == "code fix":
        messages, params = _fix_request()
    else:
        messages = [{"role": "user", "content": "Count from 1 to 60, separated by commas."}]
        params = SamplingParams(temperature=0, max_new_tokens=48, repetition_penalty=1.0)
    without, with_lookup = pair
    plain, plain_stats = without.chat(messages, params)
    looked, looked_stats = with_lookup.chat(messages, params)
    assert plain.strip()
    if case == "code fix":
        assert _code_of(looked) == _code_of(plain) and "int(score)" in _code_of(plain)
    else:
        assert looked == plain and looked_stats.completion_tokens == plain_stats.completion_tokens
    assert "draft_tokens" not in plain_stats.extra
    if case == "code fix":  # the answer copies the input back: lookup drafted and llama.cpp kept some
        assert looked_stats.extra["draft_tokens"] > 0 and looked_stats.extra["draft_accepted"] > 0


def test_negative_draft_length_is_refused():
    pytest.importorskip("xllamacpp")
    import xllamacpp

    from engine.backends.llamacpp_lookup import configure

    with pytest.raises(ValueError, match="0 \\(off\\) or more"):
        configure(xllamacpp.CommonParams(), -1)
