"""rag.chunking: sentence and CJK boundaries, token budgets, overlap, offsets, heading carry."""

from __future__ import annotations

import pytest

from rag.chunking import chunk_document, chunk_text, split_sentences
from rag.embedding import HashingEmbedder
from rag.parsing import Page, ParsedDocument

count = HashingEmbedder().count_tokens  # words and CJK characters; additive over whitespace


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_cjk_sentence_boundaries():
    text = "第一句话。第二句话！第三句话？第四句话；最后一句"
    assert sentences(text) == ["第一句话。", "第二句话！", "第三句话？", "第四句话；", "最后一句"]


def test_latin_boundaries_keep_decimals_and_versions():
    text = "Pi is 3.14 here. Version v1.2 shipped!  Really? Yes\nNew line"
    assert sentences(text) == ["Pi is 3.14 here.", "Version v1.2 shipped!", "Really?", "Yes", "New line"]


def test_closing_quotes_stay_with_their_sentence():
    assert sentences("他说：“好的。”然后离开了。") == ["他说：“好的。”", "然后离开了。"]


def make_chunks(text: str, tokens: int = 30, overlap: int = 8, headings: bool = False):
    return chunk_text(text, page=3, source="a.pdf", document_id="d1", count_tokens=count,
                      chunk_tokens=tokens, chunk_overlap=overlap, headings=headings)


TEXT = " ".join(f"Sentence number {n} talks about topic {n % 4} in some detail." for n in range(40))
CJK = "".join(f"第{n}条规定要求员工遵守安全制度并按时提交报告。" for n in range(40))


@pytest.mark.parametrize("text", [TEXT, CJK, TEXT + "\n" + CJK])
def test_offsets_map_back_to_the_page_text_and_budget_holds(text):
    chunks = make_chunks(text)
    assert len(chunks) > 3
    for chunk in chunks:
        assert text[chunk.char_start:chunk.char_end] == chunk.text == chunk.body
        assert count(chunk.text) <= 30
        assert (chunk.page, chunk.source, chunk.document_id) == (3, "a.pdf", "d1")
    # every sentence ends up in some chunk
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.char_start, chunk.char_end))
    assert all(i in covered for s, e in split_sentences(text) for i in range(s, e))


def test_consecutive_chunks_overlap_by_whole_sentences_within_the_budget():
    chunks = make_chunks(TEXT, tokens=30, overlap=12)
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.char_start < prev.char_end, "expected overlap"
        shared = TEXT[nxt.char_start:prev.char_end]
        assert count(shared) <= 12
        assert shared.endswith(".")  # whole sentences only
    assert all(a.char_start < b.char_start for a, b in zip(chunks, chunks[1:], strict=False))


def test_no_overlap_when_zero():
    chunks = make_chunks(TEXT, tokens=30, overlap=0)
    assert all(b.char_start > a.char_end for a, b in zip(chunks, chunks[1:], strict=False))


def test_a_sentence_longer_than_the_budget_is_split():
    text = "没有标点的超长句子" * 40  # 360 CJK characters, no boundary at all
    chunks = make_chunks(text, tokens=50, overlap=0)
    assert len(chunks) >= 8
    assert all(count(c.text) <= 50 for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_long_latin_sentence_is_cut_at_spaces():
    text = " ".join(f"word{n}" for n in range(300))
    chunks = make_chunks(text, tokens=40, overlap=0)
    assert all(count(c.text) <= 40 for c in chunks)
    assert all(c.text.startswith("word") and not c.text.endswith(" ") for c in chunks)
    assert " ".join(c.text for c in chunks) == text


MD = """# Guide

Intro paragraph.

## Install

Run the installer. Then restart.

```
# not a heading inside code
```

## Usage

### Advanced

Tune the knobs.
"""


def test_markdown_headings_are_carried_into_chunk_text():
    chunks = make_chunks(MD, tokens=200, headings=True)
    by_heading = {c.heading: c for c in chunks}
    assert set(by_heading) == {"Guide", "Guide > Install", "Guide > Usage > Advanced"}
    install = by_heading["Guide > Install"]
    assert install.text.startswith("Guide > Install\nRun the installer.")
    assert "# not a heading inside code" in install.text
    assert MD[install.char_start:install.char_end] == install.body
    assert by_heading["Guide > Usage > Advanced"].body == "Tune the knobs."


def test_chunks_never_span_two_sections_and_prefix_counts_against_the_budget():
    md = "# A\n" + "Alpha sentence here. " * 20 + "\n# B\n" + "Beta sentence here. " * 20
    chunks = make_chunks(md, tokens=25, overlap=0, headings=True)
    assert all(("Alpha" in c.body) != ("Beta" in c.body) for c in chunks)
    assert all(count(c.text) <= 25 for c in chunks)


def test_plain_text_does_not_treat_hash_lines_as_headings():
    chunks = make_chunks("# just a comment\nbody text.", tokens=50)
    assert chunks[0].heading == "" and chunks[0].text.startswith("# just a comment")


def test_chunk_document_keeps_page_numbers_and_skips_empty_pages():
    doc = ParsedDocument("r.pdf", "pdf", [Page(1, "First page."), Page(2, "   "), Page(3, "Third page.")])
    chunks = chunk_document(doc, "doc", count, 50, 10)
    assert [(c.page, c.text) for c in chunks] == [(1, "First page."), (3, "Third page.")]


def test_titles_head_every_chunk_and_keep_offsets():
    doc = ParsedDocument("psql.1.pdf", "pdf", [Page(1, "First page."), Page(2, TEXT)])
    chunks = chunk_document(doc, "doc", count, 30, 8, titles=True)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.heading == "psql.1" and chunk.text.startswith("psql.1\n")
        page_text = "First page." if chunk.page == 1 else TEXT
        assert page_text[chunk.char_start:chunk.char_end] == chunk.body
        assert count(chunk.text) <= 30  # the title counts against the budget


def test_titles_lead_the_markdown_heading_path():
    doc = ParsedDocument("user_guide.md", "md", [Page(None, MD)])
    headings = {c.heading for c in chunk_document(doc, "doc", count, 200, 10, titles=True)}
    assert headings == {"user guide > Guide", "user guide > Guide > Install", "user guide > Guide > Usage > Advanced"}
    assert {c.heading for c in chunk_document(doc, "doc", count, 200, 10)} == {
        "Guide", "Guide > Install", "Guide > Usage > Advanced"}
