"""tests/data/real_questions.json agrees with the documents it asks about."""

from __future__ import annotations

import json
import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


def test_every_expected_answer_is_on_the_stated_page_or_under_the_stated_heading():
    spec = json.loads((DATA / "real_questions.json").read_text(encoding="utf-8"))
    files = {d["name"]: (DATA / "real_docs" / d["file"]).read_text(encoding="utf-8") for d in spec["documents"]}
    questions = spec["questions"]
    assert len(questions) >= 40
    assert sum(q["lang"] == "zh" for q in questions) >= len(questions) * 0.4
    norm = lambda s: re.sub(r"\s+", "", s)  # noqa: E731
    for q in questions:
        text = files[q["source"]]
        if q["page"] is None:
            assert any(line.startswith("#") and q["section"] in line for line in text.splitlines()), q
        else:
            pages = text.split("\f")
            on = [n for n, page in enumerate(pages, 1) if norm(q["expect"]) in norm(page)]
            assert on == [q["page"]], (q["q"], on)
            assert q["q"] not in text  # asked as a user would, not copied from the text
