"""rag.prompts (grounded messages, shared budget, not-found) and rag.config validation."""

from __future__ import annotations

import copy

import pytest

from rag.config import RagConfig
from rag.errors import InvalidConfig
from rag.prompts import (
    NOT_FOUND_MESSAGE,
    build_grounded_messages,
    detect_language,
    missing_citation,
    no_relevant_hits,
)
from rag.retrieval import Hit


def hit(n: int, text: str, page: int | None = 1, score: float = 0.5) -> Hit:
    return Hit(document_id=f"d{n}", source=f"file{n}.pdf" if page else f"notes{n}.md", page=page,
               text=text, score=score, chunk_id=n)


HITS = [hit(1, "The warranty lasts three years.", page=3), hit(2, "Filters are cleaned monthly.", page=None),
        hit(3, "Support is available around the clock. " * 20, page=7)]


def words(text: str) -> int:
    return len(text.split())


def test_messages_have_numbered_sources_and_the_question_last():
    messages = build_grounded_messages("How long is the warranty?", HITS).messages
    assert [m["role"] for m in messages] == ["system", "user"]
    system = messages[0]["content"]
    assert "[1] file1.pdf p.3: The warranty lasts three years." in system
    assert "[2] notes2.md: Filters are cleaned monthly." in system
    assert "[n]" not in system and "[1]" in system and NOT_FOUND_MESSAGE["en"] in system
    assert messages[-1] == {"role": "user", "content": "How long is the warranty?"}


def test_sources_come_first_and_the_instructions_end_with_a_cited_example():
    system = build_grounded_messages("How long is the warranty?", HITS).messages[0]["content"]
    assert system.startswith("Sources:\n[1] ")
    assert system.index("[3] file3.pdf") < system.index("square brackets") < system.index("opens at 9:00 [4].")


def test_an_uncited_answer_gets_the_number_of_the_source_it_quotes():
    assert missing_citation(" Filters are cleaned monthly.", HITS) == 2
    assert missing_citation(" It lasts three years.", HITS) == 1
    zh = [hit(1, "机房温度应保持在18℃至27℃之间。"), hit(2, "值班人员每天巡检两次。")]
    assert missing_citation("值班人员每天巡检两次。", zh) == 2
    # Numbers written in digits in the answer and in words in the source (or the other way round)
    pump = [hit(1, "机房温度应保持在18℃至27℃之间。"), hit(2, "X200 水泵的保修期为三十六个月。")]
    assert missing_citation("36个月。", pump) == 2
    assert missing_citation("保修期 36 个月", pump) == 2
    assert missing_citation("十八℃", pump) is None  # "18℃" is only two characters: too short to be a quote


@pytest.mark.parametrize("answer", [" 12.", "It lasts three years [1].", NOT_FOUND_MESSAGE["en"], "  "])
def test_no_number_for_answers_that_cite_quote_nothing_or_are_not_covered(answer):
    assert missing_citation(answer, HITS) is None


def test_strict_and_language_change_the_instructions():
    lenient = build_grounded_messages("q", HITS, strict=False).messages[0]["content"]
    assert "general knowledge" in lenient and "reply exactly" not in lenient
    zh = build_grounded_messages("保修期多久？", HITS, language="zh").messages[0]["content"]
    assert NOT_FOUND_MESSAGE["zh"] in zh and "[1] file1.pdf 第3页:" in zh and "资料" in zh
    assert "no sources" in build_grounded_messages("q", []).messages[0]["content"]


def test_history_is_kept_copied_and_never_mutated():
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "answer"}]
    snapshot = copy.deepcopy(history)
    messages = build_grounded_messages("q", HITS, history=history).messages
    assert messages[1:3] == history and history == snapshot
    assert messages[1] is not history[0]


@pytest.mark.parametrize("budget", [0, 5, 40, 80, 120, 400])
def test_budget_never_drops_the_question(budget):
    question = "What exactly does the warranty cover and for how long does it last? " * 3
    messages = build_grounded_messages(question, HITS, count_tokens=words, budget_tokens=budget).messages
    assert messages[-1]["content"] == question


def sources(messages: list[dict]) -> str:
    """The numbered source lines (the instructions follow them after a blank line)."""
    return messages[0]["content"].split("Sources:\n")[1].split("\n\n")[0]


def test_budget_drops_lowest_ranked_sources_first_then_truncates():
    question = "How long is the warranty?"
    full = build_grounded_messages(question, HITS, count_tokens=words).messages
    total = sum(words(m["content"]) + 4 for m in full)
    # source 3 has 120 words: 80 of them still fit, so it is truncated
    prompt = build_grounded_messages(question, HITS, count_tokens=words, budget_tokens=total - 40)
    messages, system = prompt.messages, sources(prompt.messages)
    assert "[1]" in system and "[2]" in system and "[3]" in system and system.endswith("…")
    assert prompt.hits == list(HITS[:3])
    assert sum(words(m["content"]) + 4 for m in messages) <= total - 40
    # too little for source 3 to be worth truncating: dropped whole, the top ones stay
    prompt = build_grounded_messages(question, HITS, count_tokens=words, budget_tokens=total - 110)
    system = sources(prompt.messages)
    assert "[1]" in system and "[2]" in system and "[3]" not in system
    assert prompt.hits == list(HITS[:2])  # the hits the caller shows are exactly the numbered ones
    # only room for part of the best source: it is truncated rather than dropped
    base = build_grounded_messages(question, [], count_tokens=words).messages
    tight = sum(words(m["content"]) + 4 for m in base) + 6
    system = sources(build_grounded_messages(question, HITS, count_tokens=words, budget_tokens=tight).messages)
    assert "[1] file1.pdf p.3: The" in system and "[2]" not in system


def test_budget_keeps_recent_history_and_never_starts_with_an_answer():
    history = [{"role": "user", "content": "old " * 200}, {"role": "assistant", "content": "old answer " * 50},
               {"role": "user", "content": "recent question"}, {"role": "assistant", "content": "recent answer"}]
    messages = build_grounded_messages("next?", HITS, history=history, count_tokens=words, budget_tokens=200).messages
    assert [m["content"] for m in messages[1:-1]] == ["recent question", "recent answer"]
    only_answer = build_grounded_messages("next?", HITS, history=history[1:2], count_tokens=words,
                                          budget_tokens=200).messages
    assert [m["role"] for m in only_answer] == ["system", "user"]


def test_not_found_helper_and_language_detection():
    assert no_relevant_hits([], 0.1)
    assert no_relevant_hits([hit(1, "x", score=0.05)], 0.1)
    assert not no_relevant_hits([hit(1, "x", score=0.05), hit(2, "y", score=0.2)], 0.1)
    assert detect_language("员工每年有多少天年假？") == "zh"
    assert detect_language("UPS能支持多长时间？") == "zh"
    assert detect_language("How many days of leave?") == "en"
    assert detect_language("") == "en"



@pytest.mark.parametrize("kwargs", [
    {"chunk_tokens": 8}, {"chunk_overlap": 150}, {"top_k": 0}, {"top_k": 500}, {"relevance_threshold": 1.5},
    {"dense_weight": 0, "lexical_weight": 0}, {"dense_weight": -1}, {"max_file_bytes": 0},
    {"embedding_device": "tpu"},
])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(InvalidConfig):
        RagConfig(**kwargs)


def test_config_defaults_and_path_conversion():
    config = RagConfig(data_dir="~/x")
    assert config.data_dir.is_absolute() and config.strict and config.top_k == 5
    assert config.chunk_overlap < config.chunk_tokens
