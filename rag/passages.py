"""Passage selection: from the retrieved hits, only the sentences that answer the question.

A document answer on a CPU waits for every prompt token (~7 ms each for the embedded model), and
the expanded hits (each chunk with its neighbours) hold far more than the answer: headers and
footers, the options next to the one asked about, the same text twice where two hits overlap.
``select_passages`` keeps, within a token budget, the sentences that share the most weighted
words with the question, each with a little context, and gives them back as hits (same number
order, file and page; ``text`` is what the model reads), so citations stay true.

The rule, measured on ``tests/data/real_questions.json`` (does the expected text survive?) and by
the answer bench (``bench/docs_answer_bench.py``):

* units are sentences — 。！？； anywhere, . ! ? ; before a space (so ``tcp[13] & 3 != 0`` and
  "3.14" stay whole), and every line break (man-page option lines, table rows); a unit over
  ~240 characters is cut at a space or comma. A Markdown table (``rag.tables``) gives one unit per
  row, never cut, and one for its header (with the ``---`` line): a row always comes with its
  table's header (and the caption line above it), and kept rows stay one table in the passage;
* a unit scores BM25 against the question over all the hits' units, on the tokens the lexical
  index uses (``rag.tokenizer``) plus CJK character pairs (jieba cuts "内建链" and "内建的链"
  differently) and a crude English stem ("deleting" ~ "delete"). Words of the hit's file name do
  not count (every running header says "psql"), but a question naming the file lifts that file's
  matching units; a better-ranked hit scores a little more; the unit before or after a strong
  match gets half its score (an answer often follows the sentence that names the option:
  "… commands kept in the history. The default is 500.");
* running headers and footers — whole lines that recur, numbers aside, on two pages — never go in;
* the best units go in first while they fit, each with what it needs to be read alone: the
  sentence that leads its line, a label line before it ("--tab:", "-k, --keep"), what follows a
  colon; text already given under a better hit is not repeated;
* room left after the matching units goes to the other units of the hits, best-ranked hit first,
  in reading order (an answer worded unlike the question — "How heavy…?", "…weighs 18.5 kg" —
  that the embedder found);
* the kept units of a hit stay in reading order, gaps shown as " … "; hits with nothing kept are
  left out (the caller numbers what is left).

The embedder (the store's MiniLM) is asked only when the hits lack most of the question's words
(by weight) — a paraphrase such as "How heavy is the Helix-7?" for "…weighs 18.5 kg", about one
English question in six here — and only for a language it knows: blended into every question it
kept fewer expected answers (37 of 52 against 38) and cost ~0.5 s of a ~2 s wait on these CPUs.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.chunking import document_title
from rag.retrieval import Hit, detect_language
from rag.tables import find_tables
from rag.tokenizer import tokenize

__all__ = ["select_passages"]

CountTokens = Callable[[str], int]
Similarity = Callable[[list[str]], list[float]]  # the question's cosine similarity to each text

_K1, _B = 1.2, 0.75  # BM25's usual constants: saturation of repeated words, length normalization
_RANK_WEIGHT = 0.15  # hit at rank r scores (1 + w / r) times its BM25: ties go to the better hit
_TITLE_WEIGHT = 0.5  # a question naming the hit's file ("psql …") lifts that file's matching sentences
_NEIGHBOUR_WEIGHT = 0.5  # the sentence after a strong match gets this share of its score
_STRONG = 0.5  # a strong match scores at least this share of the best one
_UNSAID = 0.5  # this share of the question's weight in words no unit has: a paraphrase, ask the embedder
_SHORT_CONTEXT = 16  # tokens: a label line before a chosen sentence (an option's name, a heading) comes along
_MAX_UNIT_CHARS = 240  # a longer "sentence" (a table row, an unpunctuated paragraph) is cut into pieces
_GAP = " … "
_SENTENCE_STOPS = (".", "。", "!", "！", "?", "？", ";", "；")
_SOFT_BREAK = re.compile(r"(?<=[，、,：:])|(?<=\s)")
# Sentence ends: CJK terminators anywhere; Latin ones only before whitespace, so commands keep
# "!=", "a;b" and "3.14" whole (the chunker's splitter cuts those: it only needs rough spans).
_SENTENCE_END = re.compile(r"[。！？；]+[”’」』）)]*|(?:[!?;]+|(?<![.\s])\.(?!\.))[\"'”’)\]]*(?=\s)")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")
_PLURALS, _SUFFIXES = ("es", "s"), ("ation", "ion", "ing", "ed")  # enough to match "filtering" and "filter"


@dataclass
class _Unit:
    hit: int  # index into hits
    order: int  # position within the hit
    text: str
    lead: bool  # first unit of its line
    terms: list[str]
    score: float = 0.0
    cost: int = 0  # estimated tokens
    furniture: bool = False  # a running header or footer
    head: int | None = None  # in a Markdown table: the order of its header unit (the header's own)
    caption: bool = False  # the line above a table that names it ("Table 1. …"), one unit


def select_passages(question: str, hits: Sequence[Hit], count_tokens: CountTokens, budget_tokens: int,
                    label_tokens: Callable[[Hit], int] | None = None, embedder=None) -> list[Hit]:
    """The hits whose sentences best answer ``question``, within ``budget_tokens``.

    Each returned hit is one of ``hits`` (same order) with ``text`` replaced by its kept sentences;
    ``label_tokens(hit)`` is what numbering it costs in the prompt ("[1] file.pdf p.3: ") and counts
    against the budget too. Sentence costs are estimated from each hit's own count (one call per hit:
    with llama.cpp every count is a request), and the result is counted exactly and trimmed.
    ``embedder`` (the store's; optional) is asked when the hits lack most of the question's words
    and it knows the question's language (``embedder.languages``)."""
    units = [_units(n, hit.text) for n, hit in enumerate(hits)]
    flat = [u for per_hit in units for u in per_hit]
    if not flat or budget_tokens <= 0:
        return []
    for n, hit in enumerate(hits):
        per_char = count_tokens(hit.text) / max(len(hit.text), 1)
        for u in units[n]:
            u.cost = math.ceil(len(u.text) * per_char) + 1  # +1: the space or gap before it
    _score(question, flat, hits, _similarity(embedder, question))
    labels = [label_tokens(hit) if label_tokens else 0 for hit in hits]  # counted once: a request each
    chosen = _choose(flat, units, labels, budget_tokens)
    counted: dict[str, int] = {}
    while True:
        kept = [(n, dataclasses.replace(hit, text=_join(units[n], sorted(chosen[n]))))
                for n, hit in enumerate(hits) if chosen.get(n)]
        for _, passage in kept:
            if passage.text not in counted:
                counted[passage.text] = count_tokens(passage.text)
        if sum(counted[p.text] + labels[n] + 1 for n, p in kept) <= budget_tokens:  # +1: the line break
            return [passage for _, passage in kept]
        # The estimate ran over: drop the weakest kept unit and count again.
        weakest = min((units[n][i] for n, orders in chosen.items() for i in orders), key=lambda u: (u.score, -u.hit))
        chosen[weakest.hit].discard(weakest.order)


def _similarity(embedder, question: str) -> Similarity | None:
    """The embedder's cosine of the question to texts, if it represents the question's language."""
    languages = getattr(embedder, "languages", None)
    if embedder is None or (languages is not None and detect_language(question) not in languages):
        return None

    def similarity(texts: list[str]) -> list[float]:
        vectors = embedder.embed([question, *texts])  # rows L2-normalized: inner product is cosine
        return [float(v) for v in vectors[1:] @ vectors[0]]

    return similarity


def _units(hit: int, text: str) -> list[_Unit]:
    """The hit's sentences in reading order, long ones cut, each marked whether it starts a line;
    a Markdown table's header (two lines) and each of its rows are one unit each."""
    out: list[_Unit] = []
    headers, rows, separators, captions = {}, {}, set(), set()
    for table in find_tables(text):
        captions.update([table.caption[0]] if table.caption else [])
        headers[table.header[0]] = table.header[1]
        rows.update((row[0], table.header[0]) for row in table.rows)
        sep = text.index("\n", table.header[0]) + 1
        separators.add(sep + len(text[sep:table.header[1]]) - len(text[sep:table.header[1]].lstrip()))
    heads: dict[int, int] = {}
    offset = 0
    for line in text.split("\n"):
        start, offset = offset + len(line) - len(line.lstrip()), offset + len(line) + 1
        if start in separators:
            continue
        if start in headers or start in rows:
            piece = text[start:headers[start]] if start in headers else line.strip()
            head = heads.setdefault(start, len(out)) if start in headers else heads.get(rows[start])
            out.append(_Unit(hit, len(out), piece, True, _terms(piece), head=head))
            continue
        if start in captions:
            out.append(_Unit(hit, len(out), line.strip(), True, _terms(line), caption=True))
            continue
        lead = True
        for sentence in _sentences(line):
            for piece in _pieces(sentence):
                out.append(_Unit(hit, len(out), piece, lead, _terms(piece)))
                lead = False
    return out


def _sentences(line: str) -> list[str]:
    out, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        out.append(line[start:match.end()].strip())
        start = match.end()
    out.append(line[start:].strip())
    return [s for s in out if s]


def _pieces(sentence: str) -> list[str]:
    if len(sentence) <= _MAX_UNIT_CHARS:
        return [sentence]
    pieces, rest = [], sentence
    while len(rest) > _MAX_UNIT_CHARS:
        cuts = [m.start() for m in _SOFT_BREAK.finditer(rest, 0, _MAX_UNIT_CHARS) if m.start() > _MAX_UNIT_CHARS // 2]
        cut = cuts[-1] if cuts else _MAX_UNIT_CHARS
        pieces.append(rest[:cut].strip())
        rest = rest[cut:]
    return [p for p in (*pieces, rest.strip()) if p]


def _terms(text: str) -> list[str]:
    """The lexical index's tokens, English ones lightly stemmed, plus CJK character pairs: jieba
    cuts a question and a sentence differently ("表有" / "表", "内建链" / "内建的链")."""
    terms = [_stem(t) for t in tokenize(text)]
    for run in _CJK_RUN.findall(text):
        terms.extend(run[i:i + 2] for i in range(len(run) - 1))
    return terms


def _stem(term: str) -> str:
    """A crude English stem, the same on both sides: "deleting", "deletes", "delete" -> "delet",
    "tabs" -> "tab", "indentation" -> "indent", "options" -> "opt"."""
    if not (term.isascii() and term.isalpha() and len(term) > 3) or term.endswith("ss"):
        return term
    for suffixes in (_PLURALS, _SUFFIXES):
        for suffix in suffixes:
            if term.endswith(suffix) and len(term) - len(suffix) >= 3:
                term = term[:-len(suffix)]
                break
    return term[:-1] if term.endswith("e") and len(term) > 3 else term


def _score(question: str, units: list[_Unit], hits: Sequence[Hit], similarity: Similarity | None = None) -> None:
    """Each unit's share of the question's weight it matches (BM25 over all the units as the
    collection, divided by the question's total IDF) — averaged with the embedder's similarity when
    the hits lack most of the question's words — rank-weighted, plus half a strong neighbour's."""
    lexical, unsaid = _lexical(question, units, hits)
    if similarity is not None and unsaid >= _UNSAID:
        # "How heavy is it?" / "It weighs 18.5 kg": no shared word, but close in meaning.
        lexical = [(score + max(0.0, cos)) / 2 for score, cos in zip(lexical, similarity([u.text for u in units]),
                                                                     strict=True)]
    own = [score * (1 + _RANK_WEIGHT / (u.hit + 1)) for u, score in zip(units, lexical, strict=True)]
    furniture = _page_furniture(units, hits)
    strong = _STRONG * max(own, default=0.0)
    for i, u in enumerate(units):
        # What follows a strong match is often its answer: "… the number of commands kept in the
        # history. The default is 500.", a description and then its example command.
        near = [own[j] for j in (i - 1, i + 1) if 0 <= j < len(units) and units[j].hit == u.hit and own[j] >= strong]
        if u.head is not None and u.head != u.order:
            # A row is read under its header: a question about a column ("which … is shortest?") wants its rows.
            head = own[i - u.order + u.head]
            near += [head] if head >= strong else []
        u.furniture = id(u) in furniture
        u.score = 0.0 if u.furniture else own[i] + _NEIGHBOUR_WEIGHT * max(near, default=0.0)


def _lexical(question: str, units: list[_Unit], hits: Sequence[Hit]) -> tuple[list[float], float]:
    """BM25 of each unit over the units, as a share of the question's total IDF (about 0 to 1), and
    the share of that weight in words no unit has (besides the file names).

    Words of a hit's file name do not count for its units (every running header of "psql.1.pdf"
    says "psql", and the source label names the file anyway), but a unit that matches otherwise
    gets them as a bonus: a question naming the file is likely about that file's sentences."""
    words = [_stem(t) for t in tokenize(question, query=True)]
    query = set(words) | {w[i:i + 2] for w in words if _CJK.match(w) for i in range(len(w) - 1)}
    if not query:
        return [0.0] * len(units), 0.0
    df = Counter(term for u in units for term in set(u.terms) & query)
    n = len(units)
    average = sum(len(u.terms) for u in units) / n or 1.0
    titles = [_title_words(hit.source) & query for hit in hits]
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in query}
    total = sum(idf.values())
    out = []
    for u in units:
        counts = Counter(t for t in u.terms if t in query and t not in titles[u.hit])
        norm = _K1 * (1 - _B + _B * len(u.terms) / average)
        bm25 = sum(idf[t] * c * (_K1 + 1) / (c + norm) for t, c in counts.items())
        bonus = sum(idf[t] for t in titles[u.hit]) * _TITLE_WEIGHT if bm25 else 0.0
        out.append((bm25 + bonus) / total)
    named = set().union(*titles)
    unsaid = sum(idf[t] for t in set(words) - named if df[t] == 0) / (sum(idf[t] for t in set(words) - named) or 1.0)
    return out, unsaid


def _title_words(source: str) -> set[str]:
    """The words of a file's name, letters and digits apart too: "helix7_manual.pdf" -> helix7,
    helix, 7, manual (a question says "Helix-7")."""
    title = document_title(source).lower()
    return set(re.findall(r"[^\W_]+", title)) | set(re.findall(r"[a-z]+|\d+", title))


def _page_furniture(units: list[_Unit], hits: Sequence[Hit]) -> set[int]:
    """Running headers and footers: whole lines that recur, numbers aside, on two or more pages
    ("Tukaani 2022-12-01 XZ(1) 7"). They name the manual, so they share its words with the question."""
    where: dict[str, set] = {}
    lines = [u for i, u in enumerate(units) if u.lead and u.head is None and (
        i + 1 == len(units) or units[i + 1].lead or units[i + 1].hit != u.hit)]
    for u in lines:
        where.setdefault(re.sub(r"\d+", "#", _norm(u.text)), set()).add((hits[u.hit].source, hits[u.hit].page))
    return {id(u) for u in lines if len(where[re.sub(r"\d+", "#", _norm(u.text))]) > 1}


def _choose(flat: list[_Unit], units: list[list[_Unit]], labels: list[int], budget: int) -> dict[int, set[int]]:
    """Greedy by score: each unit (with its context) while it fits; text already kept is skipped."""
    chosen: dict[int, set[int]] = {}
    seen: set[str] = set()
    # The units that match, best first; then, while room is left, the rest of the hits in rank and
    # reading order: an answer worded unlike the question ("How heavy…" / "…weighs 18.5 kg") was
    # still found by the embedder, so it is most likely near the top hits' matching sentences.
    ranked = sorted((u for u in flat if u.score > 0), key=lambda u: (-u.score, u.hit, u.order))
    ranked += [u for u in flat if u.score <= 0 and not u.furniture]
    room = budget
    for unit in ranked:
        if _norm(unit.text) in seen:
            continue
        kept = chosen.get(unit.hit, set())
        opening = labels[unit.hit] if not kept else 0
        # A table's header goes with its rows in every hit that keeps some (it is not repeated text).
        group = [u for u in (unit, *_context(unit, units[unit.hit]))
                 if u.order not in kept and (_norm(u.text) not in seen or u.head == u.order)]
        if sum(u.cost for u in group) + opening > room:
            group = [unit]  # without its context, if that fits
        price = sum(u.cost for u in group) + opening
        if price > room:
            continue
        chosen.setdefault(unit.hit, set()).update(u.order for u in group)
        seen.update(_norm(u.text) for u in group)
        room -= price
    return chosen


def _context(unit: _Unit, siblings: list[_Unit]) -> list[_Unit]:
    """What ``unit`` needs around it to be read alone: the sentence before when it names the subject
    (it leads the line ``unit`` continues, or it is a label line of its own: an option's name, a
    heading), and what follows when ``unit`` announces it (ends with a colon)."""
    out: list[_Unit] = []
    if unit.head is not None:  # a table row: its header, and the caption line above the table
        head = siblings[unit.head]
        caption = siblings[unit.head - 1] if unit.head > 0 else None
        out += [head] if head is not unit else []
        if caption is not None and caption.caption:
            out.append(caption)
        return out
    if unit.order > 0 and not siblings[unit.order - 1].furniture:
        before = siblings[unit.order - 1]
        if (not unit.lead and before.lead) or (unit.lead and _is_label(before, siblings)):
            out.append(before)
    if unit.order + 1 < len(siblings) and unit.text.endswith((":", "：")):
        out.append(siblings[unit.order + 1])
    return out


def _is_label(unit: _Unit, siblings: list[_Unit]) -> bool:
    """A short line that does not end a sentence ("--tab:", "-k, --keep", "Quickstart")."""
    whole_line = unit.lead and (unit.order + 1 >= len(siblings) or siblings[unit.order + 1].lead)
    return whole_line and unit.cost <= _SHORT_CONTEXT and not unit.text.endswith(_SENTENCE_STOPS)


def _join(units: list[_Unit], kept: list[int]) -> str:
    parts: list[str] = []
    for i, order in enumerate(kept):
        unit, before = units[order], units[kept[i - 1]] if i else None
        if before is not None and (unit.head is not None or before.head is not None) and order != before.order + 1:
            # Rows left out of a table leave it a table; a gap next to one goes on a line of its own.
            parts.append("\n" if unit.head == before.head else "\n" + _GAP.strip() + "\n")
        elif before is not None:
            parts.append(("\n" if unit.lead else " ") if order == before.order + 1 else _GAP)
        parts.append(unit.text)
    return "".join(parts)


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)
