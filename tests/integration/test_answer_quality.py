"""The real default model (a base model) answers simple questions in Chat, Docs and Code.

Greedy, so the answers are the model's, not luck; the questions are ones the 270M model gets
right in the completion format. Nothing here hard-codes an answer text: each test asserts the
fact, that the prompt was not repeated (``bench.quality_grading.is_parroted``), and for Docs
that the right source is cited by number, for Code that the block passes our syntax check.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from assist.answers import ask
from assist.code import CodeRequest, build_messages, check_code, extract_code, params_for
from bench.quality_grading import is_parroted
from engine.config import SamplingParams
from engine.models import ModelRegistry
from rag.prompts import NOT_FOUND_MESSAGE, instructions

CHAT_SYSTEM = "You are a helpful assistant. Answer in the same language as the user's question."
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=64)
QUESTION = "How heavy is the Helix-7 appliance?"


@pytest.fixture(scope="module", params=["llamacpp", "transformers"])
def engine(request):
    return request.getfixturevalue("llama_engine" if request.param == "llamacpp" else "default_engine")


@pytest.mark.parametrize("question, fact", [("What is the capital of France?", "Paris"),
                                            ("日本的首都是哪里？", "东京")])
def test_chat_answers_a_simple_question_without_repeating_the_prompt(engine, question, fact):
    messages = [{"role": "system", "content": CHAT_SYSTEM}, {"role": "user", "content": question}]
    answer, stats = engine.chat(messages, GREEDY)
    assert fact in answer, answer
    assert not is_parroted(answer, CHAT_SYSTEM, question), answer
    assert stats.finish_reason == "stop" and len(answer) < 200  # it ended after the answer


def test_docs_answer_quotes_the_source_and_cites_its_number(engine, corpus_store):
    services = SimpleNamespace(models=ModelRegistry.of(engine), store=corpus_store, rag_config=None)
    result = ask(services, "corpus", QUESTION, params=GREEDY)
    assert "18.5" in result.answer, result.answer
    cited = [n for n in range(1, len(result.hits) + 1) if f"[{n}]" in result.answer]
    assert cited, result.answer
    assert all((result.hits[n - 1].source, result.hits[n - 1].page) == ("helix7_manual.pdf", 1) for n in cited)
    assert NOT_FOUND_MESSAGE["en"] not in result.answer
    # Quoting the sources is the point; repeating the instructions (either layout's) is not.
    rules = "\n".join(instructions("en", strict=True, sources_first=first) for first in (False, True))
    assert not is_parroted(result.answer, rules, QUESTION), result.answer
    assert result.stats.prompt_tokens <= 450, result.stats  # passages, not whole hits (issue 19)


def test_code_generate_writes_one_block_that_passes_the_syntax_check(engine):
    request = CodeRequest("generate", "python", task="Write a function add(a, b) that returns the sum of a and b.")
    params = params_for(request)
    answer, _ = engine.chat(build_messages(request), SamplingParams(
        temperature=0.0, max_new_tokens=160, stop=params.stop, repetition_penalty=params.repetition_penalty))
    code = extract_code(answer, "python").code
    assert "def add" in code and "return" in code, answer
    assert check_code(code, "python").ok, code
