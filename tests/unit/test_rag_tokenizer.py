"""rag.tokenizer: the same tokens for documents and queries, plus query-only stop words."""

from __future__ import annotations

from rag.tokenizer import tokenize


def test_chinese_question_phrasing_is_dropped_from_queries_only():
    question = "让 tcpdump 抓到指定数量的包后自动退出用哪个参数？"
    assert {"让", "到", "用"} <= set(tokenize(question))  # documents keep them
    query = tokenize(question, query=True)
    assert not {"让", "到", "用", "哪个"} & set(query)
    assert {"tcpdump", "指定", "数量", "自动", "退出", "参数"} <= set(query)


def test_query_tokens_are_a_subset_of_what_the_same_text_indexes():
    for text in ["怎样把一条规则插到 iptables 链的最前面？", "How do I keep the input files?", "数据库备份保留多少天"]:
        assert set(tokenize(text, query=True)) <= set(tokenize(text))


def test_a_query_of_only_query_stop_words_keeps_them():
    assert tokenize("用到", query=True) == tokenize("用到")
    assert tokenize("", query=True) == []


def test_english_and_mixed_queries_are_unchanged():
    for text in ["What does the --extreme flag change?", "psql 的 HISTSIZE"]:
        assert tokenize(text, query=True) == tokenize(text)
