"""rag.prompts (layout, grounded messages, shared budget, not-found) and rag.config validation."""

from __future__ import annotations

import copy
import os

import pytest

from rag.config import RagConfig
from rag.errors import InvalidConfig
from rag.prompts import (
    NOT_FOUND_MESSAGE,
    build_grounded_messages,
    detect_language,
    instructions,
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


def test_the_fixed_instructions_come_first_then_the_sources_with_the_question():
    messages = build_grounded_messages("How long is the warranty?", HITS).messages
    assert [m["role"] for m in messages] == ["system", "user"]
    system, user = messages[0]["content"], messages[1]["content"]
    assert system == instructions("en", strict=True)
    assert system == "You are a helpful assistant. Answer the question from the sources given with it."
    assert user.startswith("Sources:\n[1] file1.pdf p.3: The warranty lasts three years.\n")
    assert "[2] notes2.md: Filters are cleaned monthly." in user
    assert user.endswith("\n\nQuestion: How long is the warranty?")


@pytest.mark.parametrize("language, strict", [("en", True), ("en", False), ("zh", True), ("zh", False)])
def test_the_system_message_is_the_same_for_every_question(language, strict):
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "answer"}]
    prompts = [build_grounded_messages(question, hits, history, strict=strict, language=language,
                                       count_tokens=words, budget_tokens=budget, source_tokens=tokens).messages
               for question, hits, budget, tokens in [("How long is the warranty?", HITS, None, None),
                                                       ("保修期多久？", HITS[1:], 300, 40),
                                                       ("Who cleans the filters, and how often?", [], 120, 80)]]
    assert len({p[0]["content"] for p in prompts}) == 1
    assert all(p[1:3] == history for p in prompts)  # then the history: a session's prefix grows, never changes


def test_the_rendered_prompts_of_two_questions_share_the_whole_instruction_block():
    from engine.templates import prompt_format

    chatml = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    fmt = prompt_format(chatml)
    texts = [fmt.render(build_grounded_messages(q, HITS[i:], count_tokens=words, source_tokens=60).messages)
             for i, q in enumerate(["How long is the warranty?", "When are filters cleaned?"])]
    shared = len(os.path.commonprefix(texts))
    assert texts[0][:shared] == f"<|im_start|>system\n{instructions('en')}<|im_end|>\n<|im_start|>user\nSources:\n[1] "


def test_sources_first_is_the_layout_before_issue_19():
    messages = build_grounded_messages("How long is the warranty?", HITS, sources_first=True).messages
    system = messages[0]["content"]
    assert system.startswith("Sources:\n[1] file1.pdf p.3: The warranty lasts three years.\n")
    assert system.index("[3] file3.pdf") < system.index("sources above") < system.index("opens at 9:00 [4].")
    assert messages[-1] == {"role": "user", "content": "How long is the warranty?"}


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


def test_an_answer_that_names_a_fact_gets_the_source_stating_it():
    jq = [hit(1, "You can pass a shell variable into a jq program in several ways; see below."),
          hit(2, "--argjson name text: passes a JSON-encoded value."),
          hit(3, "--arg name value: This option passes a value to the jq program as a predefined variable.")]
    question = "How do I pass a shell variable into a jq program?"
    # Repeating the question quotes nothing; the option it names is stated by source 3 only.
    assert missing_citation("To pass a shell variable into a jq program, use the `--arg` option.", jq, question) == 3
    psql = [hit(1, "HISTFILE 保存命令历史的文件名。"), hit(2, "HISTSIZE存在命令历史里的命令的个数。缺省值是 500。")]
    assert missing_citation("psql 的命令历史默认保存 500条。", psql, "psql 的命令历史默认保存多少条？") == 2
    assert missing_citation("Use the --tab option.", jq, "How do I indent with tabs?") is None  # stated nowhere


@pytest.mark.parametrize("answer", [" 12.", "It lasts three years [1].", NOT_FOUND_MESSAGE["en"], "  "])
def test_no_number_for_answers_that_cite_quote_nothing_or_are_not_covered(answer):
    assert missing_citation(answer, HITS) is None


def test_strict_and_language_change_the_instructions():
    lenient = build_grounded_messages("q", HITS, strict=False).messages[0]["content"]
    assert "general knowledge" in lenient and "reply exactly" not in lenient
    old = build_grounded_messages("q", HITS, strict=True, sources_first=True).messages[0]["content"]
    assert "[n]" not in old and "square brackets" in old and NOT_FOUND_MESSAGE["en"] in old
    assert old.endswith("The shop opens at 9:00 [4].")  # the worked example right above the question
    zh = build_grounded_messages("保修期多久？", HITS, language="zh").messages
    assert "资料" in zh[0]["content"] and "常识" not in zh[0]["content"]
    assert "[1] file1.pdf 第3页:" in zh[1]["content"] and zh[1]["content"].endswith("问题：保修期多久？")
    assert "no sources" in build_grounded_messages("q", []).messages[-1]["content"]
    assert "no sources" in build_grounded_messages("q", [], sources_first=True).messages[0]["content"]


def test_history_is_kept_copied_and_never_mutated():
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "answer"}]
    snapshot = copy.deepcopy(history)
    messages = build_grounded_messages("q", HITS, history=history).messages
    assert messages[1:3] == history and history == snapshot
    assert messages[1] is not history[0]


@pytest.mark.parametrize("budget", [0, 5, 40, 80, 120, 400])
@pytest.mark.parametrize("source_tokens", [None, 50])
def test_budget_never_drops_the_question(budget, source_tokens):
    question = "What exactly does the warranty cover and for how long does it last? " * 3
    messages = build_grounded_messages(question, HITS, count_tokens=words, budget_tokens=budget,
                                       source_tokens=source_tokens).messages
    assert messages[-1]["content"].endswith("Question: " + question)
    old = build_grounded_messages(question, HITS, count_tokens=words, budget_tokens=budget, sources_first=True)
    assert old.messages[-1]["content"] == question


def sources(messages: list[dict]) -> str:
    """The numbered source lines (the question follows them after a blank line)."""
    return messages[-1]["content"].split("Sources:\n")[1].split("\n\n")[0]


def test_budget_drops_lowest_ranked_sources_first_then_truncates():
    question = "How long is the warranty?"
    full = build_grounded_messages(question, HITS, count_tokens=words).messages
    total = sum(words(m["content"]) + 4 for m in full)
    # source 3 has 120 words: 80 of them still fit, so it is truncated
    prompt = build_grounded_messages(question, HITS, count_tokens=words, budget_tokens=total - 40)
    messages, system = prompt.messages, sources(prompt.messages)
    assert "[1]" in system and "[2]" in system and "[3]" in system and system.endswith("…")
    assert prompt.hits[:2] == list(HITS[:2]) and prompt.hits[2].chunk_id == 3  # the third as truncated
    assert prompt.hits[2].text.endswith("…") and prompt.hits[2].text in system
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
