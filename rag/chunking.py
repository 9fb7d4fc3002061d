"""Split page text into overlapping chunks that respect sentences, CJK punctuation and headings.

Sizes are measured with the embedder's own tokenizer (``count_tokens``) so a chunk never gets
silently truncated by the embedding model. Each ``Chunk`` remembers where it came from
(document, file name, page, character offsets into ``Page.text``). In heading-aware formats a
chunk never spans two sections, and its text starts with the section's heading path
(``"Guide > Install"``) so that a chunk about "step 3" still says what it is a step of.
Markdown tables (``rag.tables``) are kept whole with their caption where they fit a chunk, and
split between rows with the caption and header repeated where they do not.
With ``titles`` every chunk's path also starts with the document's title (its file name without
the extension): a page of a manual rarely repeats the program's name, and a question usually
names it ("psql ... history size"), so the title carries the chunk to the right manual in BM25
and in the embedding (measured in ``bench/rag_quality.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rag.parsing import HEADING_FORMATS, ParsedDocument
from rag.tables import TableSpan, find_tables

__all__ = ["Chunk", "chunk_document", "chunk_text", "document_title", "split_sentences"]

CountTokens = Callable[[str], int]

# Sentence ends: CJK and Latin terminators (plus closing quotes/brackets), a period only when
# followed by whitespace (keeps "3.14" and "v1.2" whole), and every newline.
_BOUNDARY = re.compile(r"[。！？；!?;]+[”’\"」』）)\]]*|\.+[”’\"」』）)\]]*(?=\s|$)|\n")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SOFT_BREAKS = " ，,、：:（("


@dataclass(frozen=True)
class Chunk:
    document_id: str
    source: str
    page: int | None
    char_start: int
    char_end: int
    text: str
    heading: str = ""

    @property
    def body(self) -> str:
        """The chunk text without the heading prefix: equals ``page.text[char_start:char_end]``."""
        return self.text[len(self.heading) + 1:] if self.heading else self.text


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the sentences of ``text[start:end]``, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for match in _BOUNDARY.finditer(text, start, end):
        _add_span(spans, text, pos, match.end())
        pos = match.end()
    _add_span(spans, text, pos, end)
    return spans


def _add_span(spans: list[tuple[int, int]], text: str, s: int, e: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if s < e:
        spans.append((s, e))


def chunk_document(
    doc: ParsedDocument,
    document_id: str,
    count_tokens: CountTokens,
    chunk_tokens: int = 200,
    chunk_overlap: int = 40,
    titles: bool = False,
) -> list[Chunk]:
    """All chunks of a parsed document, page by page, in reading order; ``titles`` starts each
    chunk's heading path with ``document_title(doc.name)``."""
    chunks: list[Chunk] = []
    title = document_title(doc.name) if titles else ""
    for page in doc.pages:
        chunks.extend(chunk_text(
            page.text, page=page.number, source=doc.name, document_id=document_id,
            count_tokens=count_tokens, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
            headings=doc.format in HEADING_FORMATS, title=title,
        ))
    return chunks


def document_title(name: str) -> str:
    """A file name as a title: no extension, underscores as spaces (``"psql.1"``, ``"bm25s README"``)."""
    stem = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    return re.sub(r"[_\s]+", " ", stem).strip()


def chunk_text(
    text: str,
    *,
    page: int | None,
    source: str,
    document_id: str,
    count_tokens: CountTokens,
    chunk_tokens: int = 200,
    chunk_overlap: int = 40,
    headings: bool = False,
    title: str = "",
) -> list[Chunk]:
    """Chunks of one page of text; ``headings`` turns on Markdown heading tracking and
    ``title`` (if given) heads every chunk's heading path. A Markdown table (with the caption line
    above it) is one unit that is never cut when it fits a chunk; a longer one is split by rows,
    each later piece repeating the caption and header rows after the heading path."""
    chunks: list[Chunk] = []
    for path, start, end in _sections(text, headings):
        path = " > ".join(part for part in (title, path) if part)
        prefix_tokens = count_tokens(path) if path else 0
        # A very long heading path must not starve the body; the chunk may then run a bit long.
        budget = max(chunk_tokens - prefix_tokens, chunk_tokens // 2)
        units: list[tuple[int, int, int]] = []
        pos = start
        for table in find_tables(text, start, end):
            units.extend(_sentence_units(text, pos, table.start, budget, count_tokens))
            pos = table.end
            tokens = count_tokens(text[table.start:table.end])
            if tokens <= budget or not table.rows:
                units.append((table.start, table.end, tokens))
                continue
            pieces = [(path, s, e) for s, e in _pack_windows(units, budget, chunk_overlap)]
            pieces += _table_pieces(text, table, path, budget, count_tokens)
            chunks.extend(_chunk(text, head, s, e, document_id, source, page) for head, s, e in pieces)
            units = []
        units.extend(_sentence_units(text, pos, end, budget, count_tokens))
        chunks.extend(_chunk(text, path, s, e, document_id, source, page)
                      for s, e in _pack_windows(units, budget, chunk_overlap))
    return chunks


def _chunk(text: str, heading: str, s: int, e: int, document_id: str, source: str, page: int | None) -> Chunk:
    body = text[s:e]
    return Chunk(document_id, source, page, s, e, f"{heading}\n{body}" if heading else body, heading)


def _sentence_units(text: str, s: int, e: int, budget: int, count: CountTokens) -> list[tuple[int, int, int]]:
    units: list[tuple[int, int, int]] = []
    for a, b in split_sentences(text, s, e):
        tokens = count(text[a:b])
        units.extend([(a, b, tokens)] if tokens <= budget else _split_long(text, a, b, budget, count))
    return units


def _pack_windows(units: list[tuple[int, int, int]], budget: int, overlap: int) -> list[tuple[int, int]]:
    return [(units[i][0], units[j - 1][1]) for i, j in _pack([u[2] for u in units], budget, overlap)]


def _table_pieces(text: str, table: TableSpan, path: str, budget: int,
                  count: CountTokens) -> list[tuple[str, int, int]]:
    """(heading, start, end) of a table too long for one chunk, split between rows (a row is never
    cut): the first piece starts at the caption, later ones carry caption and header in the heading."""
    head = text[table.start:table.header[1]]
    room = max(budget - count(head), budget // 2)
    groups: list[list[tuple[int, int]]] = [[]]
    used = 0
    for row in table.rows:
        tokens = count(text[row[0]:row[1]]) + 1  # +1: the line break
        if groups[-1] and used + tokens > room:
            groups.append([])
            used = 0
        groups[-1].append(row)
        used += tokens
    repeated = f"{path}\n{head}" if path else head
    return [(path if n == 0 else repeated, table.start if n == 0 else rows[0][0], rows[-1][1])
            for n, rows in enumerate(groups)]


def _sections(text: str, headings: bool) -> Iterator[tuple[str, int, int]]:
    """(heading path, start, end) per section with text; one untitled section without headings."""
    if not headings:
        yield "", 0, len(text)
        return
    stack: list[tuple[int, str]] = []
    seg_start, pos, in_fence = 0, 0, False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence  # "# comment" inside a code block is not a heading
        match = None if in_fence else _HEADING.match(stripped)
        if match:
            if text[seg_start:pos].strip():
                yield " > ".join(title for _, title in stack), seg_start, pos
            level = len(match.group(1))
            stack = [item for item in stack if item[0] < level] + [(level, match.group(2))]
            seg_start = pos + len(line)
        pos += len(line)
    if text[seg_start:].strip():
        yield " > ".join(title for _, title in stack), seg_start, len(text)


def _pack(tokens: list[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy windows ``[i, j)`` over sentence token counts, each starting with up to
    ``overlap`` tokens of whole sentences from the end of the previous window."""
    windows: list[tuple[int, int]] = []
    i, n = 0, len(tokens)
    while i < n:
        j, total = i, 0
        while j < n and (j == i or total + tokens[j] <= budget):
            total += tokens[j]
            j += 1
        windows.append((i, j))
        if j >= n:
            break
        k, carried = j, 0
        while k - 1 > i and carried + tokens[k - 1] <= overlap:  # k > i + 1 guarantees progress
            carried += tokens[k - 1]
            k -= 1
        i = k
    return windows


def _split_long(text: str, s: int, e: int, budget: int, count: CountTokens) -> list[tuple[int, int, int]]:
    """Cut one over-long sentence into pieces of at most ``budget`` tokens, preferring to cut
    after a space or comma. Each piece is found by binary search on its character length."""
    pieces: list[tuple[int, int, int]] = []
    while s < e:
        # No tokenizer we use averages more than ~12 characters a token, so bound the search.
        hi = min(e, s + budget * 12)
        if count(text[s:hi]) <= budget:
            cut = hi
        else:
            lo = s + 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if count(text[s:mid]) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            cut = lo
            soft = max(text.rfind(ch, s + (cut - s) * 4 // 5, cut) for ch in _SOFT_BREAKS)
            if soft > s:
                cut = soft + 1
        piece: list[tuple[int, int]] = []
        _add_span(piece, text, s, cut)
        if piece:
            ps, pe = piece[0]
            pieces.append((ps, pe, count(text[ps:pe])))
        s = cut
    return pieces
