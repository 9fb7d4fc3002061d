"""bench/docs_answer_bench.py: its question set agrees with the manuals, its grading, its report rows."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bench import docs_answer_bench as bench
from bench.report import goals, render_markdown

QUESTIONS = json.loads(bench.QUESTIONS.read_text(encoding="utf-8"))["questions"]
PAGES = bench._pages()


def test_the_set_is_big_enough_half_chinese_with_a_quick_half():
    assert len(QUESTIONS) >= 20
    assert abs(sum(q["lang"] == "zh" for q in QUESTIONS) - len(QUESTIONS) / 2) <= 2
    quick = [q for q in QUESTIONS if q.get("quick")]
    assert 8 <= len(quick) <= 16 and sum(q["lang"] == "zh" for q in quick) == len(quick) // 2


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q["q"][:40])
def test_each_fact_is_stated_on_its_page_and_not_given_away_by_the_question(question):
    page = PAGES[question["source"]][question["page"] - 1]
    assert bench.fact_in(page, question["answer"]), question
    assert not bench.fact_in(question["q"], question["answer"]), question


@pytest.mark.parametrize("text, spellings, found", [
    ("Use the `-k` option.", ["--keep", "-k"], True),
    ("Use -kx to keep them.", ["-k"], False),
    ("The builtin delete removes it.", ["del"], False),
    ("默认保存 500条 [1]", ["500"], True),
    ("It is 5000 lines.", ["500"], False),
    ("The default is level 6.", ["-6", "level 6"], True),
    ("use xz_opt", ["XZ_OPT"], False),  # constants are matched as written
])
def test_a_fact_counts_as_a_whole_word(text, spellings, found):
    assert bench.fact_in(text, spellings) is found


def hit(source: str, page: int) -> SimpleNamespace:
    return SimpleNamespace(source=source, page=page)


def test_right_needs_the_fact_and_a_cited_source_on_a_page_stating_it():
    question = next(q for q in QUESTIONS if q["q"].startswith("tcpdump 默认每个报文"))
    hits = [hit("tcpdump.8.pdf", 7), hit("tcpdump.8.pdf", 2)]
    assert bench.grade(question, "默认截取 68 字节 [2]。", hits, PAGES) == {"fact": True, "cited": True, "right": True}
    assert bench.grade(question, "默认截取 68 字节 [1]。", hits, PAGES)["right"] is False  # page 7 does not say it
    assert bench.grade(question, "默认截取 68 字节。", hits, PAGES)["right"] is False
    assert bench.grade(question, "默认截取 96 字节 [1, 2]。", hits, PAGES) == {"fact": False, "cited": True,
                                                                          "right": False}


def summary(right: int, tokens: float) -> dict:
    return {"right": right, "n": 12, "right_pct": 0.0, "fact": right, "right_by_lang": {"en": right, "zh": 0},
            "median_prompt_tokens": tokens, "p90_prompt_tokens": int(tokens) + 20, "median_cached_tokens": 30,
            "median_ttft_s": 2.0, "median_hits_s": 0.1, "median_search_s": 0.01, "median_prompt_s": 0.05,
            "median_queue_s": 0.0, "median_engine_ttft_s": 1.9}


def test_the_report_has_the_section_and_its_goal_rows():
    result = {"summary": {"before": summary(5, 1800), "after": summary(6, 300)}}
    assert [met for _, _, met in bench.goals(result)] == [True, True]
    markdown = render_markdown({"docs_answers": result})
    assert "| before | 5/12" in markdown and "| after | 6/12" in markdown
    assert "docs answers: median grounded prompt <= 450 tokens | 300 (before 1800) | yes" in markdown
    worse = {"docs_answers": {"summary": {"before": summary(6, 1800), "after": summary(5, 500)}}}
    assert [met for goal, _, met in goals(worse) if goal.startswith("docs answers")] == [False, False]
