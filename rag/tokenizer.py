"""BM25 tokens for Chinese and English text: jieba words, NFKC-folded, lowercased, no
punctuation and no stop words. Documents and queries go through the same function, so what
a query can match is exactly what was indexed.
"""

from __future__ import annotations

import logging
import threading
import unicodedata

__all__ = ["tokenize"]

# Small hand-picked lists: bm25s's Chinese list drops content words (使用, 保持, 主要). Question
# words matter most: they never occur in documents, so they would only dilute lexical coverage.
_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with what which who whom whose when where why how does do did can could "
    "should would i you we me my your our us has have had been being were am from about any some please "
    "tell me its than often many much need get".split()
    + "的 了 是 在 和 与 及 或 也 都 就 而 之 其 这 那 这个 那个 这些 吗 呢 吧 啊 呀 么 什么 怎么 怎样 "
    "如何 为什么 哪 哪些 哪个 哪里 多少 几 是否 请问 请 我 你 我们 你们 他 她 它 有 个 被 把 对 从 向 "
    "为 以 于 上 中 下 所 等 多久 多长 多长时间 几次 几天 几个 几年 几点 谁 怎么样 为何 是不是 有没有 能否 "
    "能不能 可以 能 需要 应该 要".split()
)
# Query-only: function words and question phrasing seen in real questions ("让 tcpdump 抓到…后
# 自动退出用哪个参数"). Dropping them from documents too would change every stored index, and
# they cost nothing there; in a query they only add noise terms. Measured in bench/rag_quality.py.
_QUERY_STOPWORDS = frozenset(
    "让 到 用 里 成 后 当 把 才能 时 时候 哪种 分别 意思 有什么".split()
)
_jieba_lock = threading.Lock()
_jieba_ready = False


def tokenize(text: str, query: bool = False) -> list[str]:
    """BM25 tokens for Chinese and English: jieba search-mode words, NFKC, lowercase, no
    punctuation or stop words. The same function serves documents and queries; ``query``
    also drops query-only stop words (unless that would leave nothing)."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)  # its dictionary-loading banner is noise here
                jieba.initialize()
                _jieba_ready = True
    text = unicodedata.normalize("NFKC", text).lower()
    tokens = [
        tok for tok in (t.strip() for t in jieba.lcut_for_search(text))
        if tok and tok not in _STOPWORDS and any(ch.isalnum() for ch in tok)
    ]
    if query:
        return [tok for tok in tokens if tok not in _QUERY_STOPWORDS] or tokens
    return tokens
