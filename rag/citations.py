"""Which numbered source an uncited answer quotes, so the caller can add its ``[n]``.

Small models often answer from the sources without citing them: base models rarely write "[n]",
and the embedded instruction-tuned 0.5B model answers best when it is not asked to (measured in
``bench/docs_answer_bench.py``). ``missing_citation`` names the source an answer quotes: the
longest run of words, or CJK characters, shared with it (numbers compared as digits: "36个月"
quotes "三十六个月"); words the answer repeats from the question do not count as quoting at first.
An answer that quotes no run of three beyond them but names a fact — an option (``--arg``), a
number, a CONSTANT — is given the source that states that fact (the one stating most of them;
ties to the higher-ranked); failing that, any quote of three counts, question words included.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from rag.retrieval import Hit

__all__ = ["missing_citation", "misplaced_citation"]

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W_]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CITATION = re.compile(r"\[\d+\]")
_NUMBER = re.compile(r"\[(\d+)\]")
_MIN_QUOTED = 3  # shared words (or CJK characters) in a row before an answer counts as quoting a source
# A fact an answer can name in one word: an option ("-T", "--raw-output"), a number, a CONSTANT.
# ASCII boundaries: CJK letters are \w too, and "500条" states 500.
_FACT = re.compile(r"(?<![A-Za-z0-9_-])--?[A-Za-z][\w-]*|(?<![A-Za-z0-9_.])-?\d+(?:[.,]\d+)*(?![A-Za-z0-9_])"
                   r"|(?<![A-Za-z0-9_])[A-Z][A-Z0-9_]{2,}(?![A-Za-z0-9_])")

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_CN_NUMBER = re.compile(f"[{''.join(_CN_DIGITS)}{''.join(_CN_UNITS)}]+")


def missing_citation(answer: str, hits: Sequence[Hit], not_found: Collection[str] = (),
                     question: str = "") -> int | None:
    """The number of the source an uncited answer quotes, or None (already cited, or quotes none).

    ``hits`` are the numbered sources as given to the model (``[1]`` is ``hits[0]``). Ties go to
    the higher-ranked source; an answer holding one of the ``not_found`` messages quotes nothing.
    """
    if not answer.strip() or _CITATION.search(answer) or any(m in answer for m in not_found):
        return None
    asked = set(_words(question))
    said = _words(answer)
    sources = [_words(hit.text) for hit in hits]
    beyond = [word if word not in asked else None for word in said]  # None breaks a run
    # A quote beyond the question's own words, a fact the answer names, or at last any quote.
    return (_quoted(beyond, sources) or _stating_source(answer, hits, question)
            or (_quoted(said, sources) if asked else None))


def misplaced_citation(answer: str, hits: Sequence[Hit], question: str = "") -> int | None:
    """The number an answer's citations should carry when it cites sources it does not quote but quotes
    another one (a run of three words beyond the question's, or a fact only that source states), else None.

    A small model given several numbered pages tends to write "[1]" whatever it read; the caller then
    puts the right number in its place."""
    cited = {int(n) for n in _NUMBER.findall(answer) if 1 <= int(n) <= len(hits)}
    if not cited:
        return None
    plain = _CITATION.sub("", answer)
    asked = set(_words(question))
    beyond = [word if word not in asked else None for word in _words(plain)]
    sources = [_words(hit.text) for hit in hits]
    quoted = _quoted(beyond, sources) or _stating_source(plain, hits, question)
    if quoted is None or quoted in cited:
        return None
    facts = [fact for fact in _FACT.findall(plain) if not _has(question, fact)]
    for n in cited:  # a cited source the answer quotes or takes a fact from stays cited
        if _longest_shared_run(beyond, sources[n - 1]) >= _MIN_QUOTED or any(_has(hits[n - 1].text, f) for f in facts):
            return None
    return quoted


def _quoted(said: list[str | None], sources: list[list[str]]) -> int | None:
    runs = [_longest_shared_run(said, words) for words in sources]
    best = max(runs, default=0)
    return runs.index(best) + 1 if best >= _MIN_QUOTED else None


def _stating_source(answer: str, hits: Sequence[Hit], question: str) -> int | None:
    """The source that states most of the answer's facts (options, numbers, CONSTANTS) the question
    did not already name; a fact several sources state counts for each a fraction."""
    facts = {fact for fact in _FACT.findall(answer) if not _has(question, fact)}
    holders = {fact: [n for n, hit in enumerate(hits) if _has(hit.text, fact)] for fact in facts}
    scores = [0.0] * len(hits)
    for numbers in holders.values():
        for n in numbers:
            scores[n] += 1 / len(numbers)
    best = max(scores, default=0.0)
    return scores.index(best) + 1 if best > 0 else None


def _has(text: str, fact: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9_-])" + re.escape(fact) + r"(?![A-Za-z0-9_])", text) is not None


def _cn_number(numeral: str) -> str:
    """A Chinese numeral as digits ("三十六" -> "36", "两千零五" -> "2005"), so that an answer writing
    "36个月" is seen quoting a source that says "三十六个月" (and the other way round)."""
    total, section, digit = 0, 0, None
    for char in numeral:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
            continue
        unit = _CN_UNITS[char]
        if unit == 10000:
            total, section = (total + section + (digit or 0)) * unit, 0
        else:
            section += (1 if digit is None else digit) * unit  # "十五": one ten
        digit = None
    return str(total + section + (digit or 0))


def _words(text: str) -> list[str]:
    # CJK characters one by one (no spaces to split on), other scripts by word; numbers as digits.
    out: list[str] = []
    text = _CN_NUMBER.sub(lambda m: _cn_number(m.group()), text)
    chinese = bool(_CJK.search(text))  # there "36 个月" and "36个月" must read alike: digits one by one
    for match in _WORD.finditer(text.lower()):
        word = match.group()
        out.extend(list(word) if _CJK.search(word) or (chinese and word.isdigit()) else [word])
    return out


def _longest_shared_run(a: list[str | None], b: list[str]) -> int:
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best
