"""rag.passages: the sentences that answer the question, within a budget, with their numbers and pages."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rag.passages import select_passages
from rag.prompts import build_grounded_messages, format_source
from rag.retrieval import Hit


def hit(n: int, text: str, source: str = "manual.pdf", page: int | None = 1) -> Hit:
    return Hit(document_id=f"d{n}", source=source, page=page, text=text, score=0.5, chunk_id=n)


def words(text: str) -> int:
    """A stand-in token counter: words, and each CJK character as one."""
    return len(re.findall(r"[\u4e00-\u9fff]|[^\s\u4e00-\u9fff]+", text))


XZ = [
    hit(1, "XZ(1) XZ Utils XZ(1)\n"
           "Do not use this option unless you know what you are doing.\n"
           "-0 ... -9 Select a compression preset level. The default is -6. If multiple preset levels are "
           "specified, the last one takes effect.\n"
           "The differences between the presets are more significant than with gzip(1) and bzip2(1).\n"
           "Tukaani 2022-12-01 XZ(1) 7", source="xz.1.pdf", page=7),
    hit(2, "-k, --keep Don't delete the input files.\n"
           "-f, --force This option has several effects: if the target file already exists, delete it before "
           "compressing or decompressing.", source="xz.1.pdf", page=4),
    hit(3, "--tab:\nUse a tab for each indentation level instead of two spaces.\n--indent n:\n"
           "Use the given number of spaces (no more than 8) for indentation.", source="jq.1.pdf", page=3),
    hit(4, "XZ(1) XZ Utils XZ(1)\n-e, --extreme Use a slower variant of the selected compression preset level.\n"
           "Tukaani 2022-12-01 XZ(1) 8", source="xz.1.pdf", page=8),
]
PSQL = [
    hit(1, "PSQL(1) PostgreSQL Client Applications PSQL(1)\n"
           "HISTSIZE存在命令历史里的命令的个数。缺省值是 500。\n"
           "HOST 当前你正连接的数据库服务器主机。", source="psql.1.pdf", page=14),
    hit(2, "iptables 中文手册 Iptables(8) 6\n--log-prefix prefix 在纪录信息前加上特定的前缀：最多14个字母长，"
           "用来和记录中其他信息区别。\n--log-level level 记录级别。", source="iptables.8.pdf", page=6),
]
CASES = [
    ("What compression preset does xz use by default?", XZ, "The default is -6.", "xz.1.pdf", 7),
    ("How do I stop xz from deleting the original file?", XZ, "-k, --keep Don't delete the input files.",
     "xz.1.pdf", 4),
    ("How do I indent jq output with tabs?", XZ, "Use a tab for each indentation level", "jq.1.pdf", 3),
    ("psql 的命令历史默认保存多少条？", PSQL, "缺省值是 500", "psql.1.pdf", 14),
    ("iptables 日志前缀最长可以多少个字符？", PSQL, "最多14个字母长", "iptables.8.pdf", 6),
]


@pytest.mark.parametrize("question, hits, answer, source, page", CASES)
@pytest.mark.parametrize("budget", [45, 80, 200])
def test_the_sentence_holding_the_answer_is_kept_with_its_source_and_page(question, hits, answer, source, page,
                                                                         budget):
    kept = select_passages(question, hits, words, budget)
    holding = [h for h in kept if answer in h.text]
    assert holding and (holding[0].source, holding[0].page) == (source, page), kept


def test_passages_are_the_hits_numbered_in_rank_order_with_less_text():
    question = "What compression preset does xz use by default?"
    kept = select_passages(question, XZ, words, 30)
    assert [h.chunk_id for h in kept] == sorted(h.chunk_id for h in kept)  # rank order kept
    for passage in kept:
        original = XZ[passage.chunk_id - 1]
        assert (passage.document_id, passage.source, passage.page, passage.score) == \
               (original.document_id, original.source, original.page, original.score)
        assert len(passage.text) < len(original.text)
    # the running header and footer share no word with the question (the file name does not count)
    assert not any("Tukaani" in h.text or "XZ Utils" in h.text for h in kept)


def test_kept_sentences_read_in_document_order_with_their_context():
    kept = select_passages("What compression preset does xz use by default?", XZ[:1], words, 16)[0].text
    # "The default is -6." continues the line that names the option: the line's lead comes with it
    assert kept.startswith("-0 ... -9 Select a compression preset level. The default is -6.")
    jq = select_passages("How do I indent jq output with tabs?", XZ[2:3], words, 20)[0].text
    assert jq.startswith("--tab:\nUse a tab")  # the short option line before the answer comes along


@pytest.mark.parametrize("budget", [0, 5, 12, 25, 50, 100, 1000])
@pytest.mark.parametrize("question, hits", [(CASES[0][0], XZ), (CASES[3][0], PSQL)])
def test_the_budget_holds_labels_and_line_breaks_included(question, hits, budget):
    def label(h: Hit) -> int:
        return words(format_source(9, h, text=""))

    kept = select_passages(question, hits, words, budget, label_tokens=label)
    assert sum(words(h.text) + label(h) + 1 for h in kept) <= budget
    if budget >= 1000:  # room for all: every hit, without the running headers and footers of xz.1.pdf
        assert len(kept) == len(hits) and not any("Tukaani" in h.text or "XZ Utils" in h.text for h in kept)


def test_the_exact_count_trims_what_the_estimate_let_through():
    # A counter that makes one hit's sentences look cheap (long text counted as few tokens) and the
    # passage dear: the selection must still end within the budget.
    def lumpy(text: str) -> int:
        return 1 if text.startswith("XZ(1)") else 3 * words(text)

    kept = select_passages("What compression preset does xz use by default?", XZ, lumpy, 30)
    assert sum(lumpy(h.text) + 1 for h in kept) <= 30


def test_text_given_under_a_better_hit_is_not_repeated():
    twice = [XZ[0], hit(9, XZ[0].text, source="xz.1.pdf", page=7)]
    kept = select_passages("What compression preset does xz use by default?", twice, words, 200)
    assert sum(h.text.count("The default is -6.") for h in kept) == 1


def test_without_shared_words_the_hits_are_kept_from_their_start():
    kept = select_passages("Wie lautet die Voreinstellung?", XZ, words, 25)
    assert len(kept) == 1 and kept[0].text.startswith("Do not use this option")  # the running header skipped
    assert XZ[0].text.split("\n", 1)[1].startswith(kept[0].text)


class MeaningEmbedder:
    """Knows that "heavy" and "weighs" mean alike; English only, as the bundled MiniLM."""

    languages = ("en",)

    def __init__(self):
        self.calls = 0

    def embed(self, texts, batch_size: int = 32):
        self.calls += 1
        rows = [[1.0, 0.0] if re.search(r"heavy|weigh", t) else [0.0, 1.0] for t in texts]
        return np.array(rows, dtype=np.float32)


HELIX = [hit(1, "Helix-7 Storage Appliance - User Manual\nThe Helix-7 is a 2U rack-mounted storage appliance. "
                "It holds twelve drive bays. The fully assembled unit weighs 18.5 kg without drives.\n"
                "The shipping box contains the appliance and two power cords.", source="helix7_manual.pdf")]


def test_a_paraphrase_is_found_through_the_embedder_and_only_then():
    embedder = MeaningEmbedder()
    kept = select_passages("How heavy is the Helix-7 appliance?", HELIX, words, 16, embedder=embedder)
    assert "weighs 18.5 kg" in kept[0].text and embedder.calls == 1
    without = select_passages("How heavy is the Helix-7 appliance?", HELIX, words, 16)
    assert "weighs 18.5 kg" not in without[0].text  # the words alone find only "appliance"
    select_passages("What compression preset does xz use by default?", XZ, words, 30, embedder=embedder)
    select_passages("psql 的体积多大？", PSQL, words, 30, embedder=embedder)  # a language it does not know
    assert embedder.calls == 1  # the question's words were there, or the language is not the embedder's


def test_commands_and_decimals_stay_whole():
    text = "Show SYN and FIN packets:\ntcpdump 'tcp[13] & 3 != 0 and not src net localnet'\nVersion 3.14 is current."
    kept = select_passages("Which tcpdump filter shows SYN and FIN packets?", [hit(1, text)], words, 200)
    assert "tcpdump 'tcp[13] & 3 != 0 and not src net localnet'" in kept[0].text


def test_the_grounded_prompt_numbers_the_passages_and_stays_within_its_budget():
    question = "What compression preset does xz use by default?"
    prompt = build_grounded_messages(question, XZ, count_tokens=words, budget_tokens=400, source_tokens=30)
    user = prompt.messages[-1]["content"]
    lines = [line for line in user.split("\n") if re.match(r"\[\d\] ", line)]
    assert lines[0].startswith("[1] xz.1.pdf p.7: ")
    assert "-0 ... -9 Select a compression preset level. The default is -6." in prompt.hits[0].text
    numbers = [int(line[1]) for line in lines]
    assert numbers == list(range(1, len(prompt.hits) + 1))
    assert sum(words(format_source(n, h)) + 1 for n, h in enumerate(prompt.hits, 1)) <= 30
    assert all(h.text in user for h in prompt.hits)
